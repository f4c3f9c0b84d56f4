"""Target lists: parsing, hostname resolution, CIDR expansion, excludes, and the scope.

Accepted forms, one or more per line (separated by spaces or commas, `#` starts a comment):
an IPv4/IPv6 address, a CIDR block (`198.51.100.0/28`), an address range
(`198.51.100.10-198.51.100.20` or the short `198.51.100.10-20`), or a hostname. A malformed
entry is an `InputError` naming the file, line and value, unless the caller skips bad entries.
The `Scope` built here is the one place that decides what is in bounds.
"""

from __future__ import annotations

import asyncio
import csv
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InputError, ScopeError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_ADDRESSES = 65_536
"""Scopes larger than this are refused unless forced: a typo like /8 must not go out."""

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*\.?$", re.I
)

Resolver = Callable[[str], Awaitable[list[str]]]


@dataclass(frozen=True)
class Entry:
    """One target as written, with where it came from."""

    value: str
    file: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Skipped:
    entry: Entry
    reason: str

    def __str__(self) -> str:
        where = f"{self.entry.file}:{self.entry.line}: " if self.entry.file else ""
        return f"{where}{self.entry.value!r}: {self.reason}"


@dataclass
class Parsed:
    networks: list[IPNetwork] = field(default_factory=list)
    hostnames: list[Entry] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def _split_line(text: str) -> list[str]:
    text = text.split("#", 1)[0]
    return [token for token in re.split(r"[\s,;]+", text) if token]


def _range_networks(value: str) -> list[IPNetwork]:
    start_text, end_text = value.split("-", 1)
    start = ipaddress.ip_address(start_text)
    if end_text.isdigit() and start.version == 4:  # nmap's short form: 198.51.100.10-20
        end: IPAddress = ipaddress.ip_address(".".join([*str(start).split(".")[:3], end_text]))
    else:
        end = ipaddress.ip_address(end_text)
    if start.version != end.version or int(end) < int(start):
        raise ValueError("range end must be an address of the same family after the start")
    return list(ipaddress.summarize_address_range(start, end))


def parse_entry(value: str) -> list[IPNetwork] | None:
    """Networks for an address, CIDR or range; None for a hostname. ValueError if malformed."""
    if "/" in value:
        try:
            return [ipaddress.ip_network(value, strict=False)]
        except ValueError as exc:
            raise ValueError(f"not a valid CIDR block ({exc})") from None
    if "-" in value and re.match(r"^[0-9a-fA-F:.]+-[0-9a-fA-F:.]+$", value):
        try:
            return _range_networks(value)
        except ValueError as exc:
            raise ValueError(f"not a valid address range ({exc})") from None
    try:
        return [ipaddress.ip_network(ipaddress.ip_address(value.strip("[]")))]
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", value):
        raise ValueError("looks like an IPv4 address but is not a valid one")
    if _HOSTNAME.match(value):
        return None
    raise ValueError("not an IP address, CIDR block, address range or hostname")


def parse_entries(entries: Iterable[Entry], *, skip_bad: bool = False) -> Parsed:
    parsed = Parsed()
    for entry in entries:
        try:
            networks = parse_entry(entry.value)
        except ValueError as exc:
            if not skip_bad:
                raise InputError(
                    f"{entry.value!r}: {exc}. Fix the entry, or pass --skip-bad to go on "
                    "without it",
                    file=entry.file,
                    line=entry.line,
                ) from None
            parsed.skipped.append(Skipped(entry, str(exc)))
            continue
        if networks is None:
            parsed.hostnames.append(entry)
        else:
            parsed.networks.extend(networks)
    return parsed


def read_list(path: Path) -> Iterator[Entry]:
    """Entries of a plain target list file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read target list ({exc})", file=str(path)) from exc
    for number, line in enumerate(text.splitlines(), start=1):
        for token in _split_line(line):
            yield Entry(token, str(path), number)


def read_csv(path: Path, column: str) -> Iterator[Entry]:
    """Entries from one column of a CSV asset list with a header row."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = reader.fieldnames or []
            match = next((f for f in fields if f.strip().lower() == column.lower()), None)
            if match is None:
                raise InputError(
                    f"no column {column!r} in the header (columns: {', '.join(fields) or 'none'})",
                    file=str(path),
                    line=1,
                )
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read CSV asset list ({exc})", file=str(path)) from exc
    for number, row in enumerate(rows, start=2):
        for token in _split_line(row.get(match) or ""):
            yield Entry(token, str(path), number)


def gather_entries(
    args: Sequence[str], input_lists: Sequence[Path] = (), csv_column: str | None = None
) -> list[Entry]:
    """Entries from the command line: each argument is a target, or a file of targets."""
    entries: list[Entry] = []
    files = list(input_lists)
    for arg in args:
        path = Path(arg)
        if path.is_file():
            files.append(path)
        else:
            entries.extend(Entry(token) for token in _split_line(arg))
    for path in files:
        if csv_column or path.suffix.lower() == ".csv":
            entries.extend(read_csv(path, csv_column or "ip"))
        else:
            entries.extend(read_list(path))
    return entries


async def system_resolver(hostname: str) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(hostname, None, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


_INTERNAL = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8",
    )
]  # fmt: skip


