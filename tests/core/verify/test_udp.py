"""The UDP scanner and its payload database.

Wide scans run inside a namespace the test creates; in the host namespace the tests
probe only sockets they opened themselves.
"""

from __future__ import annotations

import shutil
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import pytest

from core.models import PortState
from core.verify import udp
from core.verify.ports import top_udp
from core.verify.udp import GENERIC, Payload, parse_payloads, payload_for, payloads, scan_udp
from tests.lab.netns import Netns, lab_unavailable, netns

Answer = Callable[[bytes], "bytes | None"]  # a test responder's reply to one datagram

# --- the payload database: each payload is well-formed for its protocol -------------------


def test_every_payload_decodes_and_each_port_has_one() -> None:
    table = payloads()
    names = {payload.name for payload in table.values()}
    assert {
        "dns-version-bind", "ntp-client", "snmp-v2c-get-sysdescr", "netbios-nbstat",
        "ssdp-msearch", "memcached-version", "mdns-services", "ike-main-mode",
        "chrony-tracking",
    } <= names  # fmt: skip
    for port, payload in table.items():
        assert port in payload.ports
        assert payload.data or payload.name == "nat-pmp-address"


def test_unlisted_ports_get_the_empty_datagram() -> None:
    assert payload_for(40000) == Payload(name=GENERIC, ports=(40000,), data=b"")


def test_dns_payload_asks_version_bind_in_chaos() -> None:
    data = payload_for(53).data
    _id, _flags, qdcount, ancount, nscount, arcount = struct.unpack(">6H", data[:12])
    assert (qdcount, ancount, nscount, arcount) == (1, 0, 0, 0)
    assert data[12:-4] == b"\x07version\x04bind\x00"
    assert struct.unpack(">2H", data[-4:]) == (16, 3)  # TXT, CHAOS


def test_ntp_payload_is_a_v4_client_request() -> None:
    data = payload_for(123).data
    assert len(data) == 48
    assert data[0] >> 6 == 0 and (data[0] >> 3) & 7 == 4 and data[0] & 7 == 3
    assert data[1:] == bytes(47)


