"""Hostile services are ordinary input: each finishes within its deadline and reports what
it saw. The servers are written here and listen on 127.0.0.1 ports the tests bound.

The endpoint deadline (FAST.timeout) is what ends the slow cases; `run`'s limit only turns
a hang into a failure, it is not a timing assertion.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import struct

import trustme

from core.models import BANNER_CAP
from core.verify.fingerprint import READ_CAP, Fingerprint, fingerprint
from tests.core.verify.fp_servers import FAST, read_request, run, serve, server_context

RAW_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def outcomes(fp: Fingerprint, *, tls: bool = False) -> dict[str, str]:
    return {p.probe: p.outcome for p in fp.probes if p.tls == tls}


def against(handler, tls=None) -> Fingerprint:  # type: ignore[no-untyped-def]
    async def main() -> Fingerprint:
        async with serve(handler, tls=tls) as port:
            return await fingerprint("127.0.0.1", port, options=FAST)

    return run(main())


def test_endless_banner_is_capped() -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(4096):  # at most 16 MiB, far beyond any cap
            writer.write(b"A" * 4096)
            await writer.drain()

    fp = against(endless)
    assert fp.banner == "A" * BANNER_CAP
    null = next(p for p in fp.probes if p.probe == "null")
    assert 0 < null.received <= READ_CAP
    assert fp.service is None


def test_one_byte_per_second_drip() -> None:
    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for byte in b"220 slow greeting\r\n":
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(1)

    fp = against(drip)
    # It reports the bytes it saw before the service went quiet for longer than `linger`.
    assert fp.banner is not None and "220 slow greeting\r\n".startswith(fp.banner)
    assert outcomes(fp)["null"] == "ok"


def test_binary_garbage_is_stored_escaped() -> None:
    junk = random.Random(7).randbytes(3000)

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(junk)
        await writer.drain()
        await reader.read(4096)

    fp = against(garbage)
    assert fp.banner is not None
    assert RAW_CONTROL.search(fp.banner) is None
    assert len(fp.banner) <= BANNER_CAP
    assert "\\x" in fp.banner  # undecodable bytes are written out, not dropped


def test_ansi_escapes_formulas_and_html_are_data() -> None:
    greeting = (
        b'\x1b[2J\x1b]0;owned\x07=HYPERLINK("http://example.com") <script>alert(1)</script>\r\n'
    )

    async def ansi(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(greeting)
        await writer.drain()
        await reader.read(4096)

    fp = against(ansi)
    assert fp.banner is not None
    assert "\x1b" not in fp.banner and "\x07" not in fp.banner
    assert fp.banner.startswith("\\x1b[2J\\x1b]0;owned\\x07=HYPERLINK(")
    assert "<script>alert(1)</script>" in fp.banner  # neutralised by the exporters, kept here


def test_escapes_inside_a_recognised_banner_do_not_reach_the_fields() -> None:
    async def ssh(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.2p1\x1b[31m evil\x1b[0m\r\n")
        await writer.drain()
        await reader.read(4096)

    fp = against(ssh)
    assert (fp.service, fp.product, fp.version) == ("ssh", "OpenSSH", "9.2p1")
    assert fp.extra is not None and "\x1b" not in fp.extra
    assert fp.evidence is not None and "\x1b" not in fp.evidence.excerpt


def test_html_and_escapes_in_an_http_title() -> None:
    async def page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.0 200 OK\r\nServer: lighttpd/1.4.69\r\n\r\n"
            b"<title>=cmd|' /C calc'!A0 <b>x</b>\x1b[1m</title>"
        )
        await writer.drain()

    fp = against(page)
    assert fp.product == "lighttpd"
    assert fp.http_title == "=cmd|' /C calc'!A0 <b>x</b>\\x1b[1m"


def test_accept_and_hang() -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(600):  # reads and ignores, never speaks, never closes
            if not await reader.read(4096):
                return

    fp = against(hang)
    assert fp.service is None and fp.banner is None
    seen = outcomes(fp)
    assert seen["null"] == "io-timeout"
    assert seen["http-get"] == "io-timeout"
    assert seen["tls-handshake"] == "tls-timeout"
    assert not fp.tls_suspected


def test_reset_right_after_accept() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # close with linger 0: the peer gets an RST

    fp = against(reset)
    assert fp.service is None and fp.banner is None
    seen = outcomes(fp)
    assert set(seen.values()) <= {"reset", "closed"}
    assert "reset" in seen.values()


def test_garbage_tls_record() -> None:
    async def fake_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await reader.read(4096):
            # A handshake record header, then junk where the ServerHello should be.
            writer.write(b"\x16\x03\x03\x00\x30" + random.Random(3).randbytes(48))
            await writer.drain()
        await reader.read(4096)

    fp = against(fake_tls)
    assert fp.tls is None
    assert fp.tls_suspected
    assert outcomes(fp)["tls-handshake"].startswith("tls-error")


def test_tls_server_that_hangs_after_server_hello() -> None:
    ctx = server_context(trustme.CA(), "hang.example.com")

    async def real_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)

    async def main() -> Fingerprint:
        async with serve(real_tls, tls=ctx) as upstream_port:

            async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                # Relay the ClientHello to a real TLS server, pass back only its ServerHello
                # record, then say nothing more.
                head = await reader.readexactly(5)
                hello = head + await reader.readexactly(struct.unpack(">H", head[3:])[0])
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
                try:
                    up_writer.write(hello)
                    await up_writer.drain()
                    head = await up_reader.readexactly(5)
                    body = await up_reader.readexactly(struct.unpack(">H", head[3:])[0])
                    assert head[0] == 0x16 and body[0] == 0x02  # a ServerHello
                    writer.write(head + body)
                    await writer.drain()
                    await reader.read(4096)
                finally:
                    up_writer.close()

            async with serve(stall) as port:
                return await fingerprint("127.0.0.1", port, options=FAST)

    fp = run(main())
    assert fp.tls is None
    assert fp.tls_suspected
    assert outcomes(fp)["tls-handshake"] == "tls-timeout"
