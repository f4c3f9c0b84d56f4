"""TCP connect scanning built for speed and for truth.

Why not one asyncio task per port: on loopback and fast links a non-blocking connect()
is usually decided inside the syscall (refused, or already connected), so an event-loop
round trip per port is the whole cost, and a saturated loop turns open ports into
timeouts (reference/baselines.md). Here each worker runs a tight loop of non-blocking
connects; `select.epoll` is consulted only for connects still in progress, each with a
deadline. The port list is split over forked worker processes (forked from the calling
thread, so a network namespace that thread joined is inherited).

Decisions, each one a promise the tests check:
- A RST (ECONNREFUSED) is a definitive "closed": the host itself answered. It is not
  probed again. A timeout is not an answer: the port is probed `retries` more times
  before it is called filtered. ICMP unreachable/prohibited is called filtered at once.
- TCP self-connect (the kernel picked the target port as our source port and the socket
  connected to itself) is never "open": the port is probed again from another source
  port, and called closed if that keeps happening (nothing can be listening there).
- Open sockets are closed with an RST (SO_LINGER 0): no TIME_WAIT pile-up that would eat
  the ephemeral ports a full scan needs, and the service sees one aborted connection.
- A host answering on more than `wall_threshold` ports is a SYN-ACK wall: it is reported
  with that count and no port list.
- Only the hosts and ports passed in are touched; hosts must be IP literals (no DNS).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import pickle
import resource
import select
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field

from core.models import PortState

_FD_MARGIN = 64  # descriptors kept free for everything else a worker holds
_MIN_PROBES_PER_WORKER = 4096  # below this, forking costs more than it saves
_MAX_WORKERS = 8
_MAX_SELF_CONNECT_REPROBES = 3
_MAX_LOCAL_ERROR_REPROBES = 5
_LOCAL_ERROR_PAUSE = 0.01  # seconds to stop launching after e.g. EADDRNOTAVAIL
_LAUNCH_BATCH = 512  # connects launched between two looks at epoll
_RST_ON_CLOSE = struct.pack("ii", 1, 0)

# errno -> reason for a port that is called filtered at once (someone answered "no").
_UNREACHABLE = {
    errno.EHOSTUNREACH: "host-unreachable",
    errno.ENETUNREACH: "net-unreachable",
    errno.EHOSTDOWN: "host-down",
    errno.ENETDOWN: "net-down",
    errno.EACCES: "prohibited",
    errno.EPERM: "prohibited",
}
# errnos that say something about us, not the target: try again shortly.
_LOCAL = frozenset(
    {errno.EADDRNOTAVAIL, errno.EAGAIN, errno.ENOBUFS, errno.EMFILE, errno.ENFILE, errno.ENOMEM}
)
_TIMEOUTS = frozenset({errno.ETIMEDOUT})

# Seams for tests: the clock and the epoll factory the scanning loop uses (a test can
# drive the rate cap with a simulated clock, or count in-flight registrations).
_clock: Callable[[], float] = time.monotonic
_new_epoll: Callable[[], select.epoll] = select.epoll


@dataclass(frozen=True, slots=True)
class TcpHostResult:
    """What one host answered.

    `open` is empty for a wall (see `answered`); every scanned port that is neither
    open nor in `filtered` was closed (counted in `closed`).
    """

    host: str
    open: tuple[int, ...]
    closed: int
    filtered: Mapping[int, str]  # port -> reason: "timeout", "host-unreachable", ...
    wall: bool
    answered: int  # ports that completed a handshake (= len(open) unless a wall)
    self_connects: int  # self-connects seen and re-probed (never reported open)
    elapsed: float  # seconds from scan start until this host's last port was decided

    def state(self, port: int) -> PortState:
        """State of a port that was scanned (a wall's ports are all FILTERED: unknown)."""
        if self.wall or port in self.filtered:
            return PortState.FILTERED
        return PortState.OPEN if port in self.open else PortState.CLOSED


@dataclass(frozen=True, slots=True)
class TcpScan:
    """The result of one `scan_tcp` call."""

    hosts: tuple[TcpHostResult, ...]
    ports_scanned: int  # per host
    probes: int  # connect() calls made, re-probes included
    workers: int
    elapsed: float

    def host(self, ip: str) -> TcpHostResult:
        key = ipaddress.ip_address(ip).compressed
        for result in self.hosts:
            if result.host == key:
                return result
        raise KeyError(ip)


@dataclass(frozen=True, slots=True)
class _Config:
    timeout: float
    retries: int
    in_flight: int  # per worker
    per_host: int  # per worker
    rate: float | None  # connects/second, per worker
    start: float  # time.monotonic() when the scan started (shared by all workers)


@dataclass(slots=True)
class _Tally:
    """One host's outcome inside one worker (merged across workers by the parent)."""

    open: list[int] = field(default_factory=list)
    closed: int = 0
    filtered: dict[int, str] = field(default_factory=dict)
    self_connects: int = 0
    last: float = 0.0


@dataclass(slots=True)
class _WorkerResult:
    tallies: list[_Tally]
    probes: int


class _Pending:
    """A connect still in progress, waiting for epoll or its deadline."""

    __slots__ = ("attempt", "deadline", "done", "host", "local", "port", "sock")

    def __init__(
        self, sock: socket.socket, host: int, port: int, attempt: int, local: int, deadline: float
    ) -> None:
        self.sock = sock
        self.host = host
        self.port = port
        self.attempt = attempt  # timeouts so far
        self.local = local  # self-connects and local errors so far
        self.deadline = deadline
        self.done = False


def scan_tcp(
    hosts: Sequence[str],
    ports: Sequence[int],
    *,
    timeout: float = 1.0,
    retries: int = 1,
    max_in_flight: int = 4096,
    per_host: int = 1024,
    rate: float | None = None,
    workers: int | None = None,
    wall_threshold: int | None = None,
) -> TcpScan:
    """Connect-scan every port in `ports` on every host in `hosts`.

    hosts: IP literals (v4 or v6); names are refused so nothing is resolved or touched
        beyond what was passed. Scope is the caller's job.
    timeout: seconds to wait for a connect in progress before it counts as unanswered.
    retries: extra probes of an unanswered port before it is called filtered.
    max_in_flight / per_host: bounds on connects in progress, over all workers together
        (each worker gets its share); also bounded by RLIMIT_NOFILE, whose soft limit a
        worker raises towards the hard limit when it needs to.
    rate: cap on connect() calls per second over all workers; None for no cap.
    workers: processes to split the ports over; None picks by CPU count and scan size;
        1 scans in the calling process.
    wall_threshold: a host answering on more ports than this is a wall. Default:
        half the ports scanned, but at least 64 and at most 1,000.
    """
    host_list = normalise_hosts(hosts)
    port_list = normalise_ports(ports)
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    if retries < 0:
        raise ValueError(f"retries must be 0 or more, got {retries}")
    if max_in_flight < 1 or per_host < 1:
        raise ValueError("max_in_flight and per_host must be at least 1")
    if rate is not None and rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    threshold = (
        wall_threshold if wall_threshold is not None else min(1000, max(64, len(port_list) // 2))
    )
    n_workers = _pick_workers(workers, len(host_list) * len(port_list), len(port_list))

    start = _clock()
    config = _Config(
        timeout=timeout,
        retries=retries,
        in_flight=max(1, max_in_flight // n_workers),
        per_host=max(1, per_host // n_workers),
        rate=None if rate is None else rate / n_workers,
        start=start,
    )
    families = [family(host) for host in host_list]
    targets = list(zip(host_list, families, strict=True))
    if n_workers == 1:
        results = [_scan_in_process(targets, port_list, config)]
    else:
        slices = [port_list[index::n_workers] for index in range(n_workers)]
        results = _scan_in_workers(targets, slices, config)
    elapsed = _clock() - start
    return TcpScan(
        hosts=tuple(
            _merge(host, [result.tallies[index] for result in results], threshold)
            for index, host in enumerate(host_list)
        ),
        ports_scanned=len(port_list),
        probes=sum(result.probes for result in results),
        workers=n_workers,
        elapsed=elapsed,
    )


def normalise_hosts(hosts: Sequence[str]) -> list[str]:
    """Canonical, de-duplicated IP literals; names are refused (the scanners resolve nothing)."""
    if isinstance(hosts, str):
        raise TypeError("hosts must be a sequence of IP addresses, not one string")
    seen: dict[str, None] = {}
    for host in hosts:
        try:
            seen[ipaddress.ip_address(host).compressed] = None
        except ValueError:
            raise ValueError(f"not an IP address: {host!r} (resolve names first)") from None
    return list(seen)


def normalise_ports(ports: Sequence[int]) -> list[int]:
    """Sorted unique ports, each checked to be in 1-65535."""
    for port in ports:
        if not 1 <= port <= 65535:
            raise ValueError(f"port out of range 1-65535: {port}")
    return sorted(set(ports))


def family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET


def _pick_workers(requested: int | None, probes: int, ports: int) -> int:
    if requested is not None:
        if requested < 1:
            raise ValueError(f"workers must be at least 1, got {requested}")
        return max(1, min(requested, ports))
    cpus = len(os.sched_getaffinity(0))
    by_size = probes // _MIN_PROBES_PER_WORKER
    return max(1, min(cpus, _MAX_WORKERS, by_size, ports))


def _merge(host: str, tallies: Sequence[_Tally], threshold: int) -> TcpHostResult:
    open_ports = sorted(port for tally in tallies for port in tally.open)
    filtered = {port: reason for tally in tallies for port, reason in tally.filtered.items()}
    wall = len(open_ports) > threshold
    return TcpHostResult(
        host=host,
        open=() if wall else tuple(open_ports),
        closed=sum(tally.closed for tally in tallies),
        filtered=dict(sorted(filtered.items())),
        wall=wall,
        answered=len(open_ports),
        self_connects=sum(tally.self_connects for tally in tallies),
        elapsed=max((tally.last for tally in tallies), default=0.0),
    )


# --- worker processes -------------------------------------------------------------------


def _scan_in_process(
    targets: list[tuple[str, socket.AddressFamily]], ports: list[int], config: _Config
) -> _WorkerResult:
    """Scan in the calling process; the raised fd limit is put back afterwards."""
    saved = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        in_flight = fd_budget(config.in_flight)
        return _scan_slice(targets, ports, config, in_flight)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, saved)


def _scan_in_workers(
    targets: list[tuple[str, socket.AddressFamily]],
    slices: list[list[int]],
    config: _Config,
) -> list[_WorkerResult]:
    """Fork one process per slice; each sends its pickled `_WorkerResult` down a pipe."""
    children: list[tuple[int, int]] = []  # (pid, read end)
    try:
        for ports in slices:
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # child: never returns
                os.close(read_end)
                _child_main(write_end, targets, ports, config)
            os.close(write_end)
            children.append((pid, read_end))
        # Reading each pipe to its end in turn cannot deadlock: a child blocked on a full
        # pipe is unblocked when its turn comes, and no child waits on another.
        payloads = [_read_all(read_end) for _, read_end in children]
        results: list[_WorkerResult] = []
        for (pid, _), payload in zip(children, payloads, strict=True):
            _, status = os.waitpid(pid, 0)
            outcome = pickle.loads(payload) if payload else None  # noqa: S301 - our own child
            if isinstance(outcome, _WorkerResult) and os.waitstatus_to_exitcode(status) == 0:
                results.append(outcome)
            else:
                raise RuntimeError(f"TCP scan worker {pid} failed: {outcome!r}")
        children.clear()
        return results
    finally:
        for pid, read_end in children:  # only on error: stop and reap what is left
            with suppress(OSError):
                os.close(read_end)
            with suppress(ProcessLookupError):
                os.kill(pid, 9)
            with suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _child_main(
    write_end: int,
    targets: list[tuple[str, socket.AddressFamily]],
    ports: list[int],
    config: _Config,
) -> None:
    code = 1
    try:
        try:
            outcome: object = _scan_slice(targets, ports, config, fd_budget(config.in_flight))
            code = 0
        except BaseException as exc:  # reported to the parent, never raised here
            outcome = f"{type(exc).__name__}: {exc}"
        data = pickle.dumps(outcome)
        view = memoryview(data)
        while view:
            view = view[os.write(write_end, view) :]
    finally:
        # _exit: the child must not run the parent's atexit hooks or flush its buffers.
        os._exit(code)


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    try:
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def fd_budget(wanted: int) -> int:
    """Raise RLIMIT_NOFILE's soft limit (within the hard one) for `wanted` sockets.

    Returns the in-flight bound this process can actually afford. Shared with udp.py.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + _FD_MARGIN
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        with suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - _FD_MARGIN))


# --- the scanning loop ------------------------------------------------------------------


def _scan_slice(
    targets: list[tuple[str, socket.AddressFamily]],
    ports: list[int],
    config: _Config,
    in_flight_cap: int,
) -> _WorkerResult:
    """Probe `ports` on every target: the hot loop of the scanner.

    Hosts are served round-robin so that one slow host does not hold the others back;
    a host's re-probes go ahead of its fresh ports. Each round launches a batch of
    connects, then collects what epoll has decided, then expires what is overdue.
    """
    n_hosts = len(targets)
    tallies = [_Tally() for _ in targets]
    cursors = [0] * n_hosts  # next index into `ports`, per host
    reprobe: list[deque[tuple[int, int, int]]] = [deque() for _ in targets]
    in_flight = [0] * n_hosts
    pending: dict[int, _Pending] = {}  # fd -> connect in progress
    expiry: deque[_Pending] = deque()  # deadline order: every probe has the same timeout
    active = deque(range(n_hosts))  # hosts that may have something to launch
    is_active = [True] * n_hosts
    epoll = _new_epoll()
    timeout, retries, per_host = config.timeout, config.retries, config.per_host
    rate, start = config.rate, config.start
    n_ports = len(ports)
    probes = 0
    pause_until = 0.0
    watch = select.EPOLLOUT | select.EPOLLERR | select.EPOLLHUP
    sol_socket, so_error = socket.SOL_SOCKET, socket.SO_ERROR
    stream = socket.SOCK_STREAM | socket.SOCK_NONBLOCK
    refused, in_progress = errno.ECONNREFUSED, errno.EINPROGRESS
    monotonic = _clock

    def requeue(host: int, item: tuple[int, int, int]) -> None:
        reprobe[host].append(item)
        if not is_active[host]:
            is_active[host] = True
            active.append(host)

    def settle(
        host: int, port: int, attempt: int, local: int, err: int, sock: socket.socket | None
    ) -> None:
        """Record a decided connect (the refused fast path is inlined in the loop)."""
        nonlocal pause_until
        tally = tallies[host]
        tally.last = monotonic() - start
        if err == 0:
            if sock is not None and _is_self_connect(sock):
                tally.self_connects += 1
                if local < _MAX_SELF_CONNECT_REPROBES:
                    requeue(host, (port, attempt, local + 1))
                else:
                    tally.closed += 1  # the kernel keeps picking it: nothing listens there
            else:
                tally.open.append(port)
        elif err == refused:
            tally.closed += 1
        elif err in _UNREACHABLE:
            tally.filtered[port] = _UNREACHABLE[err]
        elif err in _TIMEOUTS:
            if attempt < retries:
                requeue(host, (port, attempt + 1, local))
            else:
                tally.filtered[port] = "timeout"
        elif err in _LOCAL:
            pause_until = monotonic() + _LOCAL_ERROR_PAUSE
            if local < _MAX_LOCAL_ERROR_REPROBES:
                requeue(host, (port, attempt, local + 1))
            else:
                tally.filtered[port] = f"local-error:{errno.errorcode.get(err, err)}"
        else:
            tally.filtered[port] = f"error:{errno.errorcode.get(err, err)}"

    def close_connected(sock: socket.socket) -> None:
        with suppress(OSError):
            sock.setsockopt(sol_socket, socket.SO_LINGER, _RST_ON_CLOSE)
        sock.close()

    try:
        while True:
            # 1. Launch connects while there is work, room, and (if capped) rate budget.
            launched = 0
            skipped = 0  # consecutive hosts found at their per-host bound
            now = monotonic()
            while active and len(pending) < in_flight_cap and launched < _LAUNCH_BATCH:
                if now < pause_until:
                    break
                if rate is not None and probes >= (now - start) * rate + 1:
                    break
                host = active[0]
                if in_flight[host] >= per_host:
                    skipped += 1
                    if skipped >= len(active):
                        break
                    active.rotate(-1)
                    continue
                queue = reprobe[host]
                if queue:
                    port, attempt, local = queue.popleft()
                elif cursors[host] < n_ports:
                    port, attempt, local = ports[cursors[host]], 0, 0
                    cursors[host] += 1
                else:
                    active.popleft()  # nothing left to launch; requeue() brings it back
                    is_active[host] = False
                    continue
                skipped = 0
                if n_hosts > 1:
                    active.rotate(-1)
                address, family = targets[host]
                probes += 1
                launched += 1
                if launched % 64 == 0:
                    now = monotonic()
                try:
                    sock = socket.socket(family, stream)
                except OSError as exc:
                    settle(host, port, attempt, local, exc.errno or errno.EMFILE, None)
                    continue
                err = sock.connect_ex((address, port))
                if err == in_progress:
                    # Loopback and fast links usually decide inside the syscall: look first.
                    err = sock.getsockopt(sol_socket, so_error)
                    if err == 0:  # still in progress, or connected: epoll says which
                        entry = _Pending(sock, host, port, attempt, local, now + timeout)
                        fd = sock.fileno()
                        pending[fd] = entry
                        expiry.append(entry)
                        in_flight[host] += 1
                        epoll.register(fd, watch)
                        continue
                if err == refused:  # the common case of a full scan, kept cheap
                    tallies[host].closed += 1
                    sock.close()
                    continue
                settle(host, port, attempt, local, err, sock)
                sock.close()

            # 2. Done when nothing is left to launch and nothing is in flight.
            if not pending and not active:
                break

            # 3. Collect decided connects; block only when nothing can be launched now.
            now = monotonic()
            wait = 0.0 if launched else _wait_time(now, expiry, pause_until, rate, probes, start)
            for fd, _events in epoll.poll(wait):
                entry = pending.pop(fd)
                entry.done = True
                in_flight[entry.host] -= 1
                epoll.unregister(fd)
                sock = entry.sock
                err = sock.getsockopt(sol_socket, so_error)
                settle(entry.host, entry.port, entry.attempt, entry.local, err, sock)
                if err == 0:
                    close_connected(sock)
                else:
                    sock.close()

            # 4. Expire connects past their deadline: re-probe, or call the port filtered.
            now = monotonic()
            while expiry and (expiry[0].done or expiry[0].deadline <= now):
                entry = expiry.popleft()
                if entry.done:
                    continue
                entry.done = True
                fd = entry.sock.fileno()
                del pending[fd]
                in_flight[entry.host] -= 1
                epoll.unregister(fd)
                entry.sock.close()
                settle(entry.host, entry.port, entry.attempt, entry.local, errno.ETIMEDOUT, None)
    finally:
        for entry in pending.values():
            entry.sock.close()
        epoll.close()
    end = monotonic() - start
    for host, tally in enumerate(tallies):
        # Hosts decided entirely on the fast path have no timestamp yet.
        if tally.last == 0.0 and cursors[host]:
            tally.last = end
    return _WorkerResult(tallies=tallies, probes=probes)


def _wait_time(
    now: float,
    expiry: deque[_Pending],
    pause_until: float,
    rate: float | None,
    probes: int,
    start: float,
) -> float:
    """How long epoll may block: until the next deadline, the end of a pause, or the next
    rate token, whichever comes first (capped, so a stale estimate costs little)."""
    candidates = [expiry[0].deadline - now] if expiry else []
    if pause_until > now:
        candidates.append(pause_until - now)
    if rate is not None:
        candidates.append(start + probes / rate - now)  # when the next token is due
    if not candidates:
        return 0.0
    return min(max(0.0, min(candidates)), 0.25)


def _is_self_connect(sock: socket.socket) -> bool:
    """True when the socket connected to itself (same address and port on both ends)."""
    try:
        local = sock.getsockname()
        peer = sock.getpeername()
    except OSError:
        return False
    return bool(local[:2] == peer[:2])
