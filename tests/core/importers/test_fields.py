from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.importers import fields
from core.models import PortState, Transport


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("192.0.2.1", "192.0.2.1"),
        (" 192.0.2.1 ", "192.0.2.1"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
    ],
)
def test_addresses_are_canonicalised(written: str, canonical: str) -> None:
    assert fields.ip(written) == canonical


@pytest.mark.parametrize("bad", ["", "example.com", "192.0.2.256", "192.000.002.001", None])
def test_bad_addresses_are_refused(bad: object) -> None:
    with pytest.raises(fields.BadValue) as info:
        fields.ip(bad)
    assert info.value.reason == "bad address"


@pytest.mark.parametrize(("value", "port"), [(1, 1), ("443", 443), (" 65535 ", 65535)])
def test_ports(value: object, port: int) -> None:
    assert fields.port(value) == port


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (0, "port out of range"),
        (65536, "port out of range"),
        ("70000", "port out of range"),
        ("-1", "bad port"),
        ("http", "bad port"),
        (True, "bad port"),
        (None, "bad port"),
    ],
)
def test_bad_ports(value: object, reason: str) -> None:
    with pytest.raises(fields.BadValue) as info:
        fields.port(value)
    assert info.value.reason == reason


def test_transports_and_states() -> None:
    assert fields.transport("UDP") is Transport.UDP
    assert fields.transport("") is Transport.TCP
    assert fields.transport("17") is Transport.UDP
    with pytest.raises(fields.BadValue):
        fields.transport("sctp")
    assert fields.state("open|filtered") is PortState.OPEN_FILTERED
    assert fields.state(None) is PortState.OPEN
    assert fields.state("closed|filtered") is PortState.FILTERED
    with pytest.raises(fields.BadValue):
        fields.state("ajar")


def test_times() -> None:
    expected = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert fields.when("1700000000") == expected
    assert fields.when(1700000000) == expected
    assert fields.when("2023-11-14T22:13:20Z") == expected
    assert fields.when("2023-11-14T23:13:20+01:00") == expected
    assert fields.when("2023-11-14 22:13:20") == expected  # no zone: UTC
    assert fields.when("") is None
    with pytest.raises(fields.BadValue):
        fields.when("last tuesday")


def test_scalars_keep_plain_values_and_cap_strings() -> None:
    record = {"a": "x" * 1000, "b": 1, "c": None, "d": {"nested": 1}, "e": [1], "f": True}
    assert fields.scalars(record) == {"a": "x" * fields.VALUE_CAP, "b": 1, "c": None, "f": True}