def internal(target: IPAddress | IPNetwork) -> bool:
    """Loopback, private, link-local, CGNAT, multicast or reserved: no internet scanner can
    see it, so no passive source is asked (it would only spend requests and credits).
    Documentation ranges are not in this list: they are what tests and examples use."""
    if isinstance(target, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return any(
            target.version == net.version and target.subnet_of(net)  # type: ignore[arg-type]
            for net in _INTERNAL
        )
    return any(target in net for net in _INTERNAL)


@dataclass(frozen=True)
class Job:
    """The targets one source is asked about: its share of the scope."""

    ips: Sequence[str]  # single addresses: host lookups
    networks: Sequence[str] = ()  # CIDR blocks above the source's search threshold


@dataclass
class Scope:
    """What may be asked about and probed: the targets minus the excludes."""

    include: list[IPNetwork]
    exclude: list[IPNetwork]
    hostnames: dict[str, list[str]] = field(default_factory=dict)  # ip -> names given for it
    skipped: list[Skipped] = field(default_factory=list)

    def __contains__(self, ip: object) -> bool:
        try:
            addr = ipaddress.ip_address(str(ip))
        except ValueError:
            return False
        return any(addr in net for net in self.include) and not any(
            addr in net for net in self.exclude
        )

    def size(self) -> int:
        return sum(1 for _ in self.addresses())

    def addresses(self) -> Iterator[str]:
        """Every in-scope address once, in order."""
        seen: set[IPAddress] = set()
        for net in sorted(self.include, key=lambda n: (n.version, n)):
            hosts = [net.network_address] if net.num_addresses == 1 else net
            for addr in hosts:
                if addr in seen or any(addr in ex for ex in self.exclude):
                    continue
                seen.add(addr)
                yield addr.compressed

    def job(self, search_threshold: int) -> Job:
        """Single addresses to look up and CIDR blocks to search, for one source.

        Blocks larger than the threshold that no exclude cuts into are searched as a whole;
        everything else is looked up address by address.
        """
        ips: list[str] = []
        networks: list[str] = []
        for net in collapse(self.include):
            whole = not any(net.overlaps(ex) for ex in self.exclude)
            if whole and net.num_addresses > search_threshold and not internal(net):
                networks.append(net.with_prefixlen)
        searched = [ipaddress.ip_network(n) for n in networks]
        for ip in self.addresses():
            addr = ipaddress.ip_address(ip)
            if not internal(addr) and not any(addr in net for net in searched):
                ips.append(ip)
        return Job(ips=ips, networks=networks)


def collapse(networks: Iterable[IPNetwork]) -> list[IPNetwork]:
    v4 = [n for n in networks if n.version == 4]
    v6 = [n for n in networks if n.version == 6]
    return list(ipaddress.collapse_addresses(v4)) + list(ipaddress.collapse_addresses(v6))


async def _resolve(
    hostnames: Sequence[Entry], resolver: Resolver, skip_bad: bool, parsed: Parsed
) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    failures: list[tuple[Entry, str]] = []
    limit = asyncio.Semaphore(32)

    async def one(entry: Entry) -> None:
        async with limit:
            try:
                addresses = await asyncio.wait_for(resolver(entry.value), timeout=10)
            except (OSError, TimeoutError) as exc:
                failures.append((entry, f"hostname does not resolve ({exc or 'timed out'})"))
                return
        for address in addresses:
            canonical = ipaddress.ip_address(address).compressed
            names.setdefault(canonical, []).append(entry.value.rstrip(".").lower())
            parsed.networks.append(ipaddress.ip_network(canonical))

    async with asyncio.TaskGroup() as group:
        for entry in hostnames:
            group.create_task(one(entry))
    for entry, reason in failures:
        if not skip_bad:
            raise InputError(
                f"{entry.value!r}: {reason}. Fix it, or pass --skip-bad to go on without it",
                file=entry.file,
                line=entry.line,
            )
        parsed.skipped.append(Skipped(entry, reason))
    return names


async def build_scope(
    targets: Sequence[Entry],
    excludes: Sequence[Entry] = (),
    *,
    force: bool = False,
    skip_bad: bool = False,
    resolver: Resolver = system_resolver,
) -> Scope:
    """Parse, resolve and bound the targets. Refuses huge scopes unless `force`."""
    parsed = parse_entries(targets, skip_bad=skip_bad)
    excluded = parse_entries(excludes, skip_bad=skip_bad)
    names = await _resolve(parsed.hostnames, resolver, skip_bad, parsed)
    await _resolve(excluded.hostnames, resolver, skip_bad, excluded)
    scope = Scope(
        include=collapse(parsed.networks),
        exclude=collapse(excluded.networks),
        hostnames={ip: sorted(set(n)) for ip, n in names.items()},
        skipped=parsed.skipped + excluded.skipped,
    )
    if not scope.include:
        raise InputError("no targets given: pass addresses, CIDR blocks, hostnames or a file")
    total = sum(net.num_addresses for net in scope.include)
    if total > MAX_ADDRESSES and not force:
        raise ScopeError(
            f"the targets cover {total:,} addresses, more than {MAX_ADDRESSES:,}; "
            "check for a typo in a CIDR block, or pass --force to go ahead"
        )
    return scope
