"""TLS detection on any port, and the certificate and handshake summaries it yields.

Detection is one handshake with verification off (we want to see whatever the server
presents, valid or not) run over our own socket with `ssl.SSLObject` and memory BIOs, so
every raw read is ours: capped in bytes, bounded in time by the caller's deadline, and
visible (a server that answers with a TLS-looking record and then hangs is reported as
such). The certificate summary (core.verify.certificates) and the permissive client
context (core.verify.sslclient) are shared with TLS enumeration (issue 4).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from datetime import datetime

from core.models import CertSummary, TlsSummary, utcnow
from core.verify.certificates import summarize_certificate
from core.verify.sslclient import detection_context, iana_cipher_name

RAW_CAP = 256 * 1024
"""Most raw bytes one TLS connection may read: certificate chains are a few KiB."""

_CHUNK = 16 * 1024 + 512  # one TLS record with its header


class TlsStream:
    """A TLS client connection over a connected non-blocking socket.

    `handshake`, `send` and `recv` never wait on their own deadline: the caller wraps them
    in `asyncio.timeout`. Raw bytes read are counted and capped at `raw_cap`.
    """

    def __init__(
        self,
        sock: socket.socket,
        server_hostname: str | None,
        context: ssl.SSLContext | None = None,
        raw_cap: int = RAW_CAP,
    ) -> None:
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._obj = (context or detection_context()).wrap_bio(
            self._in, self._out, server_side=False, server_hostname=server_hostname
        )
        self._raw_cap = raw_cap
        self.raw_received = 0
        self.first_bytes = b""  # the first raw bytes the server sent, for diagnosis
        self.handshake_done = False

    @property
    def looks_like_tls(self) -> bool:
        """The server's first bytes were a TLS record header (handshake or alert)."""
        head = self.first_bytes
        return len(head) >= 3 and head[0] in (0x15, 0x16) and head[1] == 0x03 and head[2] <= 0x04

    async def _flush(self) -> None:
        data = self._out.read()
        if data:
            await self._loop.sock_sendall(self._sock, data)

    async def _fill(self) -> None:
        """Read one raw chunk into the TLS engine; EOF is passed on as EOF."""
        room = self._raw_cap - self.raw_received
        if room <= 0:
            raise ssl.SSLError("raw read cap reached")
        data = await self._loop.sock_recv(self._sock, min(_CHUNK, room))
        if not data:
            self._in.write_eof()
            return
        if len(self.first_bytes) < 8:
            self.first_bytes += data[: 8 - len(self.first_bytes)]
        self.raw_received += len(data)
        self._in.write(data)

    async def handshake(self) -> None:
        while True:
            try:
                self._obj.do_handshake()
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
                continue
            await self._flush()
            self.handshake_done = True
            return

    async def send(self, data: bytes) -> None:
        self._obj.write(data)
        await self._flush()

    async def recv(self, max_bytes: int) -> bytes:
        """Up to `max_bytes` of application data; b"" at end of stream."""
        while True:
            try:
                return self._obj.read(max_bytes)
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    def summary(self) -> TlsSummary:
        """Version, suite and certificate of the completed handshake."""
        version = self._obj.version()
        cipher = self._obj.cipher()
        der = self._obj.getpeercert(binary_form=True)
        return TlsSummary(
            versions=(version,) if version else (),
            cipher=iana_cipher_name(cipher[0]) if cipher else None,
            cert=summarize_certificate(der) if der else None,
        )


def cert_expired(cert: CertSummary, now: datetime | None = None) -> bool | None:
    """Whether the certificate is outside its validity window now (None: dates unknown)."""
    if cert.not_after is None or cert.not_before is None:
        return None
    now = now or utcnow()
    return not cert.not_before <= now <= cert.not_after
