"""The vantage tag: which machine, from which source address, made an observation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.distributed import vantage
from core.models import Endpoint, Kind, Observation, PortState, Transport
from tests.lab.netns import netns

AT = datetime(2026, 3, 1, tzinfo=UTC)


def active(ip: str, port: int, *tags: str) -> Observation:
    return Observation(
        endpoint=Endpoint(ip=ip, port=port, transport=Transport.TCP),
        source="verifier",
        kind=Kind.ACTIVE,
        state=PortState.OPEN,
        observed_at=AT,
        fetched_at=AT,
        product="nginx",
        tags=tags,
    )


def test_the_source_address_is_the_route_the_kernel_picks() -> None:
    # A UDP connect() is only a route lookup: no packet leaves.
    assert vantage.source_address("127.0.0.1") == "127.0.0.1"
    assert vantage.vantage_of("w1.example.com", "127.0.0.1") == "w1.example.com/127.0.0.1"


def test_an_address_with_no_route_has_an_unknown_source() -> None:
    # Inside a fresh namespace only loopback exists: documentation space has no route.
    with netns() as ns:
        assert ns.call(vantage.source_address, "192.0.2.1") == "unknown"
        assert ns.call(vantage.source_address, "127.0.0.1") == "127.0.0.1"


def test_stamping_adds_one_tag_per_observation_and_keeps_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lookups: list[str] = []

    def fake_source(ip: str) -> str:
        lookups.append(ip)
        return {"192.0.2.1": "198.51.100.7", "192.0.2.2": "203.0.113.9"}[ip]

    monkeypatch.setattr(vantage, "source_address", fake_source)
    given = [
        active("192.0.2.1", 22, "reason:syn-ack"),
        active("192.0.2.1", 80),
        active("192.0.2.2", 443),
    ]

    stamped = vantage.stamp(given, "w1.example.com")

    assert [o.tags for o in stamped] == [
        ("reason:syn-ack", "vantage:w1.example.com/198.51.100.7"),
        ("vantage:w1.example.com/198.51.100.7",),
        ("vantage:w1.example.com/203.0.113.9",),
    ]
    assert [o.model_dump(exclude={"tags"}) for o in stamped] == [
        o.model_dump(exclude={"tags"}) for o in given
    ]
    assert lookups == ["192.0.2.1", "192.0.2.2"]  # one route lookup per address
    assert "tags" in stamped[1].model_fields_set  # so the store writes it
