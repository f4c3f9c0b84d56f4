"""Checks of the lab itself (not of portintel): every daemon answers where it says it
listens, speaks the protocol it is listed for, and its ground truth holds.

The probes here are deliberately minimal, hand-built exchanges (a greeting, one query),
run on a thread inside the lab's namespace. They only ever address 127.0.0.1 there.
"""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.lab.daemons import (
    LabPorts,
    LabService,
    LabStartError,
    RunningLab,
    scratch_dir,
    start_lab,
    start_memcached,
    start_redis,
    stop_services,
    upstream_version,
)
from tests.lab.netns import netns

LAB_NAMES = {
    "nginx", "openssh", "vsftpd", "postfix", "dovecot", "redis", "postgresql", "mariadb",
    "memcached", "dnsmasq", "snmpd", "chrony", "rsync",
}  # fmt: skip


# -- raw probes (run inside the namespace) ---------------------------------------------


def tcp_exchange(
    port: int,
    send: bytes = b"",
    until: Callable[[bytes], bool] | bytes = b"\n",
    timeout: float = 5.0,
) -> bytes:
    """Connect, optionally send, read until `until` holds or the peer goes quiet."""
    done = until if callable(until) else (lambda data: until in data)
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        if send:
            sock.sendall(send)
        for _ in range(256):  # bounded: at most 256 reads, each with a deadline
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
            if done(data):
                break
    return data


def udp_exchange(port: int, payload: bytes, attempts: int = 3, timeout: float = 2.0) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
        for _ in range(attempts):  # UDP: resend a few times rather than wait long
            sock.send(payload)
            try:
                return sock.recv(65535)
            except TimeoutError:
                continue
    raise TimeoutError(f"no UDP answer from 127.0.0.1:{port}")


def inside(lab: RunningLab, fn: Callable[..., Any], *args: Any) -> Any:
    return lab.ns.call(fn, *args, timeout=60)


def dns_query(name: str, qtype: int, qclass: int = 1, ident: int = 0x4C42) -> bytes:
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.split(".")) + b"\0"
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)  # recursion desired
    return header + labels + struct.pack("!HH", qtype, qclass)


def ber(tag: int, value: bytes) -> bytes:
    assert len(value) < 128  # short-form lengths are all these probes need
    return bytes([tag, len(value)]) + value


def snmp_get(community: str, oid: str, request_id: int = 0x1234) -> bytes:
    """An SNMPv2c GetRequest for one OID (BER by hand: the lab must not need our code)."""
    parts = [int(p) for p in oid.split(".")]
    encoded_oid = bytes([40 * parts[0] + parts[1], *parts[2:]])  # every arc here is < 128
    varbind = ber(0x30, ber(0x06, encoded_oid) + ber(0x05, b""))
    pdu = ber(
        0xA0,
        ber(0x02, request_id.to_bytes(2, "big"))
        + ber(0x02, b"\0")
        + ber(0x02, b"\0")
        + ber(0x30, varbind),
    )
    return ber(0x30, ber(0x02, b"\x01") + ber(0x04, community.encode()) + pdu)


# -- pure parts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("debian", "upstream"),
    [
        ("1:9.2p1-2+deb12u10", "9.2p1"),
        ("1.22.1-9+deb12u11", "1.22.1"),
        ("1:2.3.19.1+dfsg1-2.1+deb12u7", "2.3.19.1"),
        ("5:7.0.15-1~deb12u10", "7.0.15"),
        ("1:10.11.19-0+deb12u1", "10.11.19"),
        ("5.9.3+dfsg-2+deb12u1", "5.9.3"),
        ("3.2.7+ds1-0+deb12u1", "3.2.7"),
        ("3.0.3-13+b2", "3.0.3"),
        ("15.18-0+deb12u1", "15.18"),
        ("4.3", "4.3"),  # native package: no revision to strip
    ],
)
def test_upstream_version_drops_epoch_revision_and_repack_suffix(
    debian: str, upstream: str
) -> None:
    assert upstream_version(debian) == upstream


