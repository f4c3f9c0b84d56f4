"""InternetDB normalize on fixture files alone: pure, no emulator."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.internetdb import InternetDBConnector
from connectors.internetdb.normalize import normalize
from core.errors import SchemaError
from core.models import Endpoint, Evidence, Kind, Observation, RawRecord, Transport, Vuln

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "providers" / "internetdb"
FETCHED = datetime(2026, 6, 5, 12, 0, tzinfo=UTC)


def load(name: str) -> Any:
    return json.loads((FIXTURES / "hosts" / name).read_text())


def record(payload: Any, query: str = "198.51.100.23", kind: str = "host") -> RawRecord:
    return RawRecord(
        source="internetdb", endpoint_kind=kind, query=query, fetched_at=FETCHED, payload=payload
    )


def test_the_class_points_at_the_pure_function() -> None:
    payload = load("198.51.100.23.json")
    assert InternetDBConnector.normalize(record(payload)) == normalize(record(payload))


def test_known_host_gives_one_weak_observation_per_port() -> None:
    expected = [
        Observation(
            endpoint=Endpoint(ip="198.51.100.23", port=port, transport=Transport.TCP),
            source="internetdb",
            kind=Kind.PASSIVE,
            evidence=Evidence.WEAK,
            observed_at=None,
            fetched_at=FETCHED,
            cpes=(
                "cpe:/a:openbsd:openssh:8.9p1",
                "cpe:/a:isc:bind:9.18.18",
                "cpe:/a:f5:nginx:1.24.0",
                "cpe:/a:oracle:mysql:8.0.36",
                "cpe:/o:canonical:ubuntu_linux",
            ),
            vulns=(
                Vuln(cve="CVE-2023-38408"),
                Vuln(cve="CVE-2023-44487"),
                Vuln(cve="CVE-2023-48795"),
                Vuln(cve="CVE-2024-6387"),
            ),
            hostnames=("host23.example.net",),
            tags=("transport-unknown",),
        )
        for port in (22, 53, 80, 443, 3306, 8443)
    ]
    assert normalize(record(load("198.51.100.23.json"))) == expected


def test_cdn_tag_is_kept() -> None:
    observations = normalize(record(load("203.0.113.10.json"), "203.0.113.10"))
    assert [o.endpoint.port for o in observations] == [80, 443, 8080, 8443]
    assert {o.tags for o in observations} == {("cdn", "transport-unknown")}
    assert {o.hostnames for o in observations} == {("shop.example.com",)}


def test_tags_are_lower_cased_and_vulns_have_no_cvss() -> None:
    observations = normalize(record(load("192.0.2.7.json"), "192.0.2.7"))
    assert len(observations) == 3
    first = observations[0]
    assert first.tags == ("honeypot", "self-signed", "eol-product", "transport-unknown")
    assert first.vulns == (Vuln(cve="CVE-2022-22707", cvss=None),)
    assert first.service is None and first.product is None


def test_ipv6_host() -> None:
    observations = normalize(record(load("2001_db8__25.json"), "2001:db8::25"))
    assert [str(o.endpoint) for o in observations] == [
        "[2001:db8::25]:25/tcp",
        "[2001:db8::25]:587/tcp",
    ]
    assert observations[0].hostnames == ("mx.example.org",)


def test_schema_drift_is_tolerated() -> None:
    # Unknown fields, every optional list missing, a port listed twice.
    [obs] = normalize(record(load("192.0.2.50.json"), "192.0.2.50"))
    assert obs.endpoint == Endpoint(ip="192.0.2.50", port=443, transport=Transport.TCP)
    assert (obs.cpes, obs.vulns, obs.hostnames) == ((), (), ())
    assert obs.tags == ("transport-unknown",)


def test_broken_record_raises_schema_error_naming_the_field() -> None:
    with pytest.raises(SchemaError) as info:
        normalize(record(load("192.0.2.66.json"), "192.0.2.66"))
    assert info.value.source == "internetdb"
    assert "ports" in str(info.value) and "192.0.2.66" in str(info.value)


@pytest.mark.parametrize(
    "payload",
    [
        {"ip": "not-an-address", "ports": [80]},
        {"ip": "192.0.2.1", "ports": [70000]},
        {"ports": [80]},
        ["192.0.2.1"],
    ],
)
def test_invalid_records_raise_schema_error(payload: Any) -> None:
    with pytest.raises(SchemaError, match="does not match"):
        normalize(record(payload, "192.0.2.1"))


def test_unknown_record_kind_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="unknown record kind"):
        normalize(record(load("192.0.2.3.json"), "192.0.2.3", kind="search"))
