"""The fingerprinting engine against servers the tests start on 127.0.0.1 ports they bound."""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING

import pytest
import trustme

from core.models import BANNER_CAP, Endpoint, Kind, Transport
from core.verify.fingerprint import Fingerprint, fingerprint, identify_udp
from core.verify.probes import load_database
from tests.core.verify.fp_servers import FAST, read_request, run, serve, server_context

if TYPE_CHECKING:
    from tests.lab.daemons import RunningLab

HTML = b"<html><head><title>Example  Portal</title></head><body>hi</body></html>"


async def http_nginx(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\n\r\n")
    writer.write(HTML)
    await writer.drain()


def probe(port: int, **kwargs: object) -> Fingerprint:
    return run(fingerprint("127.0.0.1", port, options=FAST, **kwargs))  # type: ignore[arg-type]


def outcome(fp: Fingerprint, name: str, tls: bool = False) -> str:
    return next(p.outcome for p in fp.probes if p.probe == name and p.tls == tls)


def test_http_server_header_status_and_title() -> None:
    async def main() -> Fingerprint:
        async with serve(http_nginx) as port:
            return await fingerprint("127.0.0.1", port, options=FAST)

    fp = run(main())
    assert (fp.service, fp.product, fp.version) == ("http", "nginx", "1.22.1")
    assert fp.cpe == "cpe:2.3:a:f5:nginx:1.22.1:*:*:*:*:*:*:*"
    assert (fp.http_status, fp.http_server, fp.http_title) == (
        200,
        "nginx/1.22.1",
        "Example Portal",
    )
    assert fp.evidence is not None
    assert (fp.evidence.probe, fp.evidence.rule, fp.evidence.tls) == (
        "http-get",
        "http-nginx",
        False,
    )
    assert "nginx/1.22.1" in fp.evidence.excerpt
    assert fp.tls is None and not fp.tls_suspected


def test_https_certificate_sni_and_the_service_inside_tls() -> None:
    ca = trustme.CA()
    seen: list[str] = []
    ctx = server_context(ca, "www.example.com", "198.51.100.7", sni_seen=seen)

    async def main() -> Fingerprint:
        async with serve(http_nginx, tls=ctx) as port:
            return await fingerprint(
                "127.0.0.1", port, hostnames=["www.example.com", "example.net"], options=FAST
            )

    fp = run(main())
    assert fp.tls is not None and fp.tls.cert is not None
    assert fp.tls.cert.sans == ("www.example.com", "198.51.100.7")
    assert fp.tls.cert.self_signed is False
    assert fp.tls.versions == ("TLSv1.3",)
    assert fp.tls.cipher is not None and fp.tls.cipher.startswith("TLS_")
    assert fp.cert_expired is False
    # SNI is the first hostname we were given, on every TLS connection we opened.
    assert seen and set(seen) == {"www.example.com"}
    assert (fp.service, fp.product, fp.version) == ("http", "nginx", "1.22.1")
    assert fp.evidence is not None and fp.evidence.tls
    assert fp.http_title == "Example Portal"
    assert outcome(fp, "tls-handshake") == "ok"


NGINX_400 = b"HTTP/1.1 400 Bad Request\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\n\r\n"
PLAIN_HTTP_TO_TLS_PORT = (
    NGINX_400 + b"<html><head><title>400 The plain HTTP request was sent to HTTPS port"
    b"</title></head><body><center>nginx/1.22.1</center></body></html>\r\n"
)
PLAIN_BYTES_TO_TLS_PORT = (
    NGINX_400 + b"<html><head><title>400 Bad Request</title></head>"
    b"<body><center>nginx/1.22.1</center></body></html>\r\n"
)


def test_a_tls_ports_quick_plain_answer_waits_for_the_slower_handshake() -> None:
    # nginx answers anything plain on its TLS port at once with a 400 page that names
    # nginx (a GET gets "plain HTTP request was sent to HTTPS port", other probes a bare
    # "Bad Request": decisive matches); here the handshake is slower than those answers,
    # as it can be on a busy machine. Whether the port speaks TLS must still be found, and
    # what runs inside it.
    ctx = server_context(trustme.CA(), "www.example.com")

    async def main() -> Fingerprint:
        async with serve(http_nginx, tls=ctx) as tls_port:

            async def nginx_tls_port(
                reader: asyncio.StreamReader, writer: asyncio.StreamWriter
            ) -> None:
                first = await reader.read(4096)
                if not first.startswith(b"\x16"):  # plain bytes: nginx's 400
                    if first.startswith(b"GET "):
                        # Later than the other probes' answers: the order that lost the
                        # handshake in CI (a bare 400 decided before anything else)
                        await asyncio.sleep(0.4)
                        writer.write(PLAIN_HTTP_TO_TLS_PORT)
                    else:
                        writer.write(PLAIN_BYTES_TO_TLS_PORT)
                    await writer.drain()
                    return
                # A slow handshake (yet within FAST.tls_wait): relay it to the TLS server
                await asyncio.sleep(0.7)
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", tls_port)
                try:
                    up_writer.write(first)
                    await up_writer.drain()

                    async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                        for _ in range(1000):  # bounded
                            chunk = await src.read(4096)
                            if not chunk:
                                return
                            dst.write(chunk)
                            await dst.drain()

                    await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
                finally:
                    up_writer.close()

            async with serve(nginx_tls_port) as port:
                return await fingerprint(
                    "127.0.0.1", port, hostnames=["www.example.com"], options=FAST
                )

    fp = run(main())
    assert outcome(fp, "http-get") in ("ok", "cancelled")
    assert fp.tls is not None and fp.tls.cert is not None
    assert fp.tls.cert.subject is not None and "www.example.com" in str(fp.tls.cert.sans)
    assert (fp.service, fp.product, fp.version) == ("http", "nginx", "1.22.1")
    assert fp.evidence is not None and fp.evidence.tls  # decided inside TLS
    assert fp.http_title == "Example Portal"


def test_imaps_greeting_is_read_on_the_detection_connection() -> None:
    ctx = server_context(trustme.CA(), "imap.example.com")

    async def dovecot(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Dovecot (Debian) ready.\r\n")
        await writer.drain()
        await reader.read(1024)

    async def main() -> Fingerprint:
        async with serve(dovecot, tls=ctx) as port:
            return await fingerprint("127.0.0.1", port, options=FAST)

    fp = run(main())
    assert (fp.service, fp.product, fp.version) == ("imap", "Dovecot", None)
    assert fp.tls is not None
    assert fp.evidence is not None and fp.evidence.tls
    assert fp.banner is not None and fp.banner.startswith("* OK [CAPABILITY")


def test_redis_on_an_unusual_port_is_found_by_its_own_probe() -> None:
    asked: list[bytes] = []

    async def redis(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(10):
            line = await reader.readline()
            if not line:
                return
            asked.append(line.split()[0] if line.split() else b"")
            if line.startswith(b"PING"):
                writer.write(b"+PONG\r\n")
            elif line.startswith(b"INFO"):
                writer.write(
                    b"$44\r\n# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n\r\n"
                )
            elif line.startswith(b"GET"):
                writer.write(b"-ERR wrong number of arguments for 'get' command\r\n")
            await writer.drain()

    async def main() -> Fingerprint:
        async with serve(redis) as port:
            assert port != 6379
            return await fingerprint("127.0.0.1", port, options=FAST)

    fp = run(main())
    assert (fp.service, fp.product, fp.version) == ("redis", "Redis", "7.0.15")
    assert fp.evidence is not None and fp.evidence.probe == "redis"
    assert b"PING" in asked


def test_a_service_that_answers_only_its_own_protocol_is_found_in_the_second_wave() -> None:
    async def memcached(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(20):
            line = await reader.readline()
            if not line:
                return
            if line == b"version\r\n":
                writer.write(b"VERSION 1.6.18\r\n")
                await writer.drain()

    async def main() -> Fingerprint:
        async with serve(memcached) as port:
            return await fingerprint("127.0.0.1", port, options=FAST)

    fp = run(main())
    assert (fp.service, fp.product, fp.version) == ("memcached", "memcached", "1.6.18")


def test_postgres_sslrequest_answer_names_postgresql_without_a_version() -> None:
    async def postgres(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.readexactly(8)
        if data == bytes.fromhex("0000000804d2162f"):
            writer.write(b"N")
            await writer.drain()
        await reader.read(100)

    async def main() -> Fingerprint:
        async with serve(postgres) as port:
            return await fingerprint("127.0.0.1", port, options=FAST)

    fp = run(main())
    assert (fp.service, fp.product, fp.version) == ("postgresql", "PostgreSQL", None)
    assert fp.extra == "SSLRequest answered N"


def test_a_greeting_decides_without_waiting_for_the_other_probes() -> None:
    async def postfix(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 mail.example.com ESMTP Postfix (Debian/GNU)\r\n")
        await writer.drain()
        await reader.read(1024)

    async def main() -> Fingerprint:
        async with serve(postfix) as port:
            return await fingerprint("127.0.0.1", port, options=FAST)

    fp = run(main())
    assert (fp.service, fp.product) == ("smtp", "Postfix")
    assert fp.evidence is not None and fp.evidence.rule == "smtp-postfix"
    # The second wave never went out: the first answer was decisive.
    assert not any(p.probe == "mongodb" for p in fp.probes)


def test_a_closed_port_is_reported_not_raised() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = holder.getsockname()[1]
        fp = probe(port)
    assert fp.service is None and fp.banner is None
    assert outcome(fp, "null") == "refused"


def test_fingerprint_becomes_an_active_observation() -> None:
    fp = Fingerprint(
        service="http",
        product="nginx",
        version="1.22.1",
        cpe="cpe:2.3:a:f5:nginx:1.22.1:*:*:*:*:*:*:*",
        banner="x" * BANNER_CAP,
        http_status=200,
    )
    obs = fp.to_observation(Endpoint(ip="192.0.2.10", port=8080), hostnames=["www.example.com"])
    assert obs.source == "verifier" and obs.kind is Kind.ACTIVE
    assert (obs.service, obs.product, obs.version, obs.http_status) == (
        "http",
        "nginx",
        "1.22.1",
        200,
    )
    assert obs.cpes == ("cpe:2.3:a:f5:nginx:1.22.1:*:*:*:*:*:*:*",)
    assert obs.hostnames == ("www.example.com",)


def test_identify_udp_names_replies_and_refuses_to_guess() -> None:
    fp = identify_udp(11211, b"\x50\x49\x00\x00\x00\x01\x00\x00VERSION 1.6.21\r\n")
    assert fp is not None
    assert (fp.service, fp.product, fp.version) == ("memcached", "memcached", "1.6.21")
    assert fp.evidence is not None and fp.evidence.rule == "memcached-version"
    assert identify_udp(123, b"\x24" + bytes(47)) is not None
    assert identify_udp(40000, b"\x24" + bytes(47)) is None  # an NTP shape off NTP's port
    assert identify_udp(53, b"") is None


# -- the lab: real daemons in a namespace, truth from dpkg-query and the lab's configs ------


def _norm(text: str | None) -> str:
    return "".join(ch for ch in (text or "").lower() if ch.isalnum())


def _same_product(expected: str, got: str | None) -> bool:
    a, b = _norm(expected), _norm(got)
    return bool(a and b) and (a in b or b in a)


async def _fingerprint_all(ports: list[int]) -> dict[int, Fingerprint]:
    async with asyncio.TaskGroup() as tg:
        tasks = {
            p: tg.create_task(fingerprint("127.0.0.1", p, hostnames=["lab.example.com"]))
            for p in ports
        }
    return {p: t.result() for p, t in tasks.items()}


@pytest.mark.lab
def test_lab_tcp_services_right_product_and_exact_version(lab: RunningLab) -> None:
    endpoints = [(svc, p) for svc in lab for p in svc.ports if p.transport == "tcp"]
    ports = [p.port for _, p in endpoints]
    results = lab.ns.call(lambda: asyncio.run(_fingerprint_all(ports)), timeout=120)
    wrong: list[str] = []
    for svc, lab_port in endpoints:
        fp = results[lab_port.port]
        where = f"{svc.name}:{lab_port.port} ({svc.package} {svc.version})"
        if not _same_product(svc.product, fp.product):
            wrong.append(f"{where}: product {fp.product!r}, want {svc.product!r}")
        want_version = svc.upstream_version if svc.version_revealed else None
        if fp.version != want_version:
            wrong.append(f"{where}: version {fp.version!r}, want {want_version!r}")
        if lab_port.tls != (fp.tls is not None):
            wrong.append(f"{where}: TLS {fp.tls is not None}, want {lab_port.tls}")
    assert wrong == []


@pytest.mark.lab
def test_lab_tls_certificate_is_the_one_configured(lab: RunningLab) -> None:
    tls_ports = [(svc, p) for svc in lab for p in svc.ports if p.tls and svc.tls is not None]
    assert tls_ports, "the lab has a TLS port"
    svc, lab_port = tls_ports[0]
    facts = svc.tls
    assert facts is not None
    fp = lab.ns.call(
        lambda: asyncio.run(fingerprint("127.0.0.1", lab_port.port, hostnames=[facts.hostname])),
        timeout=60,
    )
    assert fp.tls is not None and fp.tls.cert is not None
    assert set(fp.tls.cert.sans) == set(facts.sans)
    assert fp.tls.cert.key_type == facts.key_type
    assert fp.tls.cert.key_bits == facts.key_bits
    assert fp.tls.cert.not_after == facts.not_after
    assert fp.tls.versions[0] in facts.protocols


def _udp_replies(ports: list[int]) -> dict[int, bytes]:
    """Send our own UDP payload for each port to the namespace's 127.0.0.1, keep the reply."""
    db = load_database()
    replies: dict[int, bytes] = {}
    for port in ports:
        probe = next((p for p in db.for_transport(Transport.UDP) if port in p.ports), None)
        if probe is None:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2.0)
            sock.connect(("127.0.0.1", port))
            for _ in range(2):  # one retry: UDP may drop the first datagram
                sock.send(probe.payload)
                try:
                    replies[port] = sock.recv(4096)
                    break
                except (TimeoutError, ConnectionRefusedError):
                    continue
    return replies


@pytest.mark.lab
def test_lab_udp_replies_are_identified(lab: RunningLab) -> None:
    endpoints = [(svc, p) for svc in lab for p in svc.ports if p.transport == "udp"]
    replies = lab.ns.call(_udp_replies, [p.port for _, p in endpoints], timeout=60)
    wrong: list[str] = []
    for svc, lab_port in endpoints:
        reply = replies.get(lab_port.port)
        if reply is None:
            wrong.append(f"{svc.name}:{lab_port.port}/udp: no reply to our payload")
            continue
        fp = identify_udp(lab_port.port, reply)
        if fp is None:
            wrong.append(f"{svc.name}:{lab_port.port}/udp: reply not identified")
        elif svc.version_revealed and fp.version not in (None, svc.upstream_version):
            wrong.append(f"{svc.name}:{lab_port.port}/udp: version {fp.version!r}")
    assert wrong == []


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")

    async def main() -> Fingerprint:
        server = await asyncio.start_server(http_nginx, "::1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            return await fingerprint("::1", port, options=FAST)
        finally:
            server.close()

    try:
        fp = run(main())
    except OSError as exc:  # ::1 not configured in this container
        pytest.skip(f"IPv6 loopback unavailable: {exc}")
    assert (fp.service, fp.product, fp.version) == ("http", "nginx", "1.22.1")