def test_port_plans_give_every_socket_its_own_number() -> None:
    standard = [getattr(LabPorts.standard(), name) for name in LabPorts.__dataclass_fields__]
    assert len(set(standard)) == len(standard)
    assert LabPorts.standard().ssh == 22
    based = LabPorts.from_base(20000)
    numbers = sorted(getattr(based, name) for name in LabPorts.__dataclass_fields__)
    assert numbers == list(range(20000, 20000 + len(numbers)))
    with pytest.raises(ValueError, match="no room"):
        LabPorts.from_base(65530)


# -- the shared lab --------------------------------------------------------------------


@pytest.mark.lab
def test_the_lab_has_every_daemon_on_distinct_sockets(lab: RunningLab) -> None:
    assert {s.name for s in lab} == LAB_NAMES
    sockets = [(p.port, p.transport) for s in lab for p in s.ports]
    assert len(sockets) == len(set(sockets))


@pytest.mark.lab
def test_ground_truth_versions_come_from_dpkg(lab: RunningLab) -> None:
    for service in lab:
        recorded = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", service.package],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert service.version == recorded, service.name
        assert re.fullmatch(r"\d+(\.\d+)+(p\d+)?", service.upstream_version), service
        assert service.upstream_version in service.version


def assert_version_disclosure(service: LabService, answer: str) -> None:
    """The flag `version_revealed` must describe what the daemon actually said."""
    assert service.product.lower() in answer.lower(), answer
    assert (service.upstream_version in answer) is service.version_revealed, answer


@pytest.mark.lab
def test_nginx_serves_http_with_its_version_in_the_server_header(lab: RunningLab) -> None:
    nginx = lab["nginx"]
    request = b"GET / HTTP/1.0\r\nHost: lab.example.com\r\n\r\n"
    reply = inside(lab, tcp_exchange, nginx.port("http"), request, b"</html>").decode()
    assert reply.startswith("HTTP/1.1 200 OK")
    assert f"Server: nginx/{nginx.upstream_version}\r\n" in reply
    assert f"<title>{nginx.facts['title']}</title>" in reply
    assert_version_disclosure(nginx, reply)


@pytest.mark.lab
def test_nginx_tls_offers_exactly_the_configured_suites_and_groups(lab: RunningLab) -> None:
    nginx = lab["nginx"]
    tls = nginx.tls
    assert tls is not None
    port = nginx.port("https")

    def handshake(
        maximum: ssl.TLSVersion, ciphers: str | None = None, curve: str | None = None
    ) -> tuple[str, str, list[str]] | str:
        ctx = ssl.create_default_context(cafile=str(tls.ca_pem))
        ctx.maximum_version = maximum
        if ciphers:
            ctx.set_ciphers(ciphers)
        if curve:
            ctx.set_ecdh_curve(curve)
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
                ctx.wrap_socket(raw, server_hostname=tls.hostname) as conn,
            ):
                cert = conn.getpeercert() or {}
                sans = [str(entry[1]) for entry in cert.get("subjectAltName", ())]
                negotiated = conn.cipher()
                assert negotiated is not None
                return str(conn.version()), negotiated[0], sans
        except ssl.SSLError as exc:
            return f"refused: {exc.reason}"

    # TLS 1.3: the server's first choice, and the certificate verifies against our CA.
    version, cipher, sans = inside(lab, handshake, ssl.TLSVersion.TLSv1_3)
    assert (version, cipher) == ("TLSv1.3", tls.tls13_ciphersuites[0])
    assert tls.hostname in sans
    # TLS 1.2: the first configured suite wins (server preference), each one is accepted
    # on its own, and a suite that was not configured is refused.
    assert inside(lab, handshake, ssl.TLSVersion.TLSv1_2)[:2] == (
        "TLSv1.2", tls.tls12_ciphers_openssl[0],
    )  # fmt: skip
    for name in tls.tls12_ciphers_openssl:
        assert inside(lab, handshake, ssl.TLSVersion.TLSv1_2, name)[:2] == ("TLSv1.2", name)
    assert inside(lab, handshake, ssl.TLSVersion.TLSv1_2, "ECDHE-RSA-AES128-SHA").startswith(
        "refused"
    )
    # Groups: a configured curve is accepted, another is refused.
    ecdhe = tls.tls12_ciphers_openssl[0]
    assert "secp384r1" in tls.groups
    assert inside(lab, handshake, ssl.TLSVersion.TLSv1_2, ecdhe, "secp384r1")[0] == "TLSv1.2"
    assert inside(lab, handshake, ssl.TLSVersion.TLSv1_2, ecdhe, "prime256v1").startswith("refused")
    assert tls.key_type == "RSA"
    assert tls.key_bits >= 2048


