"""The TCP connect scanner: truth over the full range, self-connect, walls, filtering, bounds.

Full-range scans run only inside a network namespace the test creates (its loopback
holds only the test's listeners). In the host namespace the tests probe only ports they
opened themselves.
"""

from __future__ import annotations

import select
import shutil
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from core.models import PortState
from core.verify import tcp
from core.verify.tcp import scan_tcp
from tests.lab.netns import Netns, lab_unavailable, netns

ALL_PORTS = range(1, 65536)
# Spread over the range on purpose: the edges, the System Ports, and the kernel's default
# ephemeral range (32768-60999), where a naive scanner's self-connects show up.
LISTENING = (1, 22, 80, 443, 1023, 1024, 8080, 20000, 32768, 40000, 45678, 50000, 60999, 65535)


def _listener(host: str, port: int, backlog: int = 128) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def _bound_not_listening(host: str = "127.0.0.1") -> socket.socket:
    """A port the test owns that answers RST: bound, never listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    return sock


@contextmanager
def _namespace_listeners(ns: Netns, host: str, ports: tuple[int, ...]) -> Iterator[None]:
    socks = ns.call(lambda: [_listener(host, port) for port in ports])
    try:
        yield
    finally:
        for sock in socks:
            sock.close()


def _require_iptables(ns: Netns) -> None:
    if shutil.which("iptables") is None:
        lab_unavailable("iptables is not installed")
    try:
        ns.exec(["iptables", "-L", "-n"])
    except Exception as exc:
        lab_unavailable(f"iptables does not work here: {exc}")


@pytest.mark.lab
def test_full_range_finds_exactly_the_listeners_every_time() -> None:
    with netns() as ns, _namespace_listeners(ns, "127.0.0.1", LISTENING):
        # Given 14 listeners spread over the range, when the full range is scanned three
        # times with the default workers and once in-process, then each run reports exactly
        # those ports open and every other port closed: no self-connect, no miss.
        runs = [ns.call(scan_tcp, ["127.0.0.1"], ALL_PORTS) for _ in range(3)]
        runs.append(ns.call(scan_tcp, ["127.0.0.1"], ALL_PORTS, workers=1))
    for scan in runs:
        host = scan.host("127.0.0.1")
        assert host.open == LISTENING
        assert host.closed == 65535 - len(LISTENING)
        assert host.filtered == {}
        assert not host.wall
        assert host.answered == len(LISTENING)
        assert scan.ports_scanned == 65535
    assert runs[-1].workers == 1


@pytest.mark.lab
def test_self_connect_is_reprobed_and_never_reported_open() -> None:
    with netns() as ns:
        # Given a namespace whose only ephemeral port is 50000, every connect to
        # 127.0.0.1:50000 picks 50000 as its source port and connects to itself.
        ns.exec(["sysctl", "-qw", "net.ipv4.ip_local_port_range=50000 50000"])
        scans = [
            ns.call(scan_tcp, ["127.0.0.1"], range(49990, 50011), workers=workers)
            for workers in (1, 2)
        ]
    for scan in scans:
        host = scan.host("127.0.0.1")
        # The self-connect happened (so the check below is exercised) and was re-probed
        # from the same port until the scanner gave up: closed, not open.
        assert host.self_connects == tcp._MAX_SELF_CONNECT_REPROBES + 1
        assert host.open == ()
        assert host.closed == 21
        assert host.state(50000) is PortState.CLOSED


@pytest.mark.lab
def test_ipv6_full_range() -> None:
    ports = (22, 443, 33000, 65535)
    with netns() as ns:
        try:
            ns.call(lambda: _listener("::1", 0).close())
        except OSError as exc:
            lab_unavailable(f"no IPv6 loopback in a namespace: {exc}")
        with _namespace_listeners(ns, "::1", ports):
            scan = ns.call(scan_tcp, ["::1"], ALL_PORTS)
    host = scan.host("::1")
    assert host.open == ports
    assert host.closed == 65535 - len(ports)
    assert host.filtered == {}


@pytest.mark.lab
def test_syn_ack_wall_is_reported_as_a_wall_with_its_count() -> None:
    listener_port = 9999
    wall_ports = range(1, 3001)
    with netns() as ns:
        _require_iptables(ns)
        # Every TCP port of 127.0.0.2 is redirected to one listener: a host that answers
        # on all ports, like a SYN-ACK wall. 127.0.0.1 stays an ordinary host.
        ns.exec(
            ["iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", "127.0.0.2",
             "-j", "REDIRECT", "--to-ports", str(listener_port)]
        )  # fmt: skip
        with ExitStack() as stack:
            sock = ns.call(_listener, "127.0.0.1", listener_port, 4096)
            stack.callback(sock.close)
            scan = ns.call(scan_tcp, ["127.0.0.1", "127.0.0.2"], [*wall_ports, listener_port])
    wall = scan.host("127.0.0.2")
    assert wall.wall
    assert wall.answered == len(wall_ports) + 1
    assert wall.open == ()  # not 3,001 services
    assert wall.state(80) is PortState.FILTERED  # unknown behind a wall
    normal = scan.host("127.0.0.1")
    assert not normal.wall
    assert normal.open == (listener_port,)
    assert normal.closed == len(wall_ports)


@pytest.mark.lab
def test_dropped_port_is_filtered_after_a_second_probe_and_rst_is_final() -> None:
    open_port, dropped, rejected, closed = 7001, 7002, 7003, 7004
    with netns() as ns:
        _require_iptables(ns)
        ns.exec(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", str(dropped), "-j", "DROP"])
        ns.exec(
            ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", str(rejected),
             "-j", "REJECT", "--reject-with", "icmp-host-prohibited"]
        )  # fmt: skip
        with _namespace_listeners(ns, "127.0.0.1", (open_port,)):
            ports = [open_port, dropped, rejected, closed]
            # (A lambda: ns.call takes `timeout=` for itself.)
            once = ns.call(lambda: scan_tcp(["127.0.0.1"], ports, timeout=0.2, workers=1))
            no_retry = ns.call(
                lambda: scan_tcp(["127.0.0.1"], ports, timeout=0.2, retries=0, workers=1)
            )
    host = once.host("127.0.0.1")
    assert host.open == (open_port,)
    assert host.filtered == {dropped: "timeout", rejected: "host-unreachable"}
    assert host.closed == 1
    # Four first probes plus exactly one re-probe: the dropped port's. The RST and the
    # ICMP answer are final; only silence earns a second look.
    assert once.probes == 5
    assert no_retry.probes == 4
    assert no_retry.host("127.0.0.1").filtered == host.filtered


class _CountingEpoll:
    """An epoll that records the most sockets registered at once."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self.registered: set[int] = set()
        self.peak = 0

    def register(self, fd: int, events: int) -> None:
        self._epoll.register(fd, events)
        self.registered.add(fd)
        self.peak = max(self.peak, len(self.registered))

    def unregister(self, fd: int) -> None:
        self._epoll.unregister(fd)
        self.registered.discard(fd)

    def poll(self, timeout: float) -> list[tuple[int, int]]:
        return self._epoll.poll(timeout)

    def close(self) -> None:
        self._epoll.close()


