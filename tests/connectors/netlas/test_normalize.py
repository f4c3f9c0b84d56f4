"""Netlas normalize on fixture files alone: no emulator, no network."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.netlas import NetlasConnector
from connectors.netlas.normalize import normalize
from core.errors import SchemaError
from core.models import (
    BANNER_CAP,
    CertSummary,
    Endpoint,
    Kind,
    Observation,
    RawRecord,
    TlsSummary,
    Transport,
    Vuln,
)

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "providers" / "netlas"
FETCHED = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)


def load(*parts: str) -> Any:
    return json.loads(FIXTURES.joinpath(*parts).read_text())


def record(payload: Any, kind: str, query: str) -> RawRecord:
    return RawRecord(
        source="netlas", endpoint_kind=kind, query=query, fetched_at=FETCHED, payload=payload
    )


def search_page(ip: str) -> RawRecord:
    items = [i for i in load("responses.json")["items"] if i["data"]["ip"] == ip]
    return record({"items": items, "took": 7, "timestamp": 1741000000}, "search", f"ip:{ip}")


def by_port(observations: list[Observation]) -> dict[tuple[int, str], Observation]:
    assert len({o.endpoint for o in observations}) == len(observations)  # no duplicates
    return {(o.endpoint.port, o.endpoint.transport.value): o for o in observations}


def test_responses_of_a_known_host_exactly() -> None:
    # Given seven responses for 203.0.113.10: two for port 80 (two paths), two for 443
    # (the address and a virtual host), and ssh, mysql, dns/udp.
    obs = by_port(normalize(search_page("203.0.113.10")))

    assert sorted(obs) == [(22, "tcp"), (53, "udp"), (80, "tcp"), (443, "tcp"), (3306, "tcp")]
    assert obs[(443, "tcp")] == Observation(
        endpoint=Endpoint(ip="203.0.113.10", port=443, transport=Transport.TCP),
        source="netlas",
        kind=Kind.PASSIVE,
        observed_at=datetime(2025, 3, 3, 9, 13, 2, 4000, tzinfo=UTC),
        fetched_at=FETCHED,
        service="http",
        product="nginx",
        version="1.24.0",
        cpes=("cpe:2.3:a:nginx:nginx:1.24.0:*:*:*:*:*:*:*",),
        http_server="nginx/1.24.0",
        http_title="Welcome to Example",
        http_status=200,
        tls=TlsSummary(
            cert=CertSummary(
                subject="CN=www.example.com",
                issuer="C=US, O=Example CA, CN=Example CA R1",
                sans=("www.example.com", "example.com"),
                not_before=datetime(2025, 1, 10, tzinfo=UTC),
                not_after=datetime(2025, 4, 10, 23, 59, 59, tzinfo=UTC),
                key_type="RSA",
                key_bits=2048,
                sha256="0aa1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f",
                self_signed=False,
            )
        ),
        # The older virtual-host response lost, but the name it was asked for is kept.
        hostnames=("shop.example.com",),
        org="Example Hosting Ltd",
        asn="AS64500",
    )
    web = obs[(80, "tcp")]
    # The newest of the two paths wins; the Server header picks nginx over jQuery.
    assert web.observed_at == datetime(2025, 3, 3, 9, 12, 45, 120000, tzinfo=UTC)
    assert (web.product, web.version, web.http_title, web.http_status) == (
        "nginx",
        "1.24.0",
        "Welcome to Example",
        200,
    )
    assert web.hostnames == ("example.com", "www.example.com", "host10.example.net")
    assert web.banner is None and web.tls is None
    ssh = obs[(22, "tcp")]
    assert ssh.banner == "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6"
    assert (ssh.service, ssh.product, ssh.version) == ("ssh", "openssh", "8.9p1")
    assert ssh.cpes == ("cpe:2.3:a:openbsd:openssh:8.9p1:*:*:*:*:*:*:*",)
    assert ssh.vulns == (Vuln(cve="CVE-2023-51385", cvss=6.5), Vuln(cve="CVE-2023-48795", cvss=5.9))
    dns = obs[(53, "udp")]
    assert (dns.service, dns.banner) == ("dns", "version.bind: 9.18.24")
    assert dns.observed_at == datetime(2025, 3, 1, 5, 20, tzinfo=UTC)
    mysql = obs[(3306, "tcp")]
    assert (mysql.service, mysql.product, mysql.version, mysql.org, mysql.asn) == (
        "mysql",
        "mysql",
        "8.0.36",
        None,
        None,
    )


def test_cdn_waf_cloud_and_honeypot_tags() -> None:
    obs = by_port(normalize(search_page("192.0.2.7")))

    edge = obs[(443, "tcp")]
    assert edge.tags == ("cdn", "cloud:example_cloud", "waf:example_waf")
    assert (edge.product, edge.version, edge.http_server) == ("cloudflare", None, "cloudflare")
    assert (edge.asn, edge.org) == ("AS64501", "Example CDN Inc")
    trap = obs[(2323, "tcp")]
    assert trap.tags == ("honeypot",)
    assert trap.service == "telnet"
    assert trap.banner is not None and len(trap.banner) == BANNER_CAP
    assert trap.observed_at == datetime(2025, 3, 4, 2, 0, tzinfo=UTC)  # from @timestamp


def test_host_summary_exactly() -> None:
    raw = record(load("hosts", "203.0.113.10.json"), "host", "203.0.113.10")
    obs = by_port(normalize(raw))

    assert sorted(obs) == [(22, "tcp"), (53, "udp"), (80, "tcp"), (443, "tcp"), (3306, "tcp")]
    assert obs[(22, "tcp")] == Observation(
        endpoint=Endpoint(ip="203.0.113.10", port=22),
        source="netlas",
        kind=Kind.PASSIVE,
        observed_at=None,
        fetched_at=FETCHED,
        service="ssh",
        product="openssh",
        version="8.9p1",
        cpes=("cpe:2.3:a:openbsd:openssh:8.9p1:*:*:*:*:*:*:*",),
        vulns=(Vuln(cve="CVE-2023-51385", cvss=6.5),),
        hostnames=("www.example.com", "example.com", "host10.example.net"),
        org="Example Hosting Ltd",
        asn="AS64500",
    )
    assert (obs[(80, "tcp")].product, obs[(80, "tcp")].version) == ("nginx", "1.24.0")
    # No software entry names port 443: the port stands, with nothing more claimed.
    assert obs[(443, "tcp")].product is None and obs[(443, "tcp")].service == "http"
    assert obs[(53, "udp")].service == "dns"


def test_host_summary_duplicates_and_tags() -> None:
    obs = by_port(normalize(record(load("hosts", "192.0.2.7.json"), "host", "192.0.2.7")))
    assert sorted(obs) == [(123, "udp"), (443, "tcp"), (2323, "tcp")]
    assert obs[(443, "tcp")].tags == ("cdn",)
    assert obs[(2323, "tcp")].tags == ("honeypot",)
    assert obs[(123, "udp")].service == "ntp"
    assert obs[(443, "tcp")].hostnames == ("edge7.example.net",)


def test_schema_drift_is_tolerated() -> None:
    (obs,) = normalize(record(load("host_drift.json"), "host", "192.0.2.200"))
    assert obs.endpoint == Endpoint(ip="192.0.2.200", port=8080)
    assert obs.service is None and obs.product is None


def test_empty_host_has_no_observations() -> None:
    assert normalize(record(load("host_empty.json"), "host", "192.0.2.9")) == []


@pytest.mark.parametrize(
    ("payload", "kind", "expected"),
    [
        ("host_broken.json", "host", r"ports\.0\.port"),
        ({"ports": []}, "host", "ip"),
        ({"items": [{"data": {"ip": "192.0.2.1", "port": 80}}]}, "search", "prot4"),
        ({"took": 3}, "search", "items"),
        ("not json at all", "search", "body"),
        ({"items": []}, "whois", "unknown record kind"),
    ],
)
def test_broken_payloads_raise_schema_error(payload: Any, kind: str, expected: str) -> None:
    body = load(payload) if isinstance(payload, str) and payload.endswith(".json") else payload
    with pytest.raises(SchemaError, match=expected) as info:
        normalize(record(body, kind, "192.0.2.201"))
    assert info.value.source == "netlas"


def test_cpe_without_version_gets_the_tags_version() -> None:
    obs = by_port(normalize(search_page("198.51.100.1")))
    assert obs[(80, "tcp")].cpes == ("cpe:2.3:a:apache:http_server:2.4.58:*:*:*:*:*:*:*",)


def test_class_normalize_is_the_module_function() -> None:
    raw = search_page("203.0.113.10")
    assert NetlasConnector.normalize(raw) == normalize(raw)
