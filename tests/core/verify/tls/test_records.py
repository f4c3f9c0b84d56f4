"""The record, handshake and SSLv2 parsers: known messages, and fuzzed malformed input."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.verify.tls.records import (
    MAX_RECORD,
    HandshakeBuffer,
    Outcome,
    RecordBuffer,
    ReplyParser,
    TlsParseError,
    Version,
    Want,
    parse_alert,
    parse_certificates,
    parse_server_hello,
    parse_server_key_exchange,
    parse_ssl2_message,
    version_label,
)
from tests.core.verify.tls.servers import (
    alert,
    certificate_message,
    ecdhe_key_exchange,
    handshake,
    hello_retry,
    record,
    server_hello,
    ssl2_server_hello,
    tls13_server_hello,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_records_split_anywhere_reassemble() -> None:
    # Given two records delivered one byte at a time
    stream = record(22, b"abc") + record(21, b"\x02\x28")
    buffer = RecordBuffer()
    # When fed byte by byte
    got = [r for i in range(len(stream)) for r in buffer.feed(stream[i : i + 1])]
    # Then both come out whole, in order, and nothing is left over
    assert [(r.content_type, r.payload) for r in got] == [(22, b"abc"), (21, b"\x02\x28")]
    assert buffer.pending == 0


@pytest.mark.parametrize(
    "header",
    [
        b"\x17\x02\x00\x00\x01",
        b"\x63\x03\x03\x00\x01",
        struct.pack("!BHH", 22, 0x0303, MAX_RECORD + 1),
    ],
    ids=["major-2", "unknown-type", "oversize"],
)
def test_bad_record_headers_are_parse_errors(header: bytes) -> None:
    with pytest.raises(TlsParseError):
        RecordBuffer().feed(header)


def test_handshake_messages_span_and_share_records() -> None:
    hello = server_hello(0x0303, 0xC02F)
    done = handshake(14, b"")
    joined = hello + done
    buffer = HandshakeBuffer()
    first = buffer.feed(joined[:7])
    rest = buffer.feed(joined[7:])
    assert first == []
    assert [m.msg_type for m in rest] == [2, 14]


def test_server_hello_fields() -> None:
    body = server_hello(0x0303, 0xC030, extensions=[(0xFF01, b"\x00")], session_id=b"\x07" * 32)
    hello = parse_server_hello(body[4:])
    assert hello.legacy_version == hello.version == Version.TLS12
    assert hello.cipher_suite == 0xC030
    assert hello.session_id == b"\x07" * 32
    assert hello.extension(0xFF01) == b"\x00"
    assert not hello.is_retry


def test_tls13_server_hello_and_retry() -> None:
    sh = parse_server_hello(tls13_server_hello(0x1302, 29)[9:])
    hrr = parse_server_hello(hello_retry(0x1301, 24)[9:])
    assert (sh.version, sh.cipher_suite, sh.key_share_group, sh.is_retry) == (
        0x0304,
        0x1302,
        29,
        False,
    )
    assert (hrr.version, hrr.cipher_suite, hrr.key_share_group, hrr.is_retry) == (
        0x0304,
        0x1301,
        24,
        True,
    )


def test_certificates_and_key_exchange() -> None:
    certs = parse_certificates(certificate_message([b"leaf", b"ca"])[4:])
    assert certs == (b"leaf", b"ca")
    assert parse_server_key_exchange(ecdhe_key_exchange(24)[4:], finite_field=False).group == 24
    prime = (1 << 2047 | 1).to_bytes(256, "big")
    dh = struct.pack("!H", 256) + prime + b"\x00\x01\x02" + b"\x00\x01\x05"
    assert parse_server_key_exchange(dh, finite_field=True).dh_bits == 2048
    assert parse_server_key_exchange(b"\x01", finite_field=False).group == 0xFF01  # explicit


def test_ssl2_server_hello_and_error() -> None:
    raw = ssl2_server_hello([0x010080, 0x0700C0], b"cert")
    message = parse_ssl2_message(raw[2:])
    assert not isinstance(message, int)
    assert message.cipher_specs == (0x010080, 0x0700C0)
    assert message.certificate == b"cert"
    assert parse_ssl2_message(b"\x00\x00\x01") == 1  # ERROR: no-cipher


def test_alert_and_labels() -> None:
    assert parse_alert(b"\x02\x28").name == "handshake_failure"
    assert parse_alert(b"\x02\xc8").name == "alert_200"
    assert version_label(0x0302) == "TLSv1.1"
    assert version_label(0x7F1C) == "0x7F1C"


# -- the reply state machine --------------------------------------------------------------


def feed_all(
    data: bytes, want: Want = Want.HELLO, *, ssl2: bool = False, step: int = 0
) -> ReplyParser:
    parser = ReplyParser(want, ssl2=ssl2)
    chunks = [data[i : i + step] for i in range(0, len(data), step)] if step else [data]
    for chunk in chunks:
        parser.feed(chunk)
    if not parser.reply.done:
        parser.eof()
    return parser


def test_reply_stops_at_server_hello_when_that_is_all_it_wants() -> None:
    data = record(22, server_hello(0x0303, 0xC02F)) + b"\xff" * 10  # garbage after: unread
    reply = feed_all(data, step=3).reply
    assert reply.outcome is Outcome.SERVER_HELLO
    assert reply.server_hello is not None and reply.server_hello.cipher_suite == 0xC02F


def test_reply_reads_through_key_exchange() -> None:
    flight = server_hello(0x0303, 0xC02F) + certificate_message([b"leaf"]) + ecdhe_key_exchange(29)
    reply = feed_all(record(22, flight), Want.KEY_EXCHANGE, step=5).reply
    assert reply.outcome is Outcome.SERVER_HELLO
    assert reply.certificates == (b"leaf",)
    assert reply.key_exchange is not None


def test_reply_outcomes_for_alert_garbage_and_silence() -> None:
    assert feed_all(alert(40)).reply.detail == "handshake_failure"
    garbage = feed_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").reply
    assert garbage.outcome is Outcome.GARBAGE
    assert feed_all(b"").reply.outcome is Outcome.CLOSED
    malformed = feed_all(record(22, handshake(11, b"\x00\x00\x00"))).reply
    assert malformed.outcome is Outcome.MALFORMED  # a Certificate before any ServerHello


def test_server_hello_then_hang_up_keeps_the_hello() -> None:
    parser = feed_all(record(22, server_hello(0x0303, 0x002F)), Want.KEY_EXCHANGE)
    reply = parser.reply
    assert reply.outcome is Outcome.SERVER_HELLO
    assert reply.key_exchange is None
    assert any("closed" in text for text in reply.extra)


def test_ssl2_reply_only_when_asked() -> None:
    raw = ssl2_server_hello([0x010080], b"c")
    assert feed_all(raw, ssl2=True, step=4).reply.outcome is Outcome.SSL2_HELLO
    assert feed_all(raw, ssl2=False).reply.outcome is Outcome.GARBAGE


# -- fuzzing: malformed input gives our error or an outcome, never anything else -----------


@FUZZ
@given(st.binary(max_size=600))
def test_fuzz_server_hello(data: bytes) -> None:
    with contextlib.suppress(TlsParseError):
        parse_server_hello(data)


@FUZZ
@given(st.binary(max_size=600), st.booleans())
def test_fuzz_key_exchange_certificates_alert_ssl2(data: bytes, finite: bool) -> None:
    for parse in (
        lambda: parse_server_key_exchange(data, finite_field=finite),
        lambda: parse_certificates(data),
        lambda: parse_alert(data),
        lambda: parse_ssl2_message(data),
    ):
        with contextlib.suppress(TlsParseError):
            parse()


@FUZZ
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_fuzz_record_and_handshake_buffers(chunks: list[bytes]) -> None:
    records, messages = RecordBuffer(), HandshakeBuffer()
    for chunk in chunks:
        try:
            for rec in records.feed(chunk):
                messages.feed(rec.payload)
        except TlsParseError:
            break


def _mutations(base: bytes) -> st.SearchStrategy[bytes]:
    """A valid flight with bytes flipped, cut short or inserted: near-misses, not noise."""
    flip = st.tuples(st.integers(0, len(base) - 1), st.integers(0, 255)).map(
        lambda t: base[: t[0]] + bytes([t[1]]) + base[t[0] + 1 :]
    )
    cut = st.integers(0, len(base)).map(lambda n: base[:n])
    insert = st.tuples(st.integers(0, len(base)), st.binary(min_size=1, max_size=8)).map(
        lambda t: base[: t[0]] + t[1] + base[t[0] :]
    )
    return st.one_of(flip, cut, insert)


FLIGHT = record(
    22,
    server_hello(0x0303, 0xC02F, extensions=[(0xFF01, b"\x00")])
    + certificate_message([b"x" * 40])
    + ecdhe_key_exchange(23)
    + handshake(14, b""),
)


@FUZZ
@given(
    st.one_of(
        _mutations(FLIGHT), _mutations(tls13_server_hello(0x1301, 29)), st.binary(max_size=400)
    ),
    st.integers(1, 64),
    st.sampled_from(list(Want)),
    st.booleans(),
)
def test_fuzz_reply_parser_always_ends_in_an_outcome(
    data: bytes, step: int, want: Want, ssl2: bool
) -> None:
    parser = feed_all(data, want, ssl2=ssl2, step=step)
    reply = parser.reply
    assert reply.outcome in set(Outcome)
    if reply.outcome in (Outcome.SERVER_HELLO, Outcome.HELLO_RETRY):
        assert reply.server_hello is not None


def test_an_alert_after_the_server_hello_is_noted_not_mistaken_for_refusal() -> None:
    data = record(22, server_hello(0x0303, 0xC02F)) + alert(80)
    reply = feed_all(data, Want.KEY_EXCHANGE).reply
    assert reply.outcome is Outcome.SERVER_HELLO
    assert reply.extra == ["after ServerHello: alert internal_error"]