@pytest.mark.lab
def test_in_flight_connects_stay_within_the_per_host_and_global_bounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dropped = range(30000, 30020)
    epolls: list[_CountingEpoll] = []

    def counting_epoll() -> _CountingEpoll:
        epolls.append(_CountingEpoll())
        return epolls[-1]

    monkeypatch.setattr(tcp, "_new_epoll", counting_epoll)
    with netns() as ns:
        _require_iptables(ns)
        ns.exec(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "30000:30019", "-j", "DROP"])
        one_host = ns.call(
            lambda: scan_tcp(
                ["127.0.0.1"], dropped,
                timeout=0.05, retries=1, max_in_flight=8, per_host=3, workers=1,
            )
        )  # fmt: skip
        two_hosts = ns.call(
            lambda: scan_tcp(
                ["127.0.0.1", "127.0.0.3"], dropped,
                timeout=0.05, retries=0, max_in_flight=5, per_host=4, workers=1,
            )
        )  # fmt: skip
    assert epolls[0].peak == 3  # the per-host bound, reached and never passed
    assert epolls[1].peak == 5  # the global bound binds before 2 x 4
    assert one_host.host("127.0.0.1").filtered == dict.fromkeys(dropped, "timeout")
    assert one_host.probes == 40
    for ip in ("127.0.0.1", "127.0.0.3"):
        assert two_hosts.host(ip).filtered == dict.fromkeys(dropped, "timeout")


