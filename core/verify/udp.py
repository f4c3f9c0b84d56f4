"""UDP scanning with protocol payloads on connected sockets.

A UDP service answers only a datagram it understands, so each port gets the payload of
its protocol (core/verify/data/udp_payloads.toml: data, with a comment per payload) and
every other port an empty datagram. Each probe uses its own *connected* socket: the
kernel then delivers only the target's replies to it, and an ICMP port-unreachable comes
back as ECONNREFUSED on that socket.

States (the honest three):
- any reply -> open (the reply bytes are kept, capped, for fingerprinting);
- ECONNREFUSED (ICMP port unreachable) -> closed;
- other ICMP errors (host/net unreachable, prohibited) -> filtered;
- no answer after `retries` resends -> open|filtered: a silent service and a firewall
  that drops look the same. Over real links the kernel rate-limits ICMP errors (about
  1,000/s), so closed ports can also land here; a `rate` cap makes that rarer.

Only the hosts and ports passed in are touched; hosts must be IP literals.
"""

from __future__ import annotations

import errno
import ipaddress
import resource
import select
import socket
import time
import tomllib
from collections import deque
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import cache
from importlib import resources

from core.models import PortState
from core.verify.tcp import family, fd_budget, normalise_hosts, normalise_ports

_DATA = "core.verify.data"
_PAYLOAD_FILE = "udp_payloads.toml"
_MAX_DATAGRAM = 65507
GENERIC = "empty"  # name of the payload sent to ports no payload names

_UNREACHABLE = {
    errno.EHOSTUNREACH: "host-unreachable",
    errno.ENETUNREACH: "net-unreachable",
    errno.EHOSTDOWN: "host-down",
    errno.ENETDOWN: "net-down",
    errno.EACCES: "prohibited",
    errno.EPERM: "prohibited",
}


