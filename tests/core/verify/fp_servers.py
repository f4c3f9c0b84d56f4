"""Small servers for the fingerprinting tests, on 127.0.0.1 ports they bind themselves.

Every server loop is bounded (in iterations and by the test's own deadline): a test must
end even when the code under test misbehaves.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import trustme

from core.verify.fingerprint import Options

T = TypeVar("T")
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

# Short waits: the tests' servers answer at once or never.
FAST = Options(
    timeout=3.0,
    connect_timeout=1.0,
    greeting_wait=0.5,
    reply_wait=0.5,
    tls_wait=1.0,
    linger=0.2,
    escalate_after=0.3,
)


def run(coro: Coroutine[Any, Any, T], limit: float = 15.0) -> T:
    """Drive async test code; `limit` only guards against a hang (it is not a timing check)."""

    async def guarded() -> T:
        return await asyncio.wait_for(coro, limit)

    return asyncio.run(guarded())


@asynccontextmanager
async def serve(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """Serve `handler` on 127.0.0.1 (a port the OS picks for us); yield the port."""

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the client under test hung up or gave up: expected
        finally:
            writer.transport.abort()

    server = await asyncio.start_server(guarded, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def server_context(
    ca: trustme.CA, *names: str, sni_seen: list[str] | None = None, **issue: Any
) -> ssl.SSLContext:
    """A TLS server context with a certificate for `names` minted now (no key on disk)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(*names, **issue).configure_cert(ctx)
    if sni_seen is not None:

        def remember(_sock: Any, name: str | None, _ctx: ssl.SSLContext) -> None:
            sni_seen.append(name or "")

        ctx.sni_callback = remember
    return ctx


async def read_request(reader: asyncio.StreamReader, limit: int = 4096) -> bytes:
    """Read an HTTP-ish request up to its blank line (bounded)."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < limit:
        chunk = await reader.read(1024)
        if not chunk:
            break
        data += chunk
    return data