def _ber(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the short-form BER element at `at`."""
    assert data[at + 1] < 0x80
    return data[at], at + 2, at + 2 + data[at + 1]


def test_snmp_payload_is_a_v2c_get_request_for_sysdescr() -> None:
    data = payload_for(161).data
    tag, start, end = _ber(data, 0)
    assert (tag, end) == (0x30, len(data))  # the outer length covers the whole message
    tag, start, end = _ber(data, start)
    assert (tag, data[start:end]) == (0x02, b"\x01")  # version: v2c
    tag, start, end = _ber(data, end)
    assert (tag, data[start:end]) == (0x04, b"public")
    tag, start, end = _ber(data, end)
    assert tag == 0xA0 and end == len(data)  # GetRequest-PDU closes the message
    assert bytes.fromhex("06082b06010201010100") in data[start:end]  # sysDescr.0


def test_netbios_payload_asks_node_status_of_the_wildcard_name() -> None:
    data = payload_for(137).data
    encoded = data[13:45]
    assert data[12] == 32
    pairs = zip(encoded[::2], encoded[1::2], strict=True)
    name = bytes(((hi - 0x41) << 4) | (lo - 0x41) for hi, lo in pairs)
    assert name == b"*" + bytes(15)
    assert struct.unpack(">2H", data[-4:]) == (0x21, 1)  # NBSTAT, IN


def test_memcached_payload_has_the_udp_frame_header() -> None:
    data = payload_for(11211).data
    _request_id, sequence, total, reserved = struct.unpack(">4H", data[:8])
    assert (sequence, total, reserved) == (0, 1, 0)
    assert data[8:] == b"version\r\n"


def test_ike_payload_lengths_add_up() -> None:
    data = payload_for(500).data
    assert struct.unpack(">I", data[24:28])[0] == len(data)  # ISAKMP header length
    assert data[16] == 1 and data[17] == 0x10 and data[18] == 2  # SA, v1.0, main mode
    assert struct.unpack(">H", data[30:32])[0] == len(data) - 28  # SA payload length
    assert payload_for(4500).data == bytes(4) + data  # NAT-T adds the non-ESP marker


def test_chrony_payload_is_a_padded_tracking_request() -> None:
    data = payload_for(323).data
    version, pkt_type, res1, res2, command = struct.unpack(">4BH", data[:6])
    assert (version, pkt_type, res1, res2, command) == (6, 1, 0, 0, 33)
    assert len(data) == 104


def test_ssdp_payload_is_an_m_search() -> None:
    text = payload_for(1900).data.decode("ascii")
    assert text.startswith("M-SEARCH * HTTP/1.1\r\n")
    assert 'MAN: "ssdp:discover"\r\n' in text
    assert text.endswith("\r\n\r\n")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[payload]]\nname = "a"\nports = [1]\nhex = "zz"\n', "payload 'a': 'hex' is not valid"),
        ('[[payload]]\nports = [1]\nhex = "00"\n', "needs a unique, non-empty name"),
        ('[[payload]]\nname = "empty"\nports = [1]\nhex = "00"\n', "needs a unique"),
        ('[[payload]]\nname = "a"\nports = []\nhex = "00"\n', "'ports' must be a non-empty"),
        ('[[payload]]\nname = "a"\nports = [0]\nhex = "00"\n', "bad port 0"),
        (
            '[[payload]]\nname = "a"\nports = [1]\nhex = "00"\n'
            '[[payload]]\nname = "b"\nports = [1]\nhex = "01"\n',
            "port 1 already has 'a'",
        ),
        ('[[payload]]\nname = "a"\nports = [1]\nhex = "00"\npad_to = 70000\n', "'pad_to'"),
        ("[[payload]\n", "x.toml: "),
    ],
)
def test_payload_file_errors_name_the_payload(toml: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_payloads(toml, source="x.toml")


def test_pad_to_appends_zero_bytes() -> None:
    table = parse_payloads(
        '[[payload]]\nname = "a"\nports = [9]\nhex = "ab"\npad_to = 4\n', source="x"
    )
    assert table[9].data == b"\xab\x00\x00\x00"


# --- scanning ----------------------------------------------------------------------------


class _Responder:
    """A UDP server that records what it receives and answers with `answer(datagram)`."""

    def __init__(self, sock: socket.socket, answer: Answer) -> None:
        self.sock = sock
        self.answer = answer
        self.received: list[bytes] = []
        self.sock.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.received.append(data)
            reply = self.answer(data)
            if reply is not None:
                self.sock.sendto(reply, peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def _udp_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, port))
    return sock


@contextmanager
def _responders(
    ns: Netns | None, answers: list[tuple[str, int, Answer]]
) -> Iterator[list[_Responder]]:
    """One responder per (host, port, answer); port 0 lets the kernel pick; in `ns` if given."""
    with ExitStack() as stack:
        found: list[_Responder] = []
        for host, port, answer in answers:
            sock = ns.call(_udp_socket, host, port) if ns else _udp_socket(host, port)
            responder = _Responder(sock, answer)
            stack.callback(responder.close)
            found.append(responder)
        yield found


def _require_iptables(ns: Netns) -> None:
    if shutil.which("iptables") is None:
        lab_unavailable("iptables is not installed")
    ns.exec(["iptables", "-L", "-n"])


@pytest.mark.lab
def test_reply_closed_dropped_and_silent_ports_in_a_namespace() -> None:
    echo, big, silent, closed, dropped = 40001, 40002, 40003, 40004, 40005
    with netns() as ns:
        _require_iptables(ns)
        ns.exec(["iptables", "-A", "INPUT", "-p", "udp", "--dport", str(dropped), "-j", "DROP"])
        answers: list[tuple[str, int, Answer]] = [
            ("127.0.0.1", echo, lambda data: b"echo:" + data),
            ("127.0.0.1", big, lambda _data: b"x" * 5000),
            # A service that ignores what it does not understand:
            ("127.0.0.1", silent, lambda _data: None),
        ]
        table = {echo: Payload("test-hello", (echo,), b"hello")}
        with _responders(ns, answers) as responders:
            scan = ns.call(
                lambda: scan_udp(
                    ["127.0.0.1"], [echo, big, silent, closed, dropped],
                    timeout=0.2, retries=1, reply_cap=100, payload_map=table,
                )
            )  # fmt: skip
            silent_received = list(responders[2].received)
    ports = scan.host("127.0.0.1").ports
    assert ports[echo].state is PortState.OPEN
    assert ports[echo].reply == b"echo:hello"  # the payload went out and the reply came back
    assert ports[echo].payload == "test-hello"
    assert ports[big].state is PortState.OPEN
    assert ports[big].reply == b"x" * 100  # capped
    assert (ports[closed].state, ports[closed].reason) == (PortState.CLOSED, "port-unreachable")
    assert (ports[dropped].state, ports[dropped].reason) == (
        PortState.OPEN_FILTERED,
        "no-response",
    )
    assert ports[silent].state is PortState.OPEN_FILTERED
    assert silent_received == [b"", b""]  # the empty datagram, and one resend
    assert scan.host("127.0.0.1").open == (echo, big)
    # Five first sends, one resend each for the two unanswered ports.
    assert scan.probes == 7


@pytest.mark.lab
def test_icmp_prohibited_is_filtered_at_once() -> None:
    port = 40010
    with netns() as ns:
        _require_iptables(ns)
        ns.exec(
            ["iptables", "-A", "INPUT", "-p", "udp", "--dport", str(port),
             "-j", "REJECT", "--reject-with", "icmp-host-prohibited"]
        )  # fmt: skip
        scan = ns.call(lambda: scan_udp(["127.0.0.1"], [port], timeout=0.2))
    result = scan.host("127.0.0.1").ports[port]
    assert (result.state, result.reason) == (PortState.FILTERED, "host-unreachable")
    assert scan.probes == 1


@pytest.mark.lab
def test_ipv6_reply_and_closed() -> None:
    with netns() as ns:
        try:
            ns.call(lambda: _udp_socket("::1", 0).close())
        except OSError as exc:
            lab_unavailable(f"no IPv6 loopback in a namespace: {exc}")
        with _responders(ns, [("::1", 40020, lambda d: b"v6:" + d)]):
            scan = ns.call(lambda: scan_udp(["::1"], [40020, 40021], timeout=0.2))
    ports = scan.host("::1").ports
    assert ports[40020].state is PortState.OPEN and ports[40020].reply == b"v6:"
    assert ports[40021].state is PortState.CLOSED


@pytest.mark.lab
def test_many_ports_and_hosts_within_bounds() -> None:
    # Two hosts x 1,000 ports, tight bounds: every port still gets its true state. Each
    # host has its own responder: a connected socket accepts replies only from its peer.
    ports = list(range(41000, 42000))
    answers: list[tuple[str, int, Answer]] = [
        ("127.0.0.1", 41500, lambda d: b"ok"),
        ("127.0.0.2", 41500, lambda d: b"ok"),
    ]
    with netns() as ns, _responders(ns, answers):
        scan = ns.call(
            lambda: scan_udp(
                ["127.0.0.1", "127.0.0.2"], ports, timeout=0.2, max_in_flight=16, per_host=8
            )
        )
    for ip in ("127.0.0.1", "127.0.0.2"):
        host = scan.host(ip)
        assert host.open == (41500,)
        assert len(host.with_state(PortState.CLOSED)) == 999


@pytest.mark.lab
def test_real_lab_udp_services_answer_their_payloads() -> None:
    try:
        from tests.lab import daemons
    except ImportError as exc:
        lab_unavailable(f"tests/lab/daemons.py is not available: {exc}")
    with netns() as ns, ExitStack() as stack:
        workdir = daemons.scratch_dir()
        stack.callback(shutil.rmtree, workdir, True)
        services = []
        stack.callback(lambda: daemons.stop_services(services))
        try:
            for start in (
                daemons.start_dnsmasq,
                daemons.start_memcached,
                daemons.start_snmpd,
                daemons.start_chrony,
            ):
                services.append(start(ns, workdir))
        except daemons.DaemonMissing as exc:
            lab_unavailable(str(exc))
        # The whole top-1,000 list, which includes chrony's 323 and memcached's 11211.
        scan = ns.call(lambda: scan_udp(["127.0.0.1"], top_udp(1000), timeout=0.5))
    by_name = {service.name: service for service in services}
    host = scan.host("127.0.0.1")
    expected = {
        port.port for service in services for port in service.ports if port.transport == "udp"
    }
    assert set(host.open) == expected == {53, 123, 161, 323, 11211}
    assert len(host.with_state(PortState.CLOSED)) == 1000 - len(expected)
    replies = {port: host.ports[port].reply for port in expected}
    # Ground truth from dpkg (memcached) and the daemons' own protocols.
    assert replies[11211][8:] == f"VERSION {by_name['memcached'].upstream_version}\r\n".encode()
    assert b"dnsmasq-" in replies[53]
    assert replies[123][0] & 7 == 4  # NTP server mode
    assert replies[161][0] == 0x30 and b"public" in replies[161]
    assert replies[323][:2] == b"\x06\x02"  # chrony reply packet, protocol 6


def test_host_namespace_scan_of_only_our_own_sockets() -> None:
    answers: list[tuple[str, int, Answer]] = [
        ("127.0.0.1", 0, lambda d: b"pong"),
        ("127.0.0.1", 0, lambda d: None),
    ]
    with _responders(None, answers) as found:
        pong, quiet = (responder.port for responder in found)
        scan = scan_udp(["127.0.0.1"], [pong, quiet], timeout=0.2, retries=0)
    ports = scan.host("127.0.0.1").ports
    assert (ports[pong].state, ports[pong].reply) == (PortState.OPEN, b"pong")
    assert ports[quiet].state is PortState.OPEN_FILTERED


@pytest.fixture
def no_scanning(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("scanning started despite bad arguments")

    monkeypatch.setattr(udp, "_scan", refuse)


@pytest.mark.parametrize(
    ("hosts", "ports", "kwargs", "message"),
    [
        (["localhost"], [53], {}, "not an IP address: 'localhost'"),
        (["127.0.0.1"], [0], {}, "port out of range 1-65535: 0"),
        (["127.0.0.1"], [53], {"timeout": 0}, "must be positive"),
        (["127.0.0.1"], [53], {"reply_cap": 0}, "must be positive"),
        (["127.0.0.1"], [53], {"rate": -1}, "rate must be positive"),
    ],
)
@pytest.mark.usefixtures("no_scanning")
def test_bad_arguments_are_refused_before_any_probe(
    hosts: list[str], ports: list[int], kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        scan_udp(hosts, ports, **kwargs)  # type: ignore[arg-type]
