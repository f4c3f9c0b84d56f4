"""core.models validators: the fast paths must accept, reject and rewrite exactly as the
slow ones (ipaddress for addresses, astimezone for times)."""

from __future__ import annotations

import ipaddress
import pickle
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from core.certificate import as_utc
from core.models import (
    Endpoint,
    Observation,
    Transport,
    _already_canonical,
    _canonical_ip,
    replaced,
    trusted,
)
from tests.core.store.factories import full_observation


def _slow(value: str) -> str:
    return ipaddress.ip_address(value.strip()).compressed


def _v6(rng: random.Random) -> ipaddress.IPv6Address:
    # 2001:db8::/32 with zero-heavy groups, so every compression case comes up.
    groups = [rng.choice((0, 0, 0, 1, 0xFFFF, rng.randrange(1 << 16))) for _ in range(6)]
    low = int.from_bytes(b"".join(g.to_bytes(2, "big") for g in groups), "big")
    return ipaddress.IPv6Address((0x20010DB8 << 96) | low)


def test_the_fast_path_agrees_with_ipaddress_on_many_spellings() -> None:
    rng = random.Random(7)
    spellings: list[str] = []
    for _ in range(3000):
        v6 = _v6(rng)
        spellings += [v6.compressed, v6.exploded, v6.compressed.upper()]
        # Documentation networks only; the last octet also runs out of range.
        prefix = rng.choice(("192.0.2", "198.51.100", "203.0.113"))
        v4 = f"{prefix}.{rng.choice((0, 1, 9, 99, 255, 256, rng.randrange(300)))}"
        spellings += [v4, v4.replace(".", ".0", 1), f"{v4}.0", f" {v4}", v4.replace(".", "..")]
    for value in spellings:
        try:
            expected = _slow(value)
        except ValueError:
            with pytest.raises(ValueError):
                _canonical_ip(value)
            continue
        assert _canonical_ip(value) == expected, value


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8::", "2001:db8::"),
        ("2001:db8::1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:db8:0:0:1::1", "2001:db8::1:0:0:1"),  # the longest zero run is compressed
        ("2001:DB8::A", "2001:db8::a"),
        ("2001:db8::192.0.2.1", "2001:db8::c000:201"),  # dotted tails go to ipaddress
        (" 198.51.100.7\n", "198.51.100.7"),
    ],
)
def test_addresses_come_out_canonical(value: str, canonical: str) -> None:
    assert Endpoint(ip=value, port=1).ip == canonical
    # Only an already-canonical spelling takes the fast path.
    assert _already_canonical(value) == (value == canonical)


@pytest.mark.parametrize(
    "value", ["", "192.0.2", "192.0.2.256", "192.0.2.01", "2001:db8::g", "192.0.2.1\x00", "x"]
)
def test_invalid_addresses_are_still_rejected(value: str) -> None:
    with pytest.raises(ValidationError):
        Endpoint(ip=value, port=1)


def test_times_are_utc_whatever_zone_they_came_in() -> None:
    aware = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    naive = datetime(2026, 1, 2, 3, 4, 5)
    utc = datetime(2026, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert as_utc(aware) == utc and as_utc(aware).tzinfo is UTC
    assert as_utc(naive) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert as_utc(utc) is utc  # already UTC: kept as it is
    obs = Observation.model_validate(
        {
            "endpoint": {"ip": "192.0.2.1", "port": 80},
            "source": "shodan",
            "kind": "passive",
            "observed_at": aware,
            "fetched_at": naive,
        }
    )
    assert obs.observed_at == utc and obs.observed_at.tzinfo is UTC
    assert obs.fetched_at.tzinfo is UTC


def test_models_pickle_as_their_values_and_come_back_equal() -> None:
    obs = full_observation(raw_id=5)
    partial = Observation.model_validate(
        {
            "endpoint": {"ip": "192.0.2.1", "port": 80},
            "source": "x",
            "kind": "active",
            "fetched_at": datetime(2026, 1, 1, tzinfo=UTC),
        }
    )
    for original in (obs, partial, obs.endpoint):
        back = pickle.loads(pickle.dumps(original))  # noqa: S301 - our own bytes, just made
        assert back == original
        assert type(back) is type(original)
        assert back.model_fields_set == original.model_fields_set
        assert back.model_dump_json() == original.model_dump_json()
    assert partial.model_fields_set == {"endpoint", "source", "kind", "fetched_at"}
    with pytest.raises(ValidationError):  # still frozen
        back.port = 1  # type: ignore[misc]


def test_trusted_builds_without_validating() -> None:
    endpoint = trusted(Endpoint, {"ip": "192.0.2.9", "port": 7, "transport": Transport.UDP})
    assert endpoint == Endpoint(ip="192.0.2.9", port=7, transport="udp")
    assert endpoint.model_fields_set == {"ip", "port", "transport"}


def test_replaced_is_model_copy_with_an_update() -> None:
    original = full_observation()
    copied = replaced(original, raw_id=42, banner=None)
    expected = original.model_copy(update={"raw_id": 42, "banner": None})
    assert copied == expected
    assert list(copied.__dict__) == list(expected.__dict__)  # serialised in this order
    assert copied.model_fields_set == expected.model_fields_set
    assert copied.model_dump_json() == expected.model_dump_json()
    assert original.raw_id != 42  # the original is untouched


def test_replaced_refuses_a_field_the_model_does_not_have() -> None:
    with pytest.raises(ValueError, match="Observation has no field colour"):
        replaced(full_observation(), colour="red")
