"""Shodan normalize on fixture files alone: pure, no emulator."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.shodan import ShodanConnector
from connectors.shodan.normalize import normalize
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

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "providers" / "shodan"
FETCHED = datetime(2026, 6, 5, 12, 0, tzinfo=UTC)


def load(*parts: str) -> Any:
    return json.loads(FIXTURES.joinpath(*parts).read_text())


def record(payload: Any, kind: str = "host", query: str = "198.51.100.23") -> RawRecord:
    return RawRecord(
        source="shodan", endpoint_kind=kind, query=query, fetched_at=FETCHED, payload=payload
    )


def by_port(observations: list[Observation]) -> dict[tuple[int, str], Observation]:
    return {(o.endpoint.port, o.endpoint.transport.value): o for o in observations}


def test_the_class_points_at_the_pure_function() -> None:
    payload = load("hosts", "198.51.100.23.json")
    assert ShodanConnector.normalize(record(payload)) == normalize(record(payload))


def test_known_host_gives_exactly_the_expected_observations() -> None:
    payload = load("hosts", "198.51.100.23.json")
    banners = {b["port"]: b["data"] for b in payload["data"]}
    common: dict[str, Any] = {
        "source": "shodan",
        "kind": Kind.PASSIVE,
        "fetched_at": FETCHED,
        "hostnames": ("host23.example.net",),
        "org": "Example Hosting GmbH",
        "asn": "AS64500",
    }
    # CVE-2023-48795 is listed at host level but by no banner: every port carries it.
    orphan = Vuln(cve="CVE-2023-48795")
    expected = [
        Observation(
            endpoint=Endpoint(ip="198.51.100.23", port=22, transport=Transport.TCP),
            observed_at=datetime(2026, 6, 1, 11, 2, 13, 418263, tzinfo=UTC),
            service="ssh",
            product="OpenSSH",
            version="8.9p1 Ubuntu-3ubuntu0.6",
            cpes=("cpe:2.3:a:openbsd:openssh:8.9p1", "cpe:2.3:o:canonical:ubuntu_linux"),
            banner=banners[22],
            vulns=(
                Vuln(cve="CVE-2023-38408", cvss=9.8),
                orphan,
                Vuln(cve="CVE-2024-6387", cvss=8.1),
            ),
            **common,
        ),
        Observation(
            endpoint=Endpoint(ip="198.51.100.23", port=53, transport=Transport.UDP),
            observed_at=datetime(2026, 5, 30, 22, 41, 5, 90144, tzinfo=UTC),
            service="dns",  # module "dns-udp"
            product="ISC BIND",
            version="9.18.18",
            cpes=("cpe:2.3:a:isc:bind:9.18.18",),
            banner=banners[53],
            vulns=(orphan,),
            **common,
        ),
        Observation(
            endpoint=Endpoint(ip="198.51.100.23", port=80, transport=Transport.TCP),
            observed_at=datetime(2026, 6, 2, 9, 14, 27, 512093, tzinfo=UTC),
            service="http",
            product="nginx",
            version="1.24.0",
            cpes=("cpe:2.3:a:f5:nginx:1.24.0",),  # cpe23 wins over the 2.2 `cpe`
            banner=banners[80],
            http_server="nginx/1.24.0",
            http_title="Welcome to nginx!",
            http_status=200,
            vulns=(orphan,),
            **common,
        ),
        Observation(
            endpoint=Endpoint(ip="198.51.100.23", port=443, transport=Transport.TCP),
            observed_at=datetime(2026, 6, 2, 8, 57, 10, 301877, tzinfo=UTC),
            service="http",  # module "https": TLS is a property, not another service
            product="nginx",
            version="1.24.0",
            cpes=("cpe:2.3:a:f5:nginx:1.24.0",),
            banner=banners[443],
            http_server="nginx/1.24.0",
            http_title="Welcome to nginx!",
            http_status=200,
            tls=TlsSummary(
                versions=("TLSv1.2", "TLSv1.3"),  # "-TLSv1" etc. are refused versions
                cipher="TLS_AES_256_GCM_SHA384",
                cert=CertSummary(
                    subject="CN=www.example.com",
                    issuer="C=US, O=Example Trust Services, CN=Example Issuing CA R3",
                    sans=("example.com", "www.example.com"),
                    not_before=datetime(2026, 4, 1, tzinfo=UTC),
                    not_after=datetime(2026, 6, 30, 23, 59, 59, tzinfo=UTC),
                    key_type="rsa",
                    key_bits=2048,
                    sha256="ebdf1f283bf2671fbcd42559ba3378844f76aaeae63e95b3f67c0791cdf1ce49",
                    self_signed=False,
                ),
            ),
            vulns=(Vuln(cve="CVE-2023-44487", cvss=7.5), orphan),
            **common,
        ),
        Observation(
            endpoint=Endpoint(ip="198.51.100.23", port=3306, transport=Transport.TCP),
            observed_at=datetime(2026, 5, 31, 17, 20, 44, 771102, tzinfo=UTC),
            service="mysql",
            product="MySQL",
            version="8.0.36-0ubuntu0.22.04.1",
            cpes=("cpe:2.3:a:oracle:mysql:8.0.36",),
            banner=banners[3306],
            vulns=(orphan,),
            tags=("database",),
            **common,
        ),
        # Port 8443 is in the host's `ports` with no banner: weak, transport unknown.
        Observation(
            endpoint=Endpoint(ip="198.51.100.23", port=8443, transport=Transport.TCP),
            evidence=Evidence.WEAK,
            observed_at=None,
            vulns=(orphan,),
            tags=("transport-unknown",),
            **common,
        ),
    ]
    assert normalize(record(payload)) == expected


def test_cdn_host_carries_cdn_waf_and_cloud_tags() -> None:
    observations = by_port(normalize(record(load("hosts", "203.0.113.10.json"))))
    https = observations[(443, "tcp")]
    assert https.tags == ("cdn", "waf:cloudflare", "cloud:cloudflare")
    assert https.http_status == 403
    assert https.http_title == "Attention Required! | Cloudflare"
    assert https.tls is not None and https.tls.cert is not None
    assert https.tls.cert.sans == ("shop.example.com", "*.shop.example.com")
    assert https.hostnames == ("shop.example.com",)  # from the host envelope
    assert https.asn == "AS64501"
    assert observations[(80, "tcp")].http_status == 301


def test_honeypot_self_signed_and_udp() -> None:
    observations = by_port(normalize(record(load("hosts", "192.0.2.7.json"), query="192.0.2.7")))
    assert set(observations) == {(23, "tcp"), (161, "udp"), (8443, "tcp")}
    # "honeypot" describes the address; "self-signed" only the banner that has it.
    assert observations[(23, "tcp")].tags == ("honeypot",)
    assert observations[(161, "udp")].tags == ("honeypot",)
    assert observations[(161, "udp")].service == "snmp"
    admin = observations[(8443, "tcp")]
    assert admin.tags == ("self-signed", "honeypot")
    assert admin.tls is not None and admin.tls.cert is not None
    assert admin.tls.versions == ("TLSv1", "TLSv1.1", "TLSv1.2")  # "-TLSv1.3" refused
    assert admin.tls.cert.self_signed is True
    assert admin.tls.cert.sans == ("gw7.example.net", "192.0.2.7")
    assert admin.tls.cert.not_after == datetime(2025, 1, 1, tzinfo=UTC)


def test_ipv6_host_and_a_timestamp_without_fraction() -> None:
    [obs] = normalize(record(load("hosts", "2001_db8__25.json"), query="2001:db8::25"))
    assert obs.endpoint == Endpoint(ip="2001:db8::25", port=25, transport=Transport.TCP)
    assert obs.observed_at == datetime(2026, 6, 3, 1, 2, 3, tzinfo=UTC)
    assert obs.service == "smtp"


def test_search_page_gives_one_observation_per_match() -> None:
    observations = normalize(record(load("search", "page_example.json"), "search", "net:x"))
    assert [str(o.endpoint) for o in observations] == [
        "198.51.100.23:80/tcp",
        "203.0.113.10:443/tcp",
    ]
    assert observations[1].tags == ("cdn", "waf:cloudflare", "cloud:cloudflare")
    assert all(o.evidence is Evidence.STRONG for o in observations)


def test_schema_drift_is_tolerated_and_duplicates_keep_the_newest() -> None:
    # Unknown fields everywhere, optional ones missing, two banners for 443/tcp.
    [obs] = normalize(record(load("hosts", "192.0.2.50.json"), query="192.0.2.50"))
    assert obs.endpoint == Endpoint(ip="192.0.2.50", port=443, transport=Transport.TCP)
    assert obs.product == "Caddy"  # the 2026-06-04 banner, not the 2026-04-01 one
    assert obs.observed_at == datetime(2026, 6, 4, 10, 20, 30, 405060, tzinfo=UTC)
    assert obs.tls == TlsSummary(versions=("TLSv1.3",))
    assert (obs.org, obs.asn, obs.hostnames, obs.vulns, obs.cpes) == (None, None, (), (), ())


def test_broken_record_raises_schema_error_naming_the_field() -> None:
    with pytest.raises(SchemaError) as info:
        normalize(record(load("hosts", "192.0.2.66.json"), query="192.0.2.66"))
    assert info.value.source == "shodan"
    assert "data.0.port" in str(info.value)
    assert "192.0.2.66" in str(info.value)


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("transport", 6, "transport"),
        ("transport", "sctp", "sctp"),
        ("timestamp", "yesterday", "timestamp"),
        ("port", "http", "port"),
    ],
)
def test_wrong_types_raise_schema_error(field: str, value: Any, needle: str) -> None:
    page = load("search", "page_example.json")
    page["matches"][0][field] = value
    with pytest.raises(SchemaError, match=needle):
        normalize(record(page, "search", "net:x"))


def test_search_page_without_matches_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="matches"):
        normalize(record({"total": 3}, "search", "net:x"))


def test_unknown_record_kind_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="unknown record kind"):
        normalize(record({}, "dns"))


def test_banner_is_capped() -> None:
    page = load("search", "page_example.json")
    page["matches"][0]["data"] = "A" * (BANNER_CAP * 3)
    obs = normalize(record(page, "search", "net:x"))[0]
    assert obs.banner == "A" * BANNER_CAP


def test_unreadable_san_extension_yields_no_sans_but_keeps_the_cert() -> None:
    page = load("search", "page_example.json")
    cert = page["matches"][1]["ssl"]["cert"]
    cert["extensions"] = [{"name": "subjectAltName", "data": "0\\x7f\\x82"}]
    cert["expires"] = "not a date"
    obs = normalize(record(page, "search", "net:x"))[1]
    assert obs.tls is not None and obs.tls.cert is not None
    assert obs.tls.cert.sans == ()
    assert obs.tls.cert.not_after is None
    assert obs.tls.cert.subject == "CN=shop.example.com"


@pytest.mark.parametrize(
    "value",
    [
        "2026-06-02T09:14:27.512093",
        "2026-06-02T09:14:27",
        "2026-6-2T9:14:27",  # strptime reads one-digit fields: still accepted
        "2026-06-02T09:14:27.5",  # and short fractions
        "2026-02-29T00:00:00.000000",  # not a leap year
        "2026-06-02T24:00:00",
        "2026-06-02T09:14:27+00:00",  # a zone is not Shodan's format
        "2026-06-02 09:14:27",
        "2026-06-02",
        "2026-06-02T09:14:27.1234567",
        "２０２６-06-02T09:14:27",  # non-ASCII digits
    ],
)
def test_banner_times_parse_exactly_as_strptime_reads_them(value: str) -> None:
    def reference(text: str) -> datetime | None:
        for fmt in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"):
            try:
                return datetime.strptime(text, fmt).replace(tzinfo=UTC)
            except ValueError:
                continue
        return None

    page = load("search", "page_example.json")
    page["matches"][0]["timestamp"] = value
    expected = reference(value)
    if expected is None:
        with pytest.raises(SchemaError, match="timestamp"):
            normalize(record(page, "search", "net:x"))
    else:
        assert normalize(record(page, "search", "net:x"))[0].observed_at == expected


@pytest.mark.parametrize(
    "value",
    [
        "20260101000000Z",
        "20261231235959Z",
        "20260230000000Z",  # no such day
        "20261301000000Z",  # no such month: strptime may still find a reading
        "20260101000060Z",
        "2026010100000Z",
        "20260101000000",
        "２0260101000000Z",
    ],
)
def test_cert_dates_parse_exactly_as_strptime_reads_them(value: str) -> None:
    try:
        expected: datetime | None = datetime.strptime(value, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        expected = None
    page = load("search", "page_example.json")
    page["matches"][1]["ssl"]["cert"]["expires"] = value
    obs = normalize(record(page, "search", "net:x"))[1]
    assert obs.tls is not None and obs.tls.cert is not None
    assert obs.tls.cert.not_after == expected


def test_empty_objects_mean_what_they_say() -> None:
    page = load("search", "page_example.json")
    match = page["matches"][1]
    match["ssl"] = {}  # TLS spoken, nothing known about it
    match["http"] = {}
    match["cloud"] = {}
    match["_shodan"] = {}
    obs = normalize(record(page, "search", "net:x"))[1]
    assert obs.tls == TlsSummary()
    assert (obs.http_server, obs.http_title, obs.http_status, obs.service) == (None,) * 4
    match["ssl"] = {"cert": {}}
    obs = normalize(record(page, "search", "net:x"))[1]
    assert obs.tls == TlsSummary(cert=CertSummary())
    match["ssl"] = None
    assert normalize(record(page, "search", "net:x"))[1].tls is None


def test_an_invalid_address_is_a_schema_error() -> None:
    page = load("search", "page_example.json")
    page["matches"][0]["ip_str"] = "198.51.100.300"
    with pytest.raises(SchemaError, match=r"198\.51\.100\.300"):
        normalize(record(page, "search", "net:x"))
