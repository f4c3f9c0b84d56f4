"""Parsing what a TLS (or SSL 2.0) server sends back, up to the key exchange.

Everything here is pure and defensive: the input is whatever a hostile server chose to
send. Malformed input raises `TlsParseError` (ours) and nothing else; lengths are checked
before every slice and every buffer is capped. `ReplyParser` is the state machine the
enumerator feeds raw bytes into: it never raises, it ends in an `Outcome`.

Wire formats: RFC 5246 (records, ServerHello, Certificate, ServerKeyExchange), RFC 8446
(supported_versions, key_share, HelloRetryRequest), RFC 8422 (ECDHE parameters), and the
SSL 2.0 draft (SERVER-HELLO, ERROR).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

MAX_RECORD = 2**14 + 2048  # the largest TLSCiphertext fragment RFC 5246 allows
MAX_MESSAGE = 256 * 1024  # a handshake message larger than this is not a ServerHello chain
MAX_REPLY = 512 * 1024  # raw bytes read for one reply, at most


class TlsParseError(ValueError):
    """Bytes that are not the TLS structure they claim to be."""


class Version(IntEnum):
    SSL2 = 0x0002
    SSL3 = 0x0300
    TLS10 = 0x0301
    TLS11 = 0x0302
    TLS12 = 0x0303
    TLS13 = 0x0304

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Version.SSL2: "SSLv2",
    Version.SSL3: "SSLv3",
    Version.TLS10: "TLSv1.0",
    Version.TLS11: "TLSv1.1",
    Version.TLS12: "TLSv1.2",
    Version.TLS13: "TLSv1.3",
}


def version_label(value: int) -> str:
    """`TLSv1.2` for 0x0303; the hex value for anything else."""
    try:
        return Version(value).label
    except ValueError:
        return f"0x{value:04X}"


class ContentType(IntEnum):
    CHANGE_CIPHER_SPEC = 20
    ALERT = 21
    HANDSHAKE = 22
    APPLICATION_DATA = 23
    HEARTBEAT = 24


class HandshakeType(IntEnum):
    SERVER_HELLO = 2
    CERTIFICATE = 11
    SERVER_KEY_EXCHANGE = 12
    CERTIFICATE_REQUEST = 13
    SERVER_HELLO_DONE = 14


class Ext(IntEnum):
    SERVER_NAME = 0x0000
    SUPPORTED_GROUPS = 0x000A
    EC_POINT_FORMATS = 0x000B
    SIGNATURE_ALGORITHMS = 0x000D
    PADDING = 0x0015
    SUPPORTED_VERSIONS = 0x002B
    PSK_KEY_EXCHANGE_MODES = 0x002D
    KEY_SHARE = 0x0033
    RENEGOTIATION_INFO = 0xFF01


HRR_RANDOM = hashlib.sha256(b"HelloRetryRequest").digest()
"""RFC 8446 4.1.3: a ServerHello with this random is a HelloRetryRequest."""

ALERTS = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    21: "decryption_failed",
    22: "record_overflow",
    30: "decompression_failure",
    40: "handshake_failure",
    41: "no_certificate",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    60: "export_restriction",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    100: "no_renegotiation",
    109: "missing_extension",
    110: "unsupported_extension",
    112: "unrecognized_name",
    113: "bad_certificate_status_response",
    115: "unknown_psk_identity",
    116: "certificate_required",
    120: "no_application_protocol",
}

SSL2_ERRORS = {
    0x0001: "no-cipher",
    0x0002: "no-certificate",
    0x0004: "bad-certificate",
    0x0006: "unsupported-certificate-type",
}


# -- a bounds-checked reader --------------------------------------------------------------


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise TlsParseError(f"truncated {what}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def uint(self, size: int, what: str) -> int:
        return int.from_bytes(self.take(size, what), "big")

    def vector(self, len_size: int, what: str) -> bytes:
        return self.take(self.uint(len_size, f"{what} length"), what)

    @property
    def left(self) -> int:
        return len(self.data) - self.pos


# -- records ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    content_type: int
    version: int
    payload: bytes


_CONTENT_TYPES = frozenset(int(c) for c in ContentType)


def looks_like_record(head: bytes) -> bool:
    """Whether bytes start like a TLS record: a known type, major version 3."""
    return len(head) >= 2 and head[0] in _CONTENT_TYPES and head[1] == 3


class RecordBuffer:
    """Splits a byte stream into TLS records; a bad header raises TlsParseError."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[Record]:
        self._buf += data
        out: list[Record] = []
        while len(self._buf) >= 5:
            ctype, major, minor = self._buf[0], self._buf[1], self._buf[2]
            length = int.from_bytes(self._buf[3:5], "big")
            if ctype not in _CONTENT_TYPES or major != 3 or minor > 4:
                raise TlsParseError(f"not a TLS record header: {self._buf[:5].hex()}")
            if length > MAX_RECORD:
                raise TlsParseError(f"record of {length} bytes is over the limit")
            if len(self._buf) < 5 + length:
                break
            out.append(Record(ctype, (major << 8) | minor, self._buf[5 : 5 + length]))
            self._buf = self._buf[5 + length :]
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)


