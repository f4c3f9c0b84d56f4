"""Enumeration against servers on 127.0.0.1 the tests start: the system OpenSSL (through
Python's ssl module) and scripted servers that speak what OpenSSL 3 no longer can.

Ground truth is the configuration each test writes: the suite list set on the context (read
back from OpenSSL itself) or the scripted server's table.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core.certificate import CertSummary
from core.models import Endpoint, PortState, Service, Status
from core.report.views import ciphers_view
from core.risk.grading import Grade
from core.verify.tls import enumerate_tls
from core.verify.tls.model import ProbeStatus, TlsProfile
from core.verify.tls.records import Version
from core.verify.tls.suites import by_name
from tests.core.verify.fp_servers import server_context
from tests.core.verify.tls.servers import FakeTls, answering, run, serve

HOST = "lab.example.com"
TLS12_SUITES = ["ECDHE-RSA-CHACHA20-POLY1305", "AES256-SHA", "ECDHE-RSA-AES128-GCM-SHA256"]


def iana(openssl_name: str) -> str:
    suite = by_name(openssl_name)
    assert suite is not None
    return suite.name


def code(openssl_name: str) -> int:
    suite = by_name(openssl_name)
    assert suite is not None
    return suite.code


def openssl_server(
    *, server_order: bool, tls13: bool = False, curve: str | None = None
) -> ssl.SSLContext:
    ca = trustme.CA()
    ctx = server_context(ca, HOST, key_type=trustme.KeyType.RSA)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3 if tls13 else ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(":".join(TLS12_SUITES))
    if server_order:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:  # Python sets it on server contexts by default
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    if curve:
        ctx.set_ecdh_curve(curve)
    return ctx


def scan(handler_or_ctx: object, **kwargs: object) -> TlsProfile:
    """Serve on 127.0.0.1 (a port the OS picks) and enumerate it."""

    async def go() -> TlsProfile:
        if isinstance(handler_or_ctx, ssl.SSLContext):
            server = serve(_idle, tls=handler_or_ctx)
        else:
            assert callable(handler_or_ctx)
            server = serve(handler_or_ctx)
        async with server as port:
            kwargs.setdefault("timeout", 3.0)
            return await enumerate_tls("127.0.0.1", port, **kwargs)  # type: ignore[arg-type]

    return run(go(), limit=60)


async def _idle(reader, writer) -> None:  # type: ignore[no-untyped-def]
    await reader.read(1)


def version(profile: TlsProfile, label: str):  # type: ignore[no-untyped-def]
    return next(r for r in profile.protocols if r.version == label)


def names(profile: TlsProfile, label: str) -> list[str]:
    return [s.name for s in version(profile, label).suites]


def test_server_order_is_found_and_reported() -> None:
    # Given OpenSSL serving three TLS 1.2 suites in its own order
    ctx = openssl_server(server_order=True)
    # as OpenSSL itself reads the list (get_ciphers lists the TLS 1.3 suites too)
    configured = [c["name"] for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3"]
    assert configured == TLS12_SUITES
    # When we enumerate
    profile = scan(ctx, sni=HOST)
    # Then exactly those suites, in that order, and only TLS 1.2
    assert profile.outcome == "ok"
    assert profile.versions == ("TLSv1.2",)
    assert names(profile, "TLSv1.2") == [iana(n) for n in TLS12_SUITES]
    assert version(profile, "TLSv1.2").server_preference is True
    for label in ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.3"):
        assert version(profile, label).status is ProbeStatus.REJECTED, label
    # n accepted suites cost n + 1 handshakes, plus one for the order check
    assert version(profile, "TLSv1.2").handshakes == len(TLS12_SUITES) + 2


def test_client_order_is_recognised() -> None:
    profile = scan(openssl_server(server_order=False))
    result = version(profile, "TLSv1.2")
    assert result.server_preference is False
    assert sorted(names(profile, "TLSv1.2")) == sorted(iana(n) for n in TLS12_SUITES)
    assert [s.code for s in result.suites] == sorted(s.code for s in result.suites)


def test_tls13_groups_certificate_and_negotiated_suite() -> None:
    # Given OpenSSL with TLS 1.3 and a single group neither of our default key shares is for
    profile = scan(openssl_server(server_order=True, tls13=True, curve="secp384r1"), sni=HOST)
    assert profile.versions == ("TLSv1.2", "TLSv1.3")
    assert set(names(profile, "TLSv1.3")) == {
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_AES_128_GCM_SHA256",
    }
    # Then the group comes from the HelloRetryRequest, and TLS 1.2 uses the same curve
    assert profile.groups == ("secp384r1",)
    assert profile.groups_tls12 == ("secp384r1",)
    assert profile.cert is not None and HOST in profile.cert.sans
    assert profile.negotiated_version == "TLSv1.3"
    assert profile.negotiated in names(profile, "TLSv1.3")
    # AES256-SHA (static RSA, CBC) makes the endpoint weak, and says so
    assert profile.grade is Grade.WEAK
    assert any("TLS_RSA_WITH_AES_256_CBC_SHA" in r for r in profile.grade_reasons)


def test_a_certificate_the_caller_already_has_is_reused() -> None:
    # The pipeline hands over what the verifier read; the server's own is not parsed again
    given = CertSummary(subject="CN=read by the verifier", key_type="EC", key_bits=256)
    profile = scan(openssl_server(server_order=True), cert=given)
    assert profile.cert is given
    intermediate = next(v for v in profile.mozilla if v.profile == "intermediate")
    assert not any("certificate" in reason for reason in intermediate.reasons)


def test_profile_feeds_the_ciphers_view() -> None:
    profile = scan(openssl_server(server_order=True))
    endpoint = Endpoint(ip="192.0.2.10", port=443)
    now = datetime(2024, 5, 1, tzinfo=UTC)
    svc = Service(
        endpoint=endpoint,
        state=PortState.OPEN,
        status=Status.ACTIVE_ONLY,
        first_seen=now,
        last_seen=now,
        tls=profile.summary(),
    )
    rows = {r.suite: r for r in ciphers_view([svc], {endpoint: profile.offered_suites()})}
    assert set(rows) == {iana(n) for n in TLS12_SUITES}
    assert rows["TLS_RSA_WITH_AES_256_CBC_SHA"].grade == "weak"
    assert rows["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"].protocols == ("TLSv1.2",)


# -- scripted servers: what OpenSSL 3 cannot serve ------------------------------------------


def fake(config: FakeTls, seen: list | None = None) -> Callable:  # type: ignore[type-arg]
    return answering(config.respond, seen)


def test_sslv3_and_legacy_suites_openssl_3_lacks() -> None:
    # Given a server with SSLv3 and TLS 1.0 only, RC4 and 3DES among its suites
    config = FakeTls(
        versions={
            Version.SSL3: [code("RC4-SHA"), code("DES-CBC3-SHA")],
            Version.TLS10: [code("ECDHE-RSA-DES-CBC3-SHA"), code("RC4-MD5"), code("AES128-SHA")],
        },
        ecdhe={code("ECDHE-RSA-DES-CBC3-SHA")},
        groups=[23, 24],
    )
    profile = scan(fake(config))
    assert profile.versions == ("SSLv3", "TLSv1.0")
    assert names(profile, "SSLv3") == ["TLS_RSA_WITH_RC4_128_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"]
    assert names(profile, "TLSv1.0") == [
        "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        "TLS_RSA_WITH_RC4_128_MD5",
        "TLS_RSA_WITH_AES_128_CBC_SHA",
    ]
    # TLS 1.1 and 1.2 hellos got TLS 1.0 answers: refused, and said so
    assert version(profile, "TLSv1.2").outcome == "answered with TLSv1.0"
    # Curves come from TLS 1.0's key exchange since TLS 1.2 is refused
    assert profile.groups_tls12 == ("secp256r1", "secp384r1")
    assert profile.grade is Grade.INSECURE
    assert all(s.grade is Grade.INSECURE for s in version(profile, "SSLv3").suites)
    assert not any(v.compliant for v in profile.mozilla)


def test_sslv2_server_hello_lists_its_specs_and_certificate() -> None:
    leaf = trustme.CA().issue_cert("old.example.com")
    pem = leaf.cert_chain_pems[0].bytes()
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    config = FakeTls(versions={}, ssl2_specs=[0x0700C0, 0x010080], cert=der)
    profile = scan(fake(config))
    assert profile.versions == ("SSLv2",)
    assert names(profile, "SSLv2") == [
        "SSL_CK_RC4_128_WITH_MD5",
        "SSL_CK_DES_192_EDE3_CBC_WITH_MD5",
    ]
    assert [s.openssl_name for s in version(profile, "SSLv2").suites] == ["RC4-MD5", "DES-CBC3-MD5"]
    assert profile.cert is not None and "old.example.com" in profile.cert.sans
    assert profile.grade is Grade.INSECURE


def test_a_server_that_chokes_on_long_lists_is_enumerated_in_chunks() -> None:
    wanted = [code("ECDHE-RSA-AES256-GCM-SHA384"), code("AES128-SHA"), 0xC0B0]
    config = FakeTls(versions={Version.TLS12: wanted}, max_suites=80, ecdhe={wanted[0]})
    profile = scan(fake(config))
    result = version(profile, "TLSv1.2")
    assert [s.code for s in result.suites] == ["0xC030", "0x002F", "0xC0B0"]  # server order
    assert result.server_preference is True
    assert any("chunked" in note for note in result.notes)


def test_client_order_on_a_scripted_server_and_tls13_hello_retry() -> None:
    seen: list = []  # type: ignore[type-arg]
    config = FakeTls(
        versions={Version.TLS13: [0x1302, 0x1301], Version.TLS12: [0xC02F, 0x009C]},
        server_order=False,
        groups=[4588, 24, 29],  # prefers groups we send no key for: HelloRetryRequest
        ecdhe={0xC02F},
    )
    profile = scan(fake(config, seen), sni="www.example.com")
    assert version(profile, "TLSv1.3").server_preference is False
    assert version(profile, "TLSv1.2").server_preference is False
    assert profile.groups == ("X25519MLKEM768", "secp384r1", "x25519")
    assert profile.groups_tls12 == ("secp384r1", "x25519")
    # every hello that can carry SNI (not SSLv2, not SSLv3) names the server
    assert {h.sni for h in seen if not h.ssl2 and h.version >= 0x0301} == {"www.example.com"}


def test_the_handshake_budget_bounds_the_scan() -> None:
    config = FakeTls(versions={Version.TLS12: [0xC02F, 0xC030, 0x009C]}, ecdhe={0xC02F, 0xC030})
    profile = scan(fake(config), max_handshakes=4, versions=[Version.TLS12])
    assert profile.handshakes <= 4 + 1  # plus the system OpenSSL's handshake
    assert profile.outcome == "partial"


def test_ipv6_loopback() -> None:
    ctx = openssl_server(server_order=True)

    async def go() -> TlsProfile | None:
        try:
            server = await asyncio.start_server(_idle, "::1", 0, ssl=ctx)
        except OSError:  # no IPv6 on this machine's loopback
            return None
        async with server:
            port = server.sockets[0].getsockname()[1]
            return await enumerate_tls("::1", port, timeout=3)

    profile = run(go(), limit=60)
    if profile is None:
        pytest.skip("::1 is not available")
    assert profile.ip == "::1"
    assert names(profile, "TLSv1.2") == [iana(n) for n in TLS12_SUITES]