@pytest.mark.lab
def test_openssh_greets_on_both_ports(lab: RunningLab) -> None:
    sshd = lab["openssh"]
    ports = [p.port for p in sshd.ports]
    assert len(set(ports)) == 2
    for port in ports:
        banner = inside(lab, tcp_exchange, port).decode()
        assert banner.startswith(f"SSH-2.0-OpenSSH_{sshd.upstream_version} ")
        assert_version_disclosure(sshd, banner)


@pytest.mark.lab
def test_vsftpd_greets_with_its_version(lab: RunningLab) -> None:
    ftp = lab["vsftpd"]
    banner = inside(lab, tcp_exchange, ftp.port("ftp")).decode()
    assert banner == f"220 (vsFTPd {ftp.upstream_version})\r\n"
    assert_version_disclosure(ftp, banner)


@pytest.mark.lab
def test_postfix_greets_and_answers_ehlo_without_a_version(lab: RunningLab) -> None:
    postfix = lab["postfix"]
    exchange = b"EHLO client.example.com\r\nQUIT\r\n"
    reply = inside(lab, tcp_exchange, postfix.port("smtp"), exchange, b"221 ").decode()
    assert reply.startswith(f"220 {postfix.facts['hostname']} ESMTP Postfix")
    assert "250-PIPELINING" in reply
    assert_version_disclosure(postfix, reply)


@pytest.mark.lab
def test_dovecot_greets_on_imap_and_pop3_without_a_version(lab: RunningLab) -> None:
    dovecot = lab["dovecot"]
    imap = inside(lab, tcp_exchange, dovecot.port("imap")).decode()
    pop3 = inside(lab, tcp_exchange, dovecot.port("pop3")).decode()
    assert imap.startswith("* OK ") and "Dovecot" in imap
    assert pop3.startswith("+OK Dovecot")
    assert_version_disclosure(dovecot, imap)
    assert_version_disclosure(dovecot, pop3)


@pytest.mark.lab
def test_redis_reports_its_version_to_anyone(lab: RunningLab) -> None:
    redis = lab["redis"]
    reply = inside(lab, tcp_exchange, redis.port("redis"), b"INFO server\r\n", b"redis_mode")
    assert f"redis_version:{redis.upstream_version}\r\n".encode() in reply
    assert_version_disclosure(redis, reply.decode())


@pytest.mark.lab
def test_postgresql_refuses_ssl_and_asks_for_scram(lab: RunningLab) -> None:
    pg = lab["postgresql"]
    port = pg.port("postgresql")
    ssl_request = struct.pack("!ii", 8, 80877103)
    assert inside(lab, tcp_exchange, port, ssl_request, lambda data: len(data) >= 1) == b"N"
    params = b"user\0postgres\0database\0postgres\0\0"
    startup = struct.pack("!ii", 8 + len(params), 3 << 16) + params
    reply = inside(lab, tcp_exchange, port, startup, lambda data: len(data) >= 9)
    tag, _length, method = struct.unpack("!cii", reply[:9])
    assert (tag, method) == (b"R", 10)  # AuthenticationSASL: a password is required
    assert pg.upstream_version.encode() not in reply