class _SimulatedTime:
    """A clock that moves only when the scanner waits in epoll: waits become simulated."""

    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    def epoll(self) -> _SimulatedEpoll:
        return _SimulatedEpoll(self)


class _SimulatedEpoll(_CountingEpoll):
    def __init__(self, time: _SimulatedTime) -> None:
        super().__init__()
        self._time = time

    def poll(self, timeout: float) -> list[tuple[int, int]]:
        self._time.now += max(0.0, timeout)
        return self._epoll.poll(0)


def test_rate_cap_spaces_connects_in_simulated_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # Host namespace: only ports this test owns (bound, not listening: they answer RST).
    with ExitStack() as stack:
        socks = [stack.enter_context(_bound_not_listening()) for _ in range(30)]
        ports = [sock.getsockname()[1] for sock in socks]
        for rate in (None, 100.0):
            simulated = _SimulatedTime()
            monkeypatch.setattr(tcp, "_clock", simulated.clock)
            monkeypatch.setattr(tcp, "_new_epoll", simulated.epoll)
            scan = scan_tcp(["127.0.0.1"], ports, rate=rate, workers=1)
            assert scan.host("127.0.0.1").closed == 30
            if rate is None:
                assert scan.elapsed == 0.0  # nothing ever waited
            else:
                # 30 connects at 100/s: the last may start 0.29 s after the first.
                assert scan.elapsed == pytest.approx(0.29, abs=0.01)


@pytest.mark.parametrize("workers", [1, 2])
def test_host_namespace_scan_of_only_our_own_ports(workers: int) -> None:
    with ExitStack() as stack:
        listeners = [stack.enter_context(_listener("127.0.0.1", 0)) for _ in range(3)]
        silent = [stack.enter_context(_bound_not_listening()) for _ in range(2)]
        open_ports = sorted(sock.getsockname()[1] for sock in listeners)
        closed_ports = [sock.getsockname()[1] for sock in silent]
        scan = scan_tcp(["127.0.0.1"], open_ports + closed_ports, workers=workers)
        walled = scan_tcp(
            ["127.0.0.1"], open_ports + closed_ports, workers=workers, wall_threshold=2
        )
    host = scan.host("127.0.0.1")
    assert host.open == tuple(open_ports)
    assert host.closed == 2
    assert host.filtered == {}
    assert [host.state(port) for port in closed_ports] == [PortState.CLOSED] * 2
    assert scan.workers == workers
    # Three answering ports are more than a wall threshold of two.
    assert walled.host("127.0.0.1").wall
    assert walled.host("127.0.0.1").answered == 3
    assert walled.host("127.0.0.1").open == ()


@pytest.fixture
def no_scanning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to start probing fail the test: refusals must come first."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("scanning started despite bad arguments")

    monkeypatch.setattr(tcp, "_scan_in_process", refuse)
    monkeypatch.setattr(tcp, "_scan_in_workers", refuse)


@pytest.mark.parametrize(
    ("hosts", "ports", "kwargs", "message"),
    [
        (["localhost"], [80], {}, "not an IP address: 'localhost'"),
        (["127.0.0.1"], [0], {}, "port out of range 1-65535: 0"),
        (["127.0.0.1"], [65536], {}, "port out of range 1-65535: 65536"),
        (["127.0.0.1"], [80], {"timeout": 0}, "timeout must be positive"),
        (["127.0.0.1"], [80], {"retries": -1}, "retries must be 0 or more"),
        (["127.0.0.1"], [80], {"workers": 0}, "workers must be at least 1"),
        (["127.0.0.1"], [80], {"rate": 0}, "rate must be positive"),
        (["127.0.0.1"], [80], {"per_host": 0}, "must be at least 1"),
    ],
)
@pytest.mark.usefixtures("no_scanning")
def test_bad_arguments_are_refused_before_any_probe(
    hosts: list[str], ports: list[int], kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        scan_tcp(hosts, ports, **kwargs)  # type: ignore[arg-type]


@pytest.mark.usefixtures("no_scanning")
def test_one_string_is_not_a_host_list() -> None:
    with pytest.raises(TypeError):
        scan_tcp("127.0.0.1", [80])
