"""Hostile and broken servers: every misbehaviour is recorded as what it is, never a crash,
and never a suite the server was not seen to accept."""

from __future__ import annotations

import asyncio
import socket

from core.verify.tls import enumerate_tls
from core.verify.tls.model import ProbeStatus, TlsProfile
from core.verify.tls.records import Version
from tests.core.verify.tls.servers import (
    ClientHello,
    alert,
    answering,
    hello_retry,
    record,
    reset,
    run,
    serve,
    server_hello,
    ssl2_server_hello,
    tls13_server_hello,
)

FAST = 0.5  # per-connection timeout: these servers answer at once or never


def scan(handler, **kwargs: object) -> TlsProfile:  # type: ignore[no-untyped-def]
    async def go() -> TlsProfile:
        async with serve(handler) as port:
            kwargs.setdefault("timeout", FAST)
            return await enumerate_tls("127.0.0.1", port, **kwargs)  # type: ignore[arg-type]

    return run(go(), limit=60)


def by_version(profile: TlsProfile) -> dict[str, object]:
    return {r.version: r for r in profile.protocols}


def assert_nothing_accepted(profile: TlsProfile) -> None:
    assert profile.versions == ()
    assert profile.accepted() == ()
    assert profile.groups == () and profile.groups_tls12 == ()
    assert [v.compliant for v in profile.mozilla] == [False, False]


def test_reset_on_every_hello() -> None:
    async def respond(hello: ClientHello, writer: asyncio.StreamWriter) -> None:
        reset(writer)

    profile = scan(answering(respond))
    assert_nothing_accepted(profile)
    assert profile.outcome == "no-tls"
    for result in profile.protocols:
        assert result.status is ProbeStatus.ERROR, result
        assert result.outcome.startswith(("reset", "closed")), result.outcome


def test_reset_in_the_middle_of_a_server_hello() -> None:
    async def respond(hello: ClientHello, writer: asyncio.StreamWriter) -> None:
        writer.write(record(22, server_hello(0x0303, 0xC02F))[:20])  # half a ServerHello
        await writer.drain()
        reset(writer)

    profile = scan(answering(respond))
    assert_nothing_accepted(profile)
    assert by_version(profile)["TLSv1.2"].status is ProbeStatus.ERROR  # type: ignore[attr-defined]


def test_garbage_answers() -> None:
    async def respond(hello: ClientHello, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    profile = scan(answering(respond))
    assert_nothing_accepted(profile)
    result = by_version(profile)["TLSv1.2"]
    assert result.status is ProbeStatus.ERROR  # type: ignore[attr-defined]
    assert result.outcome == "garbage: " + b"HTTP/1.1".hex()  # type: ignore[attr-defined]


def test_alert_for_everything() -> None:
    async def respond(hello: ClientHello, writer: asyncio.StreamWriter) -> None:
        writer.write(alert(40))

    profile = scan(answering(respond))
    assert_nothing_accepted(profile)
    assert profile.outcome == "no-tls"
    tls = [r for r in profile.protocols if r.version != "SSLv2"]
    assert {r.outcome for r in tls} == {"alert handshake_failure"}
    assert {r.status for r in tls} == {ProbeStatus.REJECTED}
    assert profile.mozilla[0].reasons == ("no TLS version accepted",)


def test_hang_after_server_hello() -> None:
    # Given a TLS 1.2 server that picks from two suites, sends its ServerHello and then
    # nothing more (no Certificate, no ServerKeyExchange), and refuses other versions
    mine = [0xC02F, 0x009C]

    async def respond(hello: ClientHello, writer: asyncio.StreamWriter) -> None:
        if hello.ssl2 or hello.wanted_version != 0x0303:
            writer.write(alert(70))
            return
        chosen = next((s for s in mine if s in hello.suites), None)
        writer.write(record(22, server_hello(0x0303, chosen)) if chosen else alert(40))

    profile = scan(answering(respond))
    # Then the suites it chose are found (only a ServerHello is needed for that) ...
    assert [s.code for s in profile.accepted("TLSv1.2")] == ["0xC02F", "0x009C"]
    # ... and the key exchange it never sent is an anomaly, not a guess
    assert profile.groups_tls12 == ()
    assert any("no ServerKeyExchange" in a and "stalled" in a for a in profile.anomalies)
    assert profile.cert is None


def test_a_suite_that_was_not_offered() -> None:
    # Given a server that answers every hello with TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    async def respond(hello: ClientHello, writer: asyncio.StreamWriter) -> None:
        if hello.ssl2:
            writer.write(ssl2_server_hello([0x010080, 0x0A0080], b""))  # 0x0A0080: not offered
        elif hello.wanted_version == 0x0304:
            writer.write(tls13_server_hello(0xC02F, 29))
        else:
            writer.write(record(22, server_hello(hello.wanted_version, 0xC02F)))

    profile = scan(answering(respond), versions=[Version.SSL2, Version.TLS12, Version.TLS13])
    # Then TLS 1.2 has it once (it was offered the first time), and nothing else
    assert [s.code for s in profile.accepted("TLSv1.2")] == ["0xC02F"]
    # TLS 1.3 never offered it: an error, with the violation named
    tls13 = by_version(profile)["TLSv1.3"]
    assert tls13.status is ProbeStatus.ERROR  # type: ignore[attr-defined]
    assert profile.accepted("TLSv1.3") == ()
    assert (
        "TLSv1.3: chose TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, which was not offered"
        in profile.anomalies
    )
    assert any("TLSv1.2: chose" in a for a in profile.anomalies)  # the repeat
    # SSLv2: only the offered spec counts
    assert [s.code for s in profile.accepted("SSLv2")] == ["0x010080"]
    assert any("0x0A0080" in a for a in profile.anomalies)


def test_hello_retry_for_a_group_that_was_not_offered() -> None:
    async def respond(hello: ClientHello, writer: asyncio.StreamWriter) -> None:
        if not hello.ssl2 and hello.wanted_version == 0x0304:
            writer.write(hello_retry(0x1301, 0x7777))
        else:
            writer.write(alert(70))

    profile = scan(answering(respond))
    assert profile.groups == ()
    assert any("unassigned_0x7777" in a and "not offered" in a for a in profile.anomalies)


def test_silence_is_a_timeout_and_the_scan_still_ends() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.wait_for(reader.read(1 << 16), 30)  # reads the hello, answers nothing
        await asyncio.wait_for(reader.read(1), 30)

    profile = scan(silent, timeout=0.3)
    assert_nothing_accepted(profile)
    assert {r.status for r in profile.protocols} == {ProbeStatus.ERROR}
    assert all(r.outcome.startswith("timeout") for r in profile.protocols)


def test_nothing_listening() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the scan: refused

    profile = run(enumerate_tls("127.0.0.1", port, timeout=FAST), limit=30)
    assert profile.outcome == "unreachable"
    assert_nothing_accepted(profile)
