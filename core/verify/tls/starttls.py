"""STARTTLS preambles: the plaintext exchange before a ClientHello on SMTP, IMAP, POP3,
FTP and PostgreSQL.

Each enumeration handshake is a fresh connection, so the preamble runs once per hello.
Every read is bounded in bytes and lines (the caller bounds it in time): a server that
never stops greeting is a failed preamble, not a hang.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum

MAX_LINE = 4096
MAX_LINES = 64  # per reply; real greetings and EHLO replies are a few lines
EHLO_NAME = "portintel.invalid"  # RFC 2606: a name that can never be anyone's


class StartTls(StrEnum):
    SMTP = "smtp"
    IMAP = "imap"
    POP3 = "pop3"
    FTP = "ftp"
    POSTGRES = "postgres"


class StartTlsError(Exception):
    """The service did not agree to start TLS; the message says what it answered."""


async def _line(reader: asyncio.StreamReader) -> str:
    try:
        raw = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        raise StartTlsError("connection closed during the preamble") from exc
    except asyncio.LimitOverrunError as exc:
        raise StartTlsError("preamble line over the length limit") from exc
    if len(raw) > MAX_LINE:
        raise StartTlsError("preamble line over the length limit")
    return raw.decode("latin-1").rstrip("\r\n")


async def _reply(reader: asyncio.StreamReader) -> tuple[str, list[str]]:
    """A multi-line reply in the SMTP/FTP style ("250-..." lines, then "250 ...")."""
    lines: list[str] = []
    for _ in range(MAX_LINES):
        line = await _line(reader)
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return line[:3], lines
    raise StartTlsError("reply longer than the line limit")


def _expect(code: str, want: str, lines: list[str], step: str) -> None:
    if code != want:
        said = lines[-1][:80] if lines else ""
        raise StartTlsError(f"{step}: expected {want}, got {said!r}")


async def _send(writer: asyncio.StreamWriter, text: str) -> None:
    writer.write(text.encode("ascii") + b"\r\n")
    await writer.drain()


async def _smtp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    code, lines = await _reply(reader)
    _expect(code, "220", lines, "greeting")
    await _send(writer, f"EHLO {EHLO_NAME}")
    code, lines = await _reply(reader)
    _expect(code, "250", lines, "EHLO")
    if not any(line[4:].strip().upper().startswith("STARTTLS") for line in lines):
        raise StartTlsError("the server does not offer STARTTLS")
    await _send(writer, "STARTTLS")
    code, lines = await _reply(reader)
    _expect(code, "220", lines, "STARTTLS")


async def _ftp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    code, lines = await _reply(reader)
    _expect(code, "220", lines, "greeting")
    await _send(writer, "AUTH TLS")
    code, lines = await _reply(reader)
    _expect(code, "234", lines, "AUTH TLS")


async def _imap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    greeting = await _line(reader)
    if not greeting.upper().startswith("* OK"):
        raise StartTlsError(f"greeting: expected * OK, got {greeting[:80]!r}")
    await _send(writer, "pi1 STARTTLS")
    for _ in range(MAX_LINES):  # untagged lines may come first
        line = await _line(reader)
        if line.startswith("pi1 "):
            if not line[4:].upper().startswith("OK"):
                raise StartTlsError(f"STARTTLS: {line[:80]!r}")
            return
    raise StartTlsError("STARTTLS: no tagged answer")


async def _pop3(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    greeting = await _line(reader)
    if not greeting.startswith("+OK"):
        raise StartTlsError(f"greeting: expected +OK, got {greeting[:80]!r}")
    await _send(writer, "STLS")
    answer = await _line(reader)
    if not answer.startswith("+OK"):
        raise StartTlsError(f"STLS: {answer[:80]!r}")


# PostgreSQL's SSLRequest: length 8, then the magic request code 80877103 (1234 5679).
_PG_SSL_REQUEST = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")


async def _postgres(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(_PG_SSL_REQUEST)
    await writer.drain()
    try:
        answer = await reader.readexactly(1)
    except asyncio.IncompleteReadError as exc:
        raise StartTlsError("connection closed after SSLRequest") from exc
    if answer != b"S":
        raise StartTlsError(f"SSLRequest answered {answer!r}: the server refuses TLS")


_PREAMBLES = {
    StartTls.SMTP: _smtp,
    StartTls.IMAP: _imap,
    StartTls.POP3: _pop3,
    StartTls.FTP: _ftp,
    StartTls.POSTGRES: _postgres,
}


async def negotiate(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, protocol: StartTls
) -> None:
    """Run the preamble; on return the next bytes on the wire are TLS."""
    await _PREAMBLES[protocol](reader, writer)
