"""Port specifications and portintel's own ranked port lists.

`parse_ports` reads nmap-style specs ("22,80,443", "1-1024", "-", "T:22,80,U:53,161") into
sorted, de-duplicated ports per transport. `top_tcp(n)` / `top_udp(n)` return the n
highest-ranked ports of the lists in `core/verify/data/` (their provenance is written at
the top of each file; nmap's nmap-services is licensed so that we may not use it). The
lists are read lazily on first use: importing this module does no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from core.models import Transport

MIN_PORT = 1
MAX_PORT = 65535
_DATA = "core.verify.data"
_LIST_FILES = {Transport.TCP: "tcp_ports.txt", Transport.UDP: "udp_ports.txt"}
_PREFIXES = {"T": Transport.TCP, "U": Transport.UDP}


@dataclass(frozen=True, slots=True)
class PortSpec:
    """Ports per transport, each sorted and unique.

    A spec entry without a `T:`/`U:` qualifier applies to both transports (as in nmap):
    the caller scans whichever transports it was asked for.
    """

    tcp: tuple[int, ...]
    udp: tuple[int, ...]

    def for_transport(self, transport: Transport) -> tuple[int, ...]:
        return self.tcp if transport is Transport.TCP else self.udp


@dataclass(frozen=True, slots=True)
class RankedPort:
    """One line of a ranked list: rank 1 is the most likely to face the internet."""

    rank: int
    port: int
    name: str  # informational; empty for the unnamed tail of a list


def parse_ports(spec: str) -> PortSpec:
    """Parse an nmap-style port spec; raise ValueError naming the first bad token.

    Accepted: single ports, ranges "a-b", open ranges "-b" (from 1) and "a-" (to 65535),
    "-" for all ports, and "T:"/"U:" qualifiers that apply until the next qualifier.
    Whitespace anywhere is ignored. Port 0, ports above 65535, reversed ranges, empty
    entries and anything else (service names included) are errors.
    """
    text = "".join(spec.split())
    if not text:
        raise ValueError("empty port specification")
    tcp: set[int] = set()
    udp: set[int] = set()
    targets: tuple[set[int], ...] = (tcp, udp)
    for token in text.split(","):
        body = token
        if ":" in token:
            prefix, _, body = token.partition(":")
            transport = _PREFIXES.get(prefix.upper())
            if transport is None:
                raise ValueError(
                    f"bad port entry {token!r}: unknown qualifier {prefix!r} (use T: or U:)"
                )
            targets = (tcp,) if transport is Transport.TCP else (udp,)
        if not body:
            raise ValueError(f"bad port entry {token!r}: empty entry")
        first, last = _parse_range(body, token)
        for target in targets:
            target.update(range(first, last + 1))
    return PortSpec(tcp=tuple(sorted(tcp)), udp=tuple(sorted(udp)))


def _parse_range(body: str, token: str) -> tuple[int, int]:
    """One entry without its qualifier: "80", "1-1024", "-1024", "60000-" or "-"."""
    if "-" not in body:
        port = _parse_port(body, token)
        return port, port
    low_text, _, high_text = body.partition("-")
    low = _parse_port(low_text, token) if low_text else MIN_PORT
    high = _parse_port(high_text, token) if high_text else MAX_PORT
    if low > high:
        raise ValueError(f"bad port entry {token!r}: range is reversed ({low} > {high})")
    return low, high


def _parse_port(text: str, token: str) -> int:
    # isdigit() alone accepts characters such as superscripts that int() rejects.
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"bad port entry {token!r}: {text!r} is not a port number")
    port = int(text)
    if not MIN_PORT <= port <= MAX_PORT:
        raise ValueError(f"bad port entry {token!r}: {port} is outside {MIN_PORT}-{MAX_PORT}")
    return port


def ranked(transport: Transport) -> tuple[RankedPort, ...]:
    """The whole ranked list for a transport, best first."""
    return _load(transport)


def top_tcp(n: int) -> tuple[int, ...]:
    """The n highest-ranked TCP ports, sorted by port number."""
    return _top(Transport.TCP, n)


def top_udp(n: int) -> tuple[int, ...]:
    """The n highest-ranked UDP ports, sorted by port number."""
    return _top(Transport.UDP, n)


def _top(transport: Transport, n: int) -> tuple[int, ...]:
    entries = _load(transport)
    if not 1 <= n <= len(entries):
        raise ValueError(f"top {transport} ports: n must be 1-{len(entries)}, got {n}")
    return tuple(sorted(entry.port for entry in entries[:n]))


@cache
def _load(transport: Transport) -> tuple[RankedPort, ...]:
    name = _LIST_FILES[transport]
    text = resources.files(_DATA).joinpath(name).read_text(encoding="utf-8")
    return parse_ranked_list(text, source=name)


def parse_ranked_list(text: str, *, source: str) -> tuple[RankedPort, ...]:
    """Parse a ranked list file ("PORT [NAME]" per line, '#' comments); reject duplicates."""
    entries: list[RankedPort] = []
    seen: set[int] = set()
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        where = f"{source}:{lineno}"
        if len(fields) > 2:
            raise ValueError(f"{where}: expected 'PORT [NAME]', got {raw!r}")
        port = _parse_port(fields[0], where)
        if port in seen:
            raise ValueError(f"{where}: port {port} is listed twice")
        seen.add(port)
        entries.append(RankedPort(len(entries) + 1, port, fields[1] if len(fields) == 2 else ""))
    return tuple(entries)