@pytest.mark.lab
def test_mariadb_handshake_names_product_and_version(lab: RunningLab) -> None:
    db = lab["mariadb"]
    packet = inside(lab, tcp_exchange, db.port("mysql"), b"", lambda data: b"\0" in data[5:])
    payload = packet[4:]
    assert payload[0] == 10  # protocol version 10: a greeting, not an error packet
    server_version = payload[1 : payload.index(b"\0", 1)].decode()
    assert f"{db.upstream_version}-MariaDB" in server_version
    assert_version_disclosure(db, server_version)


@pytest.mark.lab
def test_memcached_answers_version_on_tcp_and_udp(lab: RunningLab) -> None:
    mc = lab["memcached"]
    expected = f"VERSION {mc.upstream_version}\r\n".encode()
    assert inside(lab, tcp_exchange, mc.port("memcached", "tcp"), b"version\r\n") == expected
    # UDP frames carry an 8-byte header: request id, sequence, datagram count, reserved.
    frame = struct.pack("!HHHH", 0x4C42, 0, 1, 0) + b"version\r\n"
    reply = inside(lab, udp_exchange, mc.port("memcached", "udp"), frame)
    assert reply[:2] == b"\x4c\x42"
    assert reply[8:] == expected


@pytest.mark.lab
def test_dnsmasq_resolves_its_record_on_udp_and_tcp_and_tells_its_version(lab: RunningLab) -> None:
    dns = lab["dnsmasq"]
    address = socket.inet_aton(dns.facts["address"])
    query = dns_query(dns.facts["record"], qtype=1)
    reply = inside(lab, udp_exchange, dns.port("dns", "udp"), query)
    ancount = struct.unpack("!H", reply[6:8])[0]
    assert reply[3] & 0x0F == 0 and ancount == 1  # NOERROR, one answer
    assert reply.endswith(address)
    framed = struct.pack("!H", len(query)) + query
    over_tcp = inside(
        lab, tcp_exchange, dns.port("dns", "tcp"), framed,
        lambda data: len(data) >= 2 and len(data) >= 2 + struct.unpack("!H", data[:2])[0],
    )  # fmt: skip
    assert over_tcp[2:].endswith(address)
    chaos = inside(lab, udp_exchange, dns.port("dns", "udp"), dns_query("version.bind", 16, 3))
    assert f"dnsmasq-{dns.upstream_version}".encode() in chaos


@pytest.mark.lab
def test_snmpd_answers_the_public_community(lab: RunningLab) -> None:
    snmp = lab["snmpd"]
    sys_location = "1.3.6.1.2.1.1.6.0"
    reply = inside(lab, udp_exchange, snmp.port("snmp"), snmp_get("public", sys_location))
    assert b"\xa2" in reply  # a GetResponse PDU
    assert snmp.facts["sysLocation"].encode() in reply
    # A wrong community gets no answer at all (SNMPv2c drops it silently).
    with pytest.raises(TimeoutError):
        inside(lab, udp_exchange, snmp.port("snmp"), snmp_get("not-public", sys_location), 1, 0.5)


@pytest.mark.lab
def test_chrony_serves_ntp_and_its_command_port(lab: RunningLab) -> None:
    chrony = lab["chrony"]
    request = bytes([0x23]) + bytes(47)  # LI 0, version 4, mode 3 (client)
    reply = inside(lab, udp_exchange, chrony.port("ntp"), request)
    assert len(reply) >= 48
    assert reply[0] & 0x07 == 4  # mode 4: server
    assert reply[1] == int(chrony.facts["stratum"])
    # chronyc protocol v6: a 20-byte header, command 14 (N_SOURCES), zero-padded to the
    # reply's size (chronyd ignores requests shorter than their answer).
    command = struct.pack("!BBBBHHIII", 6, 1, 0, 0, 14, 0, 0x4C42, 0, 0) + bytes(12)
    answer = inside(lab, udp_exchange, chrony.port("chrony-cmd"), command)
    version, pkt_type, _, _, echoed, _reply, status = struct.unpack("!BBBBHHH", answer[:10])
    assert (version, pkt_type, echoed, status) == (6, 2, 14, 0)


