"""Censys normalize on fixture files alone: no emulator, no network."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.censys import CensysConnector
from connectors.censys.normalize import normalize
from core.errors import SchemaError
from core.models import (
    BANNER_CAP,
    CertSummary,
    Endpoint,
    Evidence,
    Kind,
    Observation,
    RawRecord,
    TlsSummary,
    Transport,
    Vuln,
)

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "providers" / "censys"
FETCHED = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)


def load(*parts: str) -> Any:
    return json.loads(FIXTURES.joinpath(*parts).read_text())


def record(payload: Any, kind: str = "host", query: str = "198.51.100.23") -> RawRecord:
    return RawRecord(
        source="censys", endpoint_kind=kind, query=query, fetched_at=FETCHED, payload=payload
    )


def by_port(observations: list[Observation]) -> dict[tuple[int, str], Observation]:
    return {(o.endpoint.port, o.endpoint.transport.value): o for o in observations}


HOSTNAMES = ("www.example.com", "host23.example.net")


def test_known_host_every_service_exactly() -> None:
    # Given the documented lookup of 198.51.100.23 (ssh, dns/udp, http, https, mysql)
    obs = by_port(normalize(record(load("hosts", "198.51.100.23.json"))))

    assert sorted(obs) == [(22, "tcp"), (53, "udp"), (80, "tcp"), (443, "tcp"), (3306, "tcp")]
    assert obs[(443, "tcp")] == Observation(
        endpoint=Endpoint(ip="198.51.100.23", port=443, transport=Transport.TCP),
        source="censys",
        kind=Kind.PASSIVE,
        observed_at=datetime(2026, 6, 2, 8, 57, 10, tzinfo=UTC),
        fetched_at=FETCHED,
        service="http",
        product="nginx",
        version="1.24.0",
        cpes=("cpe:2.3:a:f5:nginx:1.24.0:*:*:*:*:*:*:*",),
        banner=(
            "HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nContent-Type: text/html\r\n"
            "Strict-Transport-Security: max-age=31536000\r\n"
        ),
        http_server="nginx/1.24.0",
        http_title="Welcome to nginx!",
        http_status=200,
        tls=TlsSummary(
            versions=("TLSv1.3", "TLSv1.2"),
            cipher="TLS_AES_256_GCM_SHA384",
            cert=CertSummary(
                subject="CN=www.example.com",
                issuer="C=US, O=Example Trust Services, CN=Example Issuing CA R3",
                sans=("example.com", "www.example.com"),
                not_before=datetime(2026, 4, 1, tzinfo=UTC),
                not_after=datetime(2026, 6, 30, 23, 59, 59, tzinfo=UTC),
                key_type="RSA",
                key_bits=2048,
                sha256="ebdf1f283bf2671fbcd42559ba3378844f76aaeae63e95b3f67c0791cdf1ce49",
                self_signed=False,
            ),
        ),
        vulns=(Vuln(cve="CVE-2023-44487", cvss=7.5),),
        hostnames=HOSTNAMES,
        tags=(),
        org="Example Hosting GmbH",
        asn="AS64500",
    )
    ssh = obs[(22, "tcp")]
    assert (ssh.service, ssh.product, ssh.version) == ("ssh", "openssh", "8.9p1")
    assert ssh.banner == "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6"
    assert ssh.vulns == (Vuln(cve="CVE-2024-6387", cvss=8.1), Vuln(cve="CVE-2023-38408", cvss=9.8))
    assert ssh.tls is None and ssh.http_title is None
    dns = obs[(53, "udp")]
    assert (dns.service, dns.product, dns.version) == ("dns", "bind", "9.18.18")
    assert dns.observed_at == datetime(2026, 5, 30, 22, 41, 5, tzinfo=UTC)
    assert obs[(3306, "tcp")].service == "mysql"
    assert obs[(3306, "tcp")].tags == ("database",)
    assert obs[(80, "tcp")].http_server == "nginx/1.24.0"
    assert all(o.evidence is Evidence.STRONG and o.hostnames == HOSTNAMES for o in obs.values())


def test_cdn_edge_tags_and_represented_ports() -> None:
    obs = by_port(normalize(record(load("hosts", "203.0.113.10.json"), query="203.0.113.10")))

    # 443 was scanned; 80 and 8443 are only represented by it; 8080 is excluded.
    assert sorted(obs) == [(80, "tcp"), (443, "tcp"), (8443, "tcp")]
    edge = obs[(443, "tcp")]
    assert edge.tags == ("cdn", "waf:incapsula")
    assert edge.evidence is Evidence.STRONG
    assert (edge.http_status, edge.http_title, edge.http_server) == (
        403,
        "Request blocked",
        "EdgeProxy",
    )
    assert edge.tls == TlsSummary(
        versions=("TLSv1.2",), cipher="TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    )
    assert edge.org == "EXAMPLE-CDN" and edge.asn == "AS64501"
    for port in (80, 8443):
        weak = obs[(port, "tcp")]
        assert weak.evidence is Evidence.WEAK
        assert weak.tags == ("cdn", "waf:incapsula")
        assert weak.observed_at == edge.observed_at
        assert weak.tls is None and weak.banner is None


def test_udp_quic_duplicates_self_signed_and_odd_vulns() -> None:
    obs = by_port(normalize(record(load("hosts", "192.0.2.7.json"), query="192.0.2.7")))

    # ICMP has no port and is dropped; QUIC is UDP; 8443 is listed twice.
    assert sorted(obs) == [(161, "udp"), (443, "udp"), (8443, "tcp")]
    snmp = obs[(161, "udp")]
    assert snmp.service == "snmp"
    # Only an OS entry: used as the fallback product.
    assert (snmp.product, snmp.version) == ("router_os", "4.2")
    assert obs[(443, "udp")].service == "http"

    web = obs[(8443, "tcp")]
    assert web.observed_at == datetime(2026, 5, 22, 6, 0, tzinfo=UTC)  # the newer entry won
    assert web.http_status == 302 and web.http_title == ""  # the root path's answer
    assert web.http_server == "lighttpd/1.4.59"  # header names are case-insensitive
    assert web.tags == ("login_page", "remote_access")
    assert web.hostnames == ("gw7.example.net",)
    assert web.tls is not None and web.tls.versions == ("TLSv1", "TLSv1.1")
    assert web.tls.cert == CertSummary(
        subject="CN=gw7.example.net",
        issuer="CN=gw7.example.net",
        sans=("gw7.example.net",),
        not_before=datetime(2024, 1, 1, tzinfo=UTC),
        not_after=datetime(2025, 1, 1, tzinfo=UTC),
        key_type="ECDSA",
        key_bits=256,
        sha256="aa11bb22cc33dd44ee55ff6600112233445566778899aabbccddeeff00112233",
        self_signed=True,
    )
    # Non-CVE ids are dropped, ids upper-cased, CVSS 3.0 used when 3.1 is absent.
    assert web.vulns == (Vuln(cve="CVE-2016-2183", cvss=7.5), Vuln(cve="CVE-2020-0001"))


def test_search_page_maps_host_hits_and_skips_web_properties() -> None:
    hits = load("search_hits.json")["hits"][:8]
    payload = {"result": {"hits": hits, "next_page_token": "", "total_hits": 7}}
    observations = normalize(record(payload, kind="search", query='host.ip: "198.51.100.0/24"'))

    ips = {o.endpoint.ip for o in observations}
    assert ips == {f"198.51.100.{n}" for n in range(1, 8)}
    # 198.51.100.23 is not in this slice; 198.51.100.2 has one HTTP service on 443.
    two = [o for o in observations if o.endpoint.ip == "198.51.100.2"]
    assert [(o.endpoint.port, o.service, o.asn) for o in two] == [(443, "http", "AS64500")]


def test_schema_drift_is_tolerated() -> None:
    (obs,) = normalize(record(load("host_drift.json"), query="192.0.2.200"))
    assert obs.endpoint == Endpoint(ip="192.0.2.200", port=8080)
    assert obs.service is None and obs.observed_at is None
    assert obs.product == "mystery" and obs.seen_at == FETCHED


@pytest.mark.parametrize(
    ("payload", "kind", "expected"),
    [
        ("host_broken.json", "host", "services.0.port"),
        ({"result": {"resource": {"services": []}}}, "host", "result.resource.ip"),
        ({"result": {"next_page_token": ""}}, "search", "result.hits"),
        ([], "host", "body"),
        ({"result": {}}, "timeline", "unknown record kind"),
    ],
)
def test_broken_payloads_raise_schema_error(payload: Any, kind: str, expected: str) -> None:
    body = load(payload) if isinstance(payload, str) else payload
    with pytest.raises(SchemaError, match=expected) as info:
        normalize(record(body, kind=kind))
    assert info.value.source == "censys"


def test_invalid_address_is_a_schema_error() -> None:
    payload = {
        "result": {
            "resource": {"ip": "not-an-ip", "services": [{"port": 1, "transport_protocol": "tcp"}]}
        }
    }
    with pytest.raises(SchemaError):
        normalize(record(payload))


def test_banner_capped_before_the_model() -> None:
    payload = load("hosts", "198.51.100.23.json")
    payload["result"]["resource"]["services"][0]["banner"] = "A" * (BANNER_CAP * 3)
    obs = by_port(normalize(record(payload)))
    assert obs[(22, "tcp")].banner == "A" * BANNER_CAP


def test_class_normalize_is_the_module_function() -> None:
    raw = record(load("hosts", "198.51.100.23.json"))
    assert CensysConnector.normalize(raw) == normalize(raw)
