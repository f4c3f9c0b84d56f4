"""STARTTLS: enumeration through SMTP, IMAP, POP3, FTP and PostgreSQL preambles.

Each server here speaks the plaintext protocol up to the upgrade, then hands the socket to
the system OpenSSL (Python's ssl) with a written suite list. `openssl s_client -starttls`
checks once that each server speaks its protocol the standard way, so the preambles are
tested against an independent client and not only against ours.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
from collections.abc import Awaitable, Callable

import pytest
import trustme

from core.verify.tls import enumerate_tls
from core.verify.tls.model import TlsProfile
from core.verify.tls.starttls import StartTls
from tests.core.verify.fp_servers import server_context
from tests.core.verify.tls.servers import run, serve

SUITES = ["ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA"]
IANA = ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"]


def context() -> ssl.SSLContext:
    ctx = server_context(trustme.CA(), "mail.example.com", key_type=trustme.KeyType.RSA)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(":".join(SUITES))
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    return ctx


Dialogue = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


async def _line(reader: asyncio.StreamReader) -> str:
    return (await asyncio.wait_for(reader.readline(), 10)).decode().strip()


async def _say(writer: asyncio.StreamWriter, *lines: str) -> None:
    writer.write("".join(f"{line}\r\n" for line in lines).encode())
    await writer.drain()


async def smtp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    await _say(writer, "220-mail.example.com ESMTP", "220 ready")
    for _ in range(5):
        command = (await _line(reader)).upper()
        if command.startswith(("EHLO", "HELO")):
            await _say(writer, "250-mail.example.com", "250-PIPELINING", "250 STARTTLS")
        elif command == "STARTTLS":
            await _say(writer, "220 2.0.0 Ready to start TLS")
            return True
        else:
            return False
    return False


async def imap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    await _say(writer, "* OK [CAPABILITY IMAP4rev1 STARTTLS] ready")
    for _ in range(5):
        tag, _, command = (await _line(reader)).partition(" ")
        if command.upper() == "CAPABILITY":
            await _say(writer, "* CAPABILITY IMAP4rev1 STARTTLS", f"{tag} OK done")
        elif command.upper() == "STARTTLS":
            await _say(writer, "* OK still here", f"{tag} OK Begin TLS negotiation now")
            return True
        else:
            return False
    return False


async def pop3(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    await _say(writer, "+OK POP3 ready")
    for _ in range(5):
        command = (await _line(reader)).upper()
        if command == "CAPA":
            await _say(writer, "+OK", "STLS", ".")
        elif command == "STLS":
            await _say(writer, "+OK Begin TLS")
            return True
        else:
            return False
    return False


async def ftp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    await _say(writer, "220-Welcome", "220 FTP ready")
    for _ in range(5):
        command = (await _line(reader)).upper()
        if command == "AUTH TLS":
            await _say(writer, "234 AUTH TLS successful")
            return True
        if command == "FEAT":
            await _say(writer, "211-Features:", " AUTH TLS", "211 End")
        else:
            return False
    return False


async def postgres(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    request = await asyncio.wait_for(reader.readexactly(8), 10)
    if request != bytes.fromhex("0000000804d2162f"):
        return False
    writer.write(b"S")
    await writer.drain()
    return True


DIALOGUES: dict[StartTls, Dialogue] = {
    StartTls.SMTP: smtp,
    StartTls.IMAP: imap,
    StartTls.POP3: pop3,
    StartTls.FTP: ftp,
    StartTls.POSTGRES: postgres,
}


def upgrading(dialogue: Dialogue, ctx: ssl.SSLContext):  # type: ignore[no-untyped-def]
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await dialogue(reader, writer):
            await writer.start_tls(ctx)
            await asyncio.wait_for(reader.read(1), 10)

    return handler


async def s_client(port: int, protocol: StartTls) -> str:
    """`openssl s_client -starttls` against our server: the cipher it negotiated."""
    proc = await asyncio.create_subprocess_exec(
        "openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-starttls", protocol.value,
        "-brief", stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, out.decode(errors="replace")
    text = out.decode()
    return next(
        line.split(":", 1)[1].strip() for line in text.splitlines() if "Ciphersuite" in line
    )


@pytest.mark.parametrize("protocol", list(StartTls), ids=[p.value for p in StartTls])
def test_enumeration_through_starttls(protocol: StartTls) -> None:
    ctx = context()

    async def go() -> tuple[TlsProfile, str | None]:
        async with serve(upgrading(DIALOGUES[protocol], ctx)) as port:
            checked = await s_client(port, protocol) if shutil.which("openssl") else None
            profile = await enumerate_tls("127.0.0.1", port, starttls=protocol, timeout=3)
            return profile, checked

    profile, checked = run(go(), limit=60)
    if checked is not None:  # the independent client got through the same preamble
        assert checked in (*SUITES, "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
                           "TLS_AES_128_GCM_SHA256")  # fmt: skip
    assert profile.starttls == protocol.value
    assert profile.outcome == "ok"
    assert profile.versions == ("TLSv1.2", "TLSv1.3")
    assert [s.name for s in profile.accepted("TLSv1.2")] == IANA
    assert profile.cert is not None and "mail.example.com" in profile.cert.sans


def test_smtp_without_starttls_is_recorded_not_raised() -> None:
    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _say(writer, "220 mail.example.com ESMTP")
        await _line(reader)
        await _say(writer, "250-mail.example.com", "250 PIPELINING")
        await asyncio.wait_for(reader.read(1), 10)

    async def go() -> TlsProfile:
        async with serve(plain) as port:
            return await enumerate_tls("127.0.0.1", port, starttls="smtp", timeout=2)

    profile = run(go(), limit=30)
    assert profile.outcome == "starttls-failed"
    assert profile.versions == ()
    assert all("does not offer STARTTLS" in r.outcome for r in profile.protocols)


def test_postgres_refusing_tls_and_an_endless_greeting() -> None:
    async def refuses(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.wait_for(reader.readexactly(8), 10)
        writer.write(b"N")
        await writer.drain()

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(2000):  # bounded: far more than the client's line limit
            writer.write(b"220-" + b"x" * 70 + b"\r\n")
            await writer.drain()

    async def go(handler, protocol: str) -> TlsProfile:  # type: ignore[no-untyped-def]
        async with serve(handler) as port:
            return await enumerate_tls("127.0.0.1", port, starttls=protocol, timeout=2)

    refused = run(go(refuses, "postgres"), limit=30)
    assert refused.outcome == "starttls-failed"
    assert "refuses TLS" in refused.protocols[-1].outcome
    greeting = run(go(endless, "smtp"), limit=30)
    assert greeting.outcome == "starttls-failed"
    assert "line limit" in greeting.protocols[-1].outcome