@pytest.mark.lab
def test_rsync_greets_and_lists_its_module(lab: RunningLab) -> None:
    rsync = lab["rsync"]
    port = rsync.port("rsync")
    greeting = inside(lab, tcp_exchange, port).decode()
    assert re.fullmatch(r"@RSYNCD: \d+\.\d+.*\n", greeting)
    listing = inside(lab, tcp_exchange, port, b"@RSYNCD: 30.0\n#list\n", b"@RSYNCD: EXIT").decode()
    assert re.search(rf"^{rsync.facts['module']}\s+{rsync.facts['comment']}$", listing, re.M)
    assert rsync.upstream_version not in greeting


# -- lifecycle: chosen ports, failures, clean shutdown -----------------------------------


def _netns_exists(name: str) -> bool:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return any(line.split()[0] == name for line in listed.splitlines() if line.strip())


def _pid_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _accepts(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        return True


@pytest.mark.lab
def test_daemons_run_side_by_side_on_chosen_ports_and_stop_by_pid() -> None:
    workdir = scratch_dir()
    try:
        with netns() as ns:
            # Given two instances of one daemon and another daemon in one namespace
            first = start_memcached(ns, workdir, port=21211)
            second = start_memcached(ns, workdir, port=21212)
            redis = start_redis(ns, workdir, port=26379)
            services = [first, second, redis]
            assert first.workdir != second.workdir
            # Then each answers on its own port
            for service in (first, second):
                reply = ns.call(tcp_exchange, service.port("memcached"), b"version\r\n")
                assert reply.startswith(b"VERSION ")
            assert b"+PONG" in ns.call(tcp_exchange, 26379, b"PING\r\n")
            # When they are stopped, every process is gone, children included
            stop_services(services)
            assert not any(_pid_alive(s.pid) for s in services)
            # A daemon's children (postgres backends, postfix's workers) may take a moment
            # to follow their parent out: wait a bounded while, then name any straggler.
            deadline = time.monotonic() + 10
            while (leftover := _netns_pids(ns.name)) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert leftover == [], [_cmdline(pid) for pid in leftover]
            name = ns.name
        assert not _netns_exists(name)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.lab
def test_a_daemon_that_cannot_start_fails_fast_with_its_log() -> None:
    workdir = scratch_dir()
    try:
        with netns() as ns:
            # Given the port is already taken inside the namespace
            def occupy() -> socket.socket:
                sock = socket.socket()
                sock.bind(("127.0.0.1", 26380))
                sock.listen()
                return sock

            blocker = ns.call(occupy)
            try:
                # Then redis is reported as failed, with the reason from its own log,
                # although something else is listening on its port
                with pytest.raises(LabStartError, match=r"redis exited(.|\n)*in use"):
                    start_redis(ns, workdir, port=26380)
            finally:
                blocker.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _netns_pids(name: str) -> list[str]:
    listed = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
    return listed.stdout.split()


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return f"{pid} (gone)"


@pytest.mark.lab
def test_start_lab_on_a_base_port_binds_every_socket_and_stops_cleanly() -> None:
    workdir = scratch_dir()
    try:
        with netns() as ns:
            services = start_lab(ns, base_port=20000, workdir=workdir)
            try:
                sockets = {(p.port, p.transport) for s in services for p in s.ports}
                assert {port for port, _ in sockets} == set(range(20000, 20017))
                # Every TCP socket accepts a connection and every UDP socket is bound
                for port, transport in sockets:
                    if transport == "tcp":
                        assert ns.call(_accepts, port), port
                bound = ns.exec(["ss", "-Hlnu"]).stdout
                for port, transport in sockets:
                    if transport == "udp":
                        assert f"127.0.0.1:{port} " in bound, port
            finally:
                stop_services(services)
            assert not any(_pid_alive(s.pid) for s in services)
            # A daemon's children (postgres backends, postfix's workers) may take a moment
            # to follow their parent out: wait a bounded while, then name any straggler.
            deadline = time.monotonic() + 10
            while (leftover := _netns_pids(ns.name)) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert leftover == [], [_cmdline(pid) for pid in leftover]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
