"""Hand-written TLS and SSL servers for the enumeration tests, on 127.0.0.1 ports they bind.

They speak just enough of the protocol to answer a hello the way a real (or a broken)
server would: ServerHello, HelloRetryRequest, alerts, SSLv2 SERVER-HELLO, garbage,
resets, silence. The ClientHello parser here is the test's own, independent of the code
under test, so a hello we build wrongly shows up as a failure rather than agreeing with
itself. Every loop is bounded; every handler ends when the client hangs up.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from tests.core.verify.fp_servers import run, serve

__all__ = ["ClientHello", "parse_client_hello", "run", "serve"]

HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")


@dataclass
class ClientHello:
    record_version: int
    version: int  # legacy_version (client_version)
    suites: list[int]
    extensions: dict[int, bytes] = field(default_factory=dict)
    ssl2: bool = False

    @property
    def supported_versions(self) -> list[int]:
        data = self.extensions.get(0x002B)
        if not data:
            return []
        return [struct.unpack("!H", data[1 + i : 3 + i])[0] for i in range(0, data[0], 2)]

    @property
    def groups(self) -> list[int]:
        data = self.extensions.get(0x000A)
        if not data:
            return []
        n = struct.unpack("!H", data[:2])[0]
        return [struct.unpack("!H", data[2 + i : 4 + i])[0] for i in range(0, n, 2)]

    @property
    def key_shares(self) -> dict[int, bytes]:
        data = self.extensions.get(0x0033)
        shares: dict[int, bytes] = {}
        if not data:
            return shares
        pos = 2
        while pos + 4 <= len(data):
            group, length = struct.unpack("!HH", data[pos : pos + 4])
            shares[group] = data[pos + 4 : pos + 4 + length]
            pos += 4 + length
        return shares

    @property
    def sni(self) -> str | None:
        data = self.extensions.get(0x0000)
        if not data:
            return None
        length = struct.unpack("!H", data[3:5])[0]
        return data[5 : 5 + length].decode()

    @property
    def wanted_version(self) -> int:
        versions = self.supported_versions
        return max(versions) if versions else self.version


def parse_client_hello(data: bytes) -> ClientHello:
    """A ClientHello from the bytes of one record (or an SSLv2 CLIENT-HELLO)."""
    if data[0] & 0x80:  # SSLv2: 2-byte header, type 1, version, three lengths, specs
        body = data[2:]
        version, specs_len, _sid_len, _challenge_len = struct.unpack("!HHHH", body[1:9])
        raw = body[9 : 9 + specs_len]
        specs = [int.from_bytes(raw[i : i + 3], "big") for i in range(0, specs_len, 3)]
        return ClientHello(0x0002, version, specs, ssl2=True)
    assert data[0] == 0x16, data[:5]
    record_version = struct.unpack("!H", data[1:3])[0]
    body = data[5:]
    assert body[0] == 1, "not a client_hello"
    length = int.from_bytes(body[1:4], "big")
    hello = body[4 : 4 + length]
    assert len(hello) == length, "hello split across records"
    version = struct.unpack("!H", hello[:2])[0]
    pos = 34
    pos += 1 + hello[pos]  # session id
    n = struct.unpack("!H", hello[pos : pos + 2])[0]
    suites = [struct.unpack("!H", hello[pos + 2 + i : pos + 4 + i])[0] for i in range(0, n, 2)]
    pos += 2 + n
    pos += 1 + hello[pos]  # compression methods
    extensions: dict[int, bytes] = {}
    if pos < len(hello):
        end = pos + 2 + struct.unpack("!H", hello[pos : pos + 2])[0]
        pos += 2
        while pos < end:
            kind, size = struct.unpack("!HH", hello[pos : pos + 4])
            assert kind not in extensions, f"extension {kind:#x} twice"
            extensions[kind] = hello[pos + 4 : pos + 4 + size]
            pos += 4 + size
        assert pos == end == len(hello), "extensions do not add up"
    return ClientHello(record_version, version, suites, extensions)


async def read_client_hello(reader: asyncio.StreamReader) -> ClientHello | None:
    """The next hello on the connection; None if the client hung up first."""
    try:
        head = await reader.readexactly(2)
        if head[0] & 0x80:
            length = ((head[0] & 0x7F) << 8) | head[1]
            return parse_client_hello(head + await reader.readexactly(length))
        rest = await reader.readexactly(3)
        length = struct.unpack("!H", rest[1:3])[0]
        return parse_client_hello(head + rest + await reader.readexactly(length))
    except asyncio.IncompleteReadError:
        return None


# -- what servers send ------------------------------------------------------------------


def record(content_type: int, payload: bytes, version: int = 0x0303) -> bytes:
    return struct.pack("!BHH", content_type, version, len(payload)) + payload


def handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def alert(description: int, level: int = 2, version: int = 0x0303) -> bytes:
    return record(21, bytes([level, description]), version)


def server_hello(
    version: int,
    suite: int,
    *,
    extensions: Sequence[tuple[int, bytes]] = (),
    random: bytes | None = None,
    session_id: bytes = b"",
) -> bytes:
    """A ServerHello handshake message (not yet in a record)."""
    body = (
        struct.pack("!H", version)
        + (random or os.urandom(32))
        + bytes([len(session_id)])
        + session_id
        + struct.pack("!HB", suite, 0)
    )
    if extensions:
        block = b"".join(struct.pack("!HH", k, len(v)) + v for k, v in extensions)
        body += struct.pack("!H", len(block)) + block
    return handshake(2, body)


def tls13_server_hello(suite: int, group: int, share: bytes = b"\x01" * 32) -> bytes:
    exts = [(0x002B, b"\x03\x04"), (0x0033, struct.pack("!HH", group, len(share)) + share)]
    return record(22, server_hello(0x0303, suite, extensions=exts, session_id=os.urandom(32)))


def hello_retry(suite: int, group: int) -> bytes:
    exts = [(0x002B, b"\x03\x04"), (0x0033, struct.pack("!H", group))]
    return record(22, server_hello(0x0303, suite, extensions=exts, random=HRR_RANDOM))


def certificate_message(ders: Sequence[bytes]) -> bytes:
    chain = b"".join(len(d).to_bytes(3, "big") + d for d in ders)
    return handshake(11, len(chain).to_bytes(3, "big") + chain)


def ecdhe_key_exchange(group: int) -> bytes:
    point = b"\x04" + os.urandom(64)
    return handshake(12, struct.pack("!BHB", 3, group, len(point)) + point + b"\x04\x01\x00\x00")


def ssl2_server_hello(specs: Sequence[int], cert: bytes) -> bytes:
    raw = b"".join(spec.to_bytes(3, "big") for spec in specs)
    conn_id = os.urandom(16)
    body = (
        struct.pack("!BBBHHHH", 4, 0, 1, 0x0002, len(cert), len(raw), len(conn_id))
        + cert
        + raw
        + conn_id
    )
    return struct.pack("!H", 0x8000 | len(body)) + body


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a server that crashes mid-handshake does."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


Responder = Callable[[ClientHello, asyncio.StreamWriter], Awaitable[None]]


def answering(respond: Responder, seen: list[ClientHello] | None = None):  # type: ignore[no-untyped-def]
    """A connection handler: read one hello, let `respond` answer it, then wait (bounded)
    for the client to hang up."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hello = await read_client_hello(reader)
        if hello is None:
            return
        if seen is not None:
            seen.append(hello)
        await respond(hello, writer)
        if not writer.is_closing():
            await writer.drain()
            await asyncio.wait_for(reader.read(1), 10)  # bounded: the client hangs up first

    return handler


