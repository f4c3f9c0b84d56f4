"""One probe: connect, run the STARTTLS preamble if any, send a hello, read the answer.

The only I/O of enumeration (sslyze's split: a job does at most one connection, the
rest is pure). Every ending is a `Reply` with an `Outcome`; no exception escapes for
anything the network or the server does. Each probe is bounded by `timeout` seconds in
total and by `records.MAX_REPLY` bytes.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

from core.verify.tls.records import Outcome, Reply, ReplyParser, Want
from core.verify.tls.starttls import MAX_LINE, StartTls, StartTlsError, negotiate

_READ = 16 * 1024 + 512


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int
    sni: str | None = None
    starttls: StartTls | None = None
    timeout: float = 5.0


async def _open(target: Target) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(target.host, target.port, limit=MAX_LINE)
    if target.starttls is not None:
        await negotiate(reader, writer, target.starttls)
    return reader, writer


async def probe(
    target: Target, hello: bytes, want: Want = Want.HELLO, *, ssl2: bool = False
) -> Reply:
    """Send one hello and read the reply up to what `want` asks for."""
    parser = ReplyParser(want, ssl2=ssl2)
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(target.timeout):
            reader, writer = await _open(target)
            writer.write(hello)
            await writer.drain()
            while not parser.reply.done:
                data = await reader.read(_READ)
                if not data:
                    return parser.eof()
                parser.feed(data)
            return parser.reply
    except StartTlsError as exc:
        return parser.end(Outcome.STARTTLS_FAILED, str(exc))
    except TimeoutError:
        return parser.end(Outcome.TIMEOUT, f"no complete answer in {target.timeout:g} s")
    except ConnectionRefusedError:
        return parser.end(Outcome.REFUSED, "connection refused")
    except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError) as exc:
        return parser.end(Outcome.RESET, type(exc).__name__)
    except OSError as exc:  # unreachable network or host, and the like
        return parser.end(Outcome.UNREACHABLE, exc.strerror or type(exc).__name__)
    finally:
        if writer is not None:
            writer.transport.abort()  # we never finish a handshake: no need to be polite


@dataclass(frozen=True, slots=True)
class StdlibHandshake:
    """A complete handshake by the system OpenSSL: the certificate and what it negotiated."""

    version: str | None
    cipher: str | None  # OpenSSL's name
    der: bytes | None
    error: str | None = None


async def stdlib_handshake(target: Target, context: ssl.SSLContext) -> StdlibHandshake:
    """One full handshake with `context` (after the STARTTLS preamble, if any)."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(target.timeout):
            _, writer = await _open(target)
            await writer.start_tls(context, server_hostname=target.sni or None)
            obj = writer.get_extra_info("ssl_object")
            if not isinstance(obj, ssl.SSLObject):
                return StdlibHandshake(None, None, None, "no TLS session")
            cipher = obj.cipher()
            return StdlibHandshake(
                version=obj.version(),
                cipher=cipher[0] if cipher else None,
                der=obj.getpeercert(binary_form=True),
            )
    except (OSError, ssl.SSLError, StartTlsError, TimeoutError, ValueError) as exc:
        return StdlibHandshake(None, None, None, f"{type(exc).__name__}: {exc}"[:200])
    finally:
        if writer is not None:
            writer.transport.abort()