@dataclass(frozen=True, slots=True)
class Payload:
    """One probe datagram and the ports it is sent to."""

    name: str
    ports: tuple[int, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class UdpPortResult:
    port: int
    state: PortState
    reason: str  # "reply", "port-unreachable", "no-response", "host-unreachable", ...
    payload: str  # name of the payload that was sent
    reply: bytes = b""  # the first reply datagram, capped at `reply_cap` bytes


@dataclass(frozen=True, slots=True)
class UdpHostResult:
    host: str
    ports: Mapping[int, UdpPortResult]  # every scanned port, ascending
    elapsed: float  # seconds from scan start until this host's last port was decided

    def with_state(self, state: PortState) -> tuple[int, ...]:
        return tuple(port for port, result in self.ports.items() if result.state is state)

    @property
    def open(self) -> tuple[int, ...]:
        return self.with_state(PortState.OPEN)


@dataclass(frozen=True, slots=True)
class UdpScan:
    hosts: tuple[UdpHostResult, ...]
    probes: int  # datagrams sent, resends included
    elapsed: float

    def host(self, ip: str) -> UdpHostResult:
        key = ipaddress.ip_address(ip).compressed
        for result in self.hosts:
            if result.host == key:
                return result
        raise KeyError(ip)


# --- payload database -------------------------------------------------------------------


@cache
def payloads() -> Mapping[int, Payload]:
    """port -> payload, from the packaged data file (read on first use, then cached)."""
    text = resources.files(_DATA).joinpath(_PAYLOAD_FILE).read_text(encoding="utf-8")
    return parse_payloads(text, source=_PAYLOAD_FILE)


def parse_payloads(text: str, *, source: str) -> dict[int, Payload]:
    """Parse payload TOML (format at the top of udp_payloads.toml); errors name the payload."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: {exc}") from exc
    by_port: dict[int, Payload] = {}
    names: set[str] = set()
    for index, table in enumerate(document.get("payload", [])):
        name = table.get("name")
        where = f"{source}: payload {name or index!r}"
        if not isinstance(name, str) or not name or name in names or name == GENERIC:
            raise ValueError(f"{where}: needs a unique, non-empty name other than {GENERIC!r}")
        names.add(name)
        ports = table.get("ports")
        if not isinstance(ports, list) or not ports:
            raise ValueError(f"{where}: 'ports' must be a non-empty list")
        data = _decode_hex(table.get("hex"), where)
        pad_to = table.get("pad_to", 0)
        if not isinstance(pad_to, int) or pad_to > _MAX_DATAGRAM:
            raise ValueError(f"{where}: 'pad_to' must be an integer up to {_MAX_DATAGRAM}")
        data += bytes(max(0, pad_to - len(data)))
        payload = Payload(name=name, ports=tuple(ports), data=data)
        for port in ports:
            if not isinstance(port, int) or not 1 <= port <= 65535:
                raise ValueError(f"{where}: bad port {port!r}")
            if port in by_port:
                raise ValueError(f"{where}: port {port} already has {by_port[port].name!r}")
            by_port[port] = payload
    return by_port


def _decode_hex(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{where}: 'hex' must be a string")
    try:
        data = bytes.fromhex("".join(value.split()))
    except ValueError as exc:
        raise ValueError(f"{where}: 'hex' is not valid hex ({exc})") from None
    if len(data) > _MAX_DATAGRAM:
        raise ValueError(f"{where}: payload longer than a UDP datagram")
    return data


def payload_for(port: int) -> Payload:
    """The payload sent to `port`: its protocol's, or the generic empty datagram."""
    return payloads().get(port) or Payload(name=GENERIC, ports=(port,), data=b"")


# --- the scanner ------------------------------------------------------------------------


class _Probe:
    """One port of one host: its connected socket and how often it was sent."""

    __slots__ = ("deadline", "host", "payload", "port", "sends", "sock")

    def __init__(self, sock: socket.socket, host: int, port: int, payload: Payload) -> None:
        self.sock = sock
        self.host = host
        self.port = port
        self.payload = payload
        self.sends = 0
        self.deadline = 0.0


def scan_udp(
    hosts: Sequence[str],
    ports: Sequence[int],
    *,
    timeout: float = 1.0,
    retries: int = 1,
    max_in_flight: int = 512,
    per_host: int = 256,
    rate: float | None = None,
    reply_cap: int = 4096,
    payload_map: Mapping[int, Payload] | None = None,
) -> UdpScan:
    """Probe every port in `ports` on every host in `hosts` with its protocol payload.

    timeout: seconds to wait for an answer after each send.
    retries: resends (on the same socket) before a silent port is called open|filtered.
    max_in_flight / per_host: bounds on probes awaiting an answer (each holds a socket).
    rate: cap on datagrams per second (sends and resends); None for no cap.
    reply_cap: bytes of the first reply kept per port.
    payload_map: port -> payload, replacing the packaged database (tests, experiments).
    """
    port_list = normalise_ports(ports)
    if timeout <= 0 or retries < 0 or max_in_flight < 1 or per_host < 1 or reply_cap < 1:
        raise ValueError("timeout, max_in_flight, per_host, reply_cap must be positive")
    if rate is not None and rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    table = payloads() if payload_map is None else payload_map
    saved_limit = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        return _scan(
            normalise_hosts(hosts),
            port_list,
            table,
            timeout,
            retries,
            fd_budget(max_in_flight),
            per_host,
            rate,
            reply_cap,
        )
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, saved_limit)