@dataclass(frozen=True, slots=True)
class HandshakeMessage:
    msg_type: int
    body: bytes


class HandshakeBuffer:
    """Reassembles handshake messages from handshake-record payloads (they may be split
    across records, or several may share one)."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, payload: bytes) -> list[HandshakeMessage]:
        self._buf += payload
        out: list[HandshakeMessage] = []
        while len(self._buf) >= 4:
            length = int.from_bytes(self._buf[1:4], "big")
            if length > MAX_MESSAGE:
                raise TlsParseError(f"handshake message of {length} bytes is over the limit")
            if len(self._buf) < 4 + length:
                break
            out.append(HandshakeMessage(self._buf[0], self._buf[4 : 4 + length]))
            self._buf = self._buf[4 + length :]
        return out


# -- messages -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alert:
    level: int
    description: int

    @property
    def name(self) -> str:
        return ALERTS.get(self.description, f"alert_{self.description}")


def parse_alert(payload: bytes) -> Alert:
    if len(payload) < 2:
        raise TlsParseError("truncated alert")
    return Alert(payload[0], payload[1])


@dataclass(frozen=True, slots=True)
class ServerHello:
    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suite: int
    compression: int
    extensions: tuple[tuple[int, bytes], ...] = ()

    @property
    def is_retry(self) -> bool:
        """A HelloRetryRequest (RFC 8446 4.1.4) rather than a ServerHello."""
        return self.random == HRR_RANDOM

    def extension(self, ext_type: int) -> bytes | None:
        for kind, data in self.extensions:
            if kind == ext_type:
                return data
        return None

    @property
    def version(self) -> int:
        """The negotiated version: supported_versions when present (TLS 1.3), else legacy."""
        data = self.extension(Ext.SUPPORTED_VERSIONS)
        if data is not None and len(data) == 2:
            return int.from_bytes(data, "big")
        return self.legacy_version

    @property
    def key_share_group(self) -> int | None:
        """The group of the server's key_share (ServerHello) or the one it asks for (HRR)."""
        data = self.extension(Ext.KEY_SHARE)
        if data is None or len(data) < 2:
            return None
        return int.from_bytes(data[:2], "big")


def parse_server_hello(body: bytes) -> ServerHello:
    cur = _Cursor(body)
    legacy_version = cur.uint(2, "version")
    random = cur.take(32, "random")
    session_id = cur.vector(1, "session id")
    if len(session_id) > 32:
        raise TlsParseError("session id longer than 32 bytes")
    suite = cur.uint(2, "cipher suite")
    compression = cur.uint(1, "compression method")
    extensions: list[tuple[int, bytes]] = []
    if cur.left:
        block = _Cursor(cur.vector(2, "extensions"))
        while block.left:
            kind = block.uint(2, "extension type")
            extensions.append((kind, block.vector(2, "extension data")))
    if cur.left:
        raise TlsParseError("trailing bytes after ServerHello")
    return ServerHello(legacy_version, random, session_id, suite, compression, tuple(extensions))


def parse_certificates(body: bytes) -> tuple[bytes, ...]:
    """The DER certificates of a TLS 1.2-and-older Certificate message, leaf first."""
    cur = _Cursor(body)
    chain = _Cursor(cur.vector(3, "certificate list"))
    if cur.left:
        raise TlsParseError("trailing bytes after certificate list")
    certs: list[bytes] = []
    while chain.left:
        certs.append(chain.vector(3, "certificate"))
    return tuple(certs)


@dataclass(frozen=True, slots=True)
class KeyExchange:
    """What a ServerKeyExchange says about the key exchange group."""

    group: int | None = None  # named curve code point (explicit curves: 0xFF01/0xFF02)
    dh_bits: int | None = None  # finite-field DH: the bit length of the prime