# -- a scriptable TLS server --------------------------------------------------------------


@dataclass
class FakeTls:
    """A server that negotiates like a real one from a written configuration.

    `versions` maps each accepted version to its suites in the server's preference order;
    `groups` are its curves/groups in preference order; `ecdhe` the suites that need a
    common curve. Hellos for versions it lacks get the highest version it has below them
    (like OpenSSL), or a protocol_version alert.
    """

    versions: dict[int, list[int]]
    server_order: bool = True
    groups: list[int] = field(default_factory=lambda: [29])
    ecdhe: set[int] = field(default_factory=set)
    max_suites: int | None = None  # close the connection on longer lists (a choking server)
    cert: bytes = b""
    ssl2_specs: list[int] = field(default_factory=list)

    def pick_group(self, offered: Sequence[int]) -> int | None:
        return next((g for g in self.groups if g in offered), None)

    def pick_suite(self, version: int, offered: Sequence[int], has_group: bool) -> int | None:
        mine = [s for s in self.versions[version] if has_group or s not in self.ecdhe]
        if self.server_order:
            return next((s for s in mine if s in offered), None)
        return next((s for s in offered if s in mine), None)

    async def respond(self, hello: ClientHello, writer: asyncio.StreamWriter) -> None:
        if hello.ssl2:
            common = [s for s in self.ssl2_specs if s in hello.suites]
            if common:
                writer.write(ssl2_server_hello(common, self.cert))
            else:
                writer.transport.abort()
            return
        if self.max_suites is not None and len(hello.suites) > self.max_suites:
            writer.transport.abort()
            return
        wanted = hello.wanted_version
        if wanted == 0x0304:
            version = 0x0304 if 0x0304 in self.versions else None
        else:
            below = [v for v in self.versions if v <= wanted and v != 0x0304]
            version = max(below) if below else None
        if version is None:
            writer.write(alert(70))
            return
        group = self.pick_group(hello.groups)
        suite = self.pick_suite(version, hello.suites, group is not None)
        if suite is None or (version == 0x0304 and group is None):
            writer.write(alert(40))
            return
        if version == 0x0304:
            assert group is not None
            share = hello.key_shares.get(group)
            writer.write(tls13_server_hello(suite, group) if share else hello_retry(suite, group))
            return
        flight = server_hello(version, suite) + certificate_message([self.cert or b"cert"])
        if suite in self.ecdhe:
            assert group is not None
            flight += ecdhe_key_exchange(group)
        writer.write(record(22, flight + handshake(14, b""), version))