def _scan(
    host_list: list[str],
    port_list: list[int],
    table: Mapping[int, Payload],
    timeout: float,
    retries: int,
    max_in_flight: int,
    per_host: int,
    rate: float | None,
    reply_cap: int,
) -> UdpScan:
    """The event loop of `scan_udp` (arguments as documented there, already checked)."""

    def payload(port: int) -> Payload:
        return table.get(port) or Payload(name=GENERIC, ports=(port,), data=b"")

    start = time.monotonic()
    results: list[dict[int, UdpPortResult]] = [{} for _ in host_list]
    last = [0.0] * len(host_list)
    families = [family(host) for host in host_list]
    n_hosts, n_ports = len(host_list), len(port_list)
    cursors = [0] * n_hosts  # next index into port_list, per host
    active = deque(range(n_hosts))  # hosts with ports not yet started, served round-robin
    in_flight = [0] * n_hosts
    probes: dict[int, _Probe] = {}  # fd -> probe awaiting an answer
    resend_at: deque[_Probe] = deque()  # deadline order (every deadline is now + timeout)
    sent = 0
    epoll = select.epoll()

    def finish(probe: _Probe, state: PortState, reason: str, reply: bytes = b"") -> None:
        fd = probe.sock.fileno()
        del probes[fd]
        epoll.unregister(fd)
        probe.sock.close()
        probe.deadline = -1.0  # marks it finished for the deadline queue
        in_flight[probe.host] -= 1
        results[probe.host][probe.port] = UdpPortResult(
            probe.port, state, reason, probe.payload.name, reply
        )
        last[probe.host] = time.monotonic() - start

    def send(probe: _Probe, now: float) -> None:
        nonlocal sent
        sent += 1
        probe.sends += 1
        probe.deadline = now + timeout
        resend_at.append(probe)
        try:
            probe.sock.send(probe.payload.data)
        except ConnectionRefusedError:
            finish(probe, PortState.CLOSED, "port-unreachable")
        except (BlockingIOError, InterruptedError):
            pass  # the datagram is lost like any other: the deadline brings a resend
        except OSError as exc:
            if exc.errno in _UNREACHABLE:
                finish(probe, PortState.FILTERED, _UNREACHABLE[exc.errno])
            elif exc.errno not in (errno.ENOBUFS, errno.EAGAIN):
                finish(probe, PortState.FILTERED, f"error:{errno.errorcode.get(exc.errno or 0)}")

    try:
        while active or probes:
            now = time.monotonic()
            # 1. Start new probes within the bounds (and the rate cap, if any).
            skipped = 0  # consecutive hosts found at their per-host bound
            rate_blocked = False
            while active and len(probes) < max_in_flight:
                if rate is not None and sent >= (now - start) * rate + 1:
                    rate_blocked = True
                    break
                host = active[0]
                if in_flight[host] >= per_host:
                    skipped += 1
                    if skipped >= len(active):
                        break
                    active.rotate(-1)
                    continue
                if cursors[host] >= n_ports:
                    active.popleft()
                    continue
                skipped = 0
                port = port_list[cursors[host]]
                cursors[host] += 1
                if n_hosts > 1:
                    active.rotate(-1)
                sock = socket.socket(families[host], socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
                try:
                    sock.connect((host_list[host], port))  # local only: no packet is sent
                except OSError as exc:
                    sock.close()
                    results[host][port] = UdpPortResult(
                        port, PortState.FILTERED, f"error:{exc.strerror}", GENERIC
                    )
                    continue
                probe = _Probe(sock, host, port, payload(port))
                probes[sock.fileno()] = probe
                epoll.register(sock.fileno(), select.EPOLLIN | select.EPOLLERR)
                in_flight[host] += 1
                send(probe, now)
            if not probes:
                if active and rate is not None:  # only the rate cap holds the next send back
                    time.sleep(max(0.0, min(0.25, start + sent / rate - time.monotonic())))
                continue

            # 2. Read answers: a reply, or the ICMP error the kernel queued on the socket.
            now = time.monotonic()
            can_start = active and len(probes) < max_in_flight and skipped < len(active)
            if can_start and not rate_blocked:
                wait = 0.0
            else:
                until = [resend_at[0].deadline - now] if resend_at else []
                if rate is not None:
                    until.append(start + sent / rate - now)
                wait = min(0.25, max(0.0, min(until, default=0.25)))
            for fd, _events in epoll.poll(wait):
                answered = probes.get(fd)
                if answered is None:
                    continue
                probe = answered
                try:
                    reply = probe.sock.recv(reply_cap)
                except (BlockingIOError, InterruptedError):
                    continue
                except ConnectionRefusedError:
                    finish(probe, PortState.CLOSED, "port-unreachable")
                    continue
                except OSError as exc:
                    reason = _UNREACHABLE.get(exc.errno or 0, f"error:{exc.strerror}")
                    finish(probe, PortState.FILTERED, reason)
                    continue
                finish(probe, PortState.OPEN, "reply", reply)

            # 3. Resend what is overdue, or give up on it as open|filtered.
            now = time.monotonic()
            while resend_at and (resend_at[0].deadline < 0 or resend_at[0].deadline <= now):
                probe = resend_at.popleft()
                if probe.deadline < 0:
                    continue  # finished already
                if probe.sends > retries:
                    finish(probe, PortState.OPEN_FILTERED, "no-response")
                elif rate is not None and sent >= (now - start) * rate + 1:
                    resend_at.appendleft(probe)  # no rate budget yet: try next round
                    break
                else:
                    send(probe, now)
    finally:
        for probe in probes.values():
            with suppress(OSError):
                probe.sock.close()
        epoll.close()
    return UdpScan(
        hosts=tuple(
            UdpHostResult(host, dict(sorted(results[index].items())), last[index])
            for index, host in enumerate(host_list)
        ),
        probes=sent,
        elapsed=time.monotonic() - start,
    )