def parse_server_key_exchange(body: bytes, *, finite_field: bool) -> KeyExchange:
    """The group of an ECDHE (or anonymous ECDH) or DHE ServerKeyExchange.

    The signature after the parameters is not read: only the group is wanted.
    """
    cur = _Cursor(body)
    if finite_field:
        prime = cur.vector(2, "dh_p")
        if not prime:
            raise TlsParseError("empty DH prime")
        cur.vector(2, "dh_g")
        cur.vector(2, "dh_Ys")
        return KeyExchange(dh_bits=int.from_bytes(prime, "big").bit_length())
    curve_type = cur.uint(1, "curve type")
    if curve_type == 3:  # named_curve
        group = cur.uint(2, "named curve")
        cur.vector(1, "ec point")
        return KeyExchange(group=group)
    if curve_type in (1, 2):  # explicit_prime, explicit_char2
        return KeyExchange(group=0xFF00 + curve_type)
    raise TlsParseError(f"unknown curve type {curve_type}")


# -- SSL 2.0 ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ssl2ServerHello:
    version: int
    certificate: bytes
    cipher_specs: tuple[int, ...]


def ssl2_record_length(head: bytes) -> tuple[int, int] | None:
    """(header size, body length) of an SSL 2.0 record, None until enough bytes are in."""
    if len(head) < 2:
        return None
    if head[0] & 0x80:
        return 2, ((head[0] & 0x7F) << 8) | head[1]
    if len(head) < 3:
        return None
    return 3, ((head[0] & 0x3F) << 8) | head[1]


def parse_ssl2_message(body: bytes) -> Ssl2ServerHello | int:
    """A SERVER-HELLO, or the error code of an ERROR message."""
    cur = _Cursor(body)
    kind = cur.uint(1, "message type")
    if kind == 0:
        return cur.uint(2, "error code")
    if kind != 4:
        raise TlsParseError(f"SSLv2 message type {kind} is not SERVER-HELLO")
    cur.uint(1, "session id hit")
    cur.uint(1, "certificate type")
    version = cur.uint(2, "server version")
    cert_len = cur.uint(2, "certificate length")
    specs_len = cur.uint(2, "cipher specs length")
    conn_len = cur.uint(2, "connection id length")
    if specs_len % 3:
        raise TlsParseError("cipher specs length is not a multiple of 3")
    certificate = cur.take(cert_len, "certificate")
    raw_specs = cur.take(specs_len, "cipher specs")
    cur.take(conn_len, "connection id")
    specs = tuple(int.from_bytes(raw_specs[i : i + 3], "big") for i in range(0, specs_len, 3))
    return Ssl2ServerHello(version, certificate, specs)


# -- the reply state machine --------------------------------------------------------------


class Outcome(StrEnum):
    """How one handshake attempt ended (zgrab2-style: every ending is a named result)."""

    SERVER_HELLO = "server-hello"
    HELLO_RETRY = "hello-retry-request"
    SSL2_HELLO = "ssl2-server-hello"
    ALERT = "alert"
    SSL2_ERROR = "ssl2-error"
    CLOSED = "closed"  # the server closed the connection without a word
    RESET = "reset"
    TIMEOUT = "timeout"
    GARBAGE = "garbage"  # bytes that are not TLS at all
    MALFORMED = "malformed"  # TLS-looking bytes that do not parse
    REFUSED = "refused"
    UNREACHABLE = "unreachable"
    STARTTLS_FAILED = "starttls-failed"


class Want(IntEnum):
    """How far into the server's flight a probe reads."""

    HELLO = 1  # stop at the ServerHello
    KEY_EXCHANGE = 2  # through the ServerKeyExchange (or ServerHelloDone)


@dataclass
class Reply:
    """What one probe got back. Fields fill in as bytes arrive; `outcome` says how it
    ended. A reply can carry a ServerHello *and* end in a timeout (a server that hangs after
    its hello), which is why both are kept."""

    outcome: Outcome | None = None
    detail: str = ""
    server_hello: ServerHello | None = None
    ssl2: Ssl2ServerHello | None = None
    alert: Alert | None = None
    certificates: tuple[bytes, ...] = ()
    key_exchange: bytes | None = None  # ServerKeyExchange body
    hello_done: bool = False
    received: int = 0
    first_bytes: bytes = b""
    extra: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.outcome is not None


