"""Reading one field of a third-party row: addresses, ports, transports, times, states.

Each parser raises `BadValue` with a message a person can act on; the importer adds the
file and line. Addresses are canonicalised the way `Endpoint` stores them, so the same
address written `2001:DB8:0:0::1`, `[2001:db8::1]` or `::ffff:192.0.2.1` (an IPv4 address
in IPv6 clothing) merges with the same address written plainly.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from core.models import PortState, Transport
from core.naming import canonical_service

VALUE_CAP = 256
"""Original values kept beside a claim are capped: a banner is not a row value."""

_STATES = {
    "open": PortState.OPEN,
    "closed": PortState.CLOSED,
    "filtered": PortState.FILTERED,
    "open|filtered": PortState.OPEN_FILTERED,
    # nmap's "closed|filtered" (idle scan) cannot tell closed from filtered: inconclusive.
    "closed|filtered": PortState.FILTERED,
}

_TRANSPORTS = {"tcp": Transport.TCP, "udp": Transport.UDP, "6": Transport.TCP, "17": Transport.UDP}


_PLAIN = frozenset({str, int, float, bool, type(None)})


class BadValue(ValueError):
    """A field that cannot be read. `reason` groups like problems in the report."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def ip(text: object) -> str:
    """The canonical form of an address, however oddly it was written."""
    if not isinstance(text, str) or not text.strip():
        raise BadValue("bad address", f"address {text!r} is missing or not text")
    value = text.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    try:
        addr = ipaddress.ip_address(value)
    except ValueError as exc:
        raise BadValue("bad address", f"{text!r} is not an IP address") from exc
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return addr.compressed


def port(value: object) -> int:
    """A port number in 1-65535 (port 0 is not a port anything listens on)."""
    if isinstance(value, bool):
        raise BadValue("bad port", f"port {value!r} is not a number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise BadValue("bad port", f"port {value!r} is not a number")
    if not 1 <= number <= 65535:
        raise BadValue("port out of range", f"port {number} is out of range 1-65535")
    return number


def transport(value: object, default: Transport = Transport.TCP) -> Transport:
    """tcp or udp; empty means the default. SCTP and others are not portintel's."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    key = str(value).strip().lower()
    found = _TRANSPORTS.get(key)
    if found is None:
        raise BadValue("bad transport", f"transport {value!r} is not tcp or udp")
    return found


def state(value: object) -> PortState:
    if value is None or (isinstance(value, str) and not value.strip()):
        return PortState.OPEN
    found = _STATES.get(str(value).strip().lower())
    if found is None:
        raise BadValue("bad state", f"state {value!r} is not open, closed or filtered")
    return found


def when(value: object) -> datetime | None:
    """A time as ISO 8601 or Unix seconds; empty means the file does not say."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _epoch(float(value), value)
    text = str(value).strip()
    if not text:
        return None
    try:
        return _epoch(float(text), value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise BadValue("bad time", f"time {value!r} is neither ISO 8601 nor Unix seconds") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _epoch(seconds: float, original: object) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise BadValue("bad time", f"time {original!r} is out of range") from exc


def text(value: object) -> str | None:
    """A stripped string, or None for empty."""
    if value is None:
        return None
    out = str(value).strip()
    return out or None


def service(value: object) -> str | None:
    return canonical_service(text(value))


def scalars(
    record: Mapping[str, Any], prefix: str = ""
) -> dict[str, str | int | float | bool | None]:
    """The top-level plain values of a record, strings capped: what a verdict prints beside.

    Nested objects and lists are left out: they are the provider's detail, not the row.
    """
    # Exact type checks: this runs once per imported line, and isinstance chains show up.
    return {
        prefix + key: value[:VALUE_CAP] if type(value) is str else value
        for key, value in record.items()
        if type(value) in _PLAIN
    }