class ReplyParser:
    """Feed it the server's bytes; it decides when the reply is complete and how it ended.

    Never raises: malformed input ends the reply as GARBAGE or MALFORMED.
    """

    def __init__(self, want: Want = Want.HELLO, *, ssl2: bool = False) -> None:
        self.want = want
        self.ssl2 = ssl2
        self.reply = Reply()
        self._raw = b""
        self._records = RecordBuffer()
        self._handshake = HandshakeBuffer()
        self._mode: str | None = None  # "tls" or "ssl2" once the first bytes tell

    def feed(self, data: bytes) -> Reply:
        reply = self.reply
        if reply.done or not data:
            return reply
        reply.received += len(data)
        if len(reply.first_bytes) < 16:
            reply.first_bytes += data[: 16 - len(reply.first_bytes)]
        if reply.received > MAX_REPLY:
            return self.end(Outcome.MALFORMED, "reply over the size limit")
        try:
            if self._mode is None:
                self._raw += data
                if not self._detect():
                    return reply
                data, self._raw = self._raw, b""
            if self._mode == "ssl2":
                self._raw += data
                self._feed_ssl2()
            else:
                self._feed_tls(data)
        except TlsParseError as exc:
            self.end(Outcome.GARBAGE if self._mode is None else Outcome.MALFORMED, str(exc))
        return reply

    def eof(self) -> Reply:
        """The server closed the connection."""
        if not self.reply.done:
            self.end(Outcome.CLOSED, "connection closed")
        return self.reply

    def end(self, outcome: Outcome, detail: str = "") -> Reply:
        """End the reply (idempotent: the first ending wins)."""
        if self.reply.done:
            return self.reply
        reply = self.reply
        # A ServerHello already read stays the result; how the rest went is kept as extra.
        if reply.server_hello is not None:
            hello = Outcome.HELLO_RETRY if reply.server_hello.is_retry else Outcome.SERVER_HELLO
            if outcome not in (Outcome.SERVER_HELLO, Outcome.HELLO_RETRY):
                reply.extra.append(f"after ServerHello: {outcome} {detail}".strip())
            reply.outcome = hello
            return reply
        reply.outcome = outcome
        reply.detail = detail
        return reply

    def _detect(self) -> bool:
        head = self._raw
        if not head:
            return False
        if looks_like_record(head):
            self._mode = "tls"
            return True
        if len(head) < 2 and head[0] in _CONTENT_TYPES:
            return False  # one byte is not enough to tell
        if self.ssl2 and head[0] & 0x80:
            self._mode = "ssl2"
            return True
        raise TlsParseError(f"not TLS: {head[:8].hex()}")

    def _feed_ssl2(self) -> None:
        size = ssl2_record_length(self._raw)
        if size is None:
            return
        header, length = size
        if len(self._raw) < header + length:
            return
        message = parse_ssl2_message(self._raw[header : header + length])
        if isinstance(message, int):
            name = SSL2_ERRORS.get(message, f"0x{message:04X}")
            self.end(Outcome.SSL2_ERROR, name)
            return
        self.reply.ssl2 = message
        if message.certificate:
            self.reply.certificates = (message.certificate,)
        self.end(Outcome.SSL2_HELLO)

    def _feed_tls(self, data: bytes) -> None:
        for record in self._records.feed(data):
            if self.reply.done:
                return
            if record.content_type == ContentType.ALERT:
                alert = parse_alert(record.payload)
                self.reply.alert = alert
                self.end(Outcome.ALERT, alert.name)  # after a ServerHello: noted in extra
                return
            if record.content_type == ContentType.HANDSHAKE:
                for message in self._handshake.feed(record.payload):
                    self._on_message(message)
                    if self.reply.done:
                        return
            elif self.reply.server_hello is not None:
                # ChangeCipherSpec or encrypted records: TLS 1.3 after its ServerHello.
                self.end(Outcome.SERVER_HELLO)
                return
            else:
                raise TlsParseError(f"record type {record.content_type} before ServerHello")

    def _on_message(self, message: HandshakeMessage) -> None:
        reply = self.reply
        if reply.server_hello is None:
            if message.msg_type != HandshakeType.SERVER_HELLO:
                raise TlsParseError(f"handshake type {message.msg_type} before ServerHello")
            hello = parse_server_hello(message.body)
            reply.server_hello = hello
            tls13 = hello.version == Version.TLS13
            if self.want == Want.HELLO or hello.is_retry or tls13:
                self.end(Outcome.HELLO_RETRY if hello.is_retry else Outcome.SERVER_HELLO)
            return
        if message.msg_type == HandshakeType.CERTIFICATE:
            reply.certificates = parse_certificates(message.body)
        elif message.msg_type == HandshakeType.SERVER_KEY_EXCHANGE:
            reply.key_exchange = message.body
            self.end(Outcome.SERVER_HELLO)
        elif message.msg_type == HandshakeType.SERVER_HELLO_DONE:
            reply.hello_done = True
            self.end(Outcome.SERVER_HELLO)
