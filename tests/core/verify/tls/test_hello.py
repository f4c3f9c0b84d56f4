"""Our ClientHellos, read back by the tests' own parser (tests/core/verify/tls/servers.py)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from core.verify.tls.hello import (
    RENEGOTIATION_SCSV,
    key_share,
    ssl2_client_hello,
    tls_client_hello,
)
from core.verify.tls.records import Version
from tests.core.verify.tls.servers import parse_client_hello

SNI, GROUPS, SIG_ALGS, EC_FORMATS, PADDING, VERSIONS, KEY_SHARE, RENEGO = (
    0x0000, 0x000A, 0x000D, 0x000B, 0x0015, 0x002B, 0x0033, 0xFF01
)  # fmt: skip


def test_tls12_hello_offers_exactly_what_it_is_told() -> None:
    raw = tls_client_hello(Version.TLS12, [0xC02F, 0x002F], sni="www.example.com", groups=[29, 23])
    hello = parse_client_hello(raw)
    assert hello.record_version == 0x0301  # the most tolerated record version
    assert hello.version == 0x0303
    assert hello.suites == [0xC02F, 0x002F, RENEGOTIATION_SCSV]
    assert hello.sni == "www.example.com"
    assert hello.groups == [29, 23]
    assert {SNI, GROUPS, SIG_ALGS, EC_FORMATS, RENEGO} <= set(hello.extensions)
    assert VERSIONS not in hello.extensions and KEY_SHARE not in hello.extensions


def test_tls13_hello_carries_real_key_shares() -> None:
    raw = tls_client_hello(
        Version.TLS13, [0x1301, 0x1303], groups=[29, 23, 24], key_share_groups=[29, 23]
    )
    hello = parse_client_hello(raw)
    assert hello.version == 0x0303  # legacy_version, RFC 8446 4.1.2
    assert hello.supported_versions == [0x0304]
    assert hello.suites == [0x1301, 0x1303]  # no SCSV in TLS 1.3
    shares = hello.key_shares
    assert list(shares) == [29, 23]
    assert len(shares[29]) == 32
    # The P-256 share is a point on the curve, not 65 random bytes.
    point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), shares[23])
    assert point.curve.name == "secp256r1"
    assert RENEGO not in hello.extensions and EC_FORMATS not in hello.extensions


def test_groups_without_a_key_are_left_to_hello_retry() -> None:
    raw = tls_client_hello(
        Version.TLS13, [0x1301], groups=[256, 4588], key_share_groups=[256, 4588]
    )
    hello = parse_client_hello(raw)
    assert hello.groups == [256, 4588]
    assert hello.key_shares == {}
    assert key_share(256) is None
    assert len(key_share(24) or b"") == 97 and len(key_share(30) or b"") == 56


def test_ssl3_hello_has_no_extensions() -> None:
    hello = parse_client_hello(tls_client_hello(Version.SSL3, [0x0005, 0x000A], groups=[23]))
    assert (hello.record_version, hello.version) == (0x0300, 0x0300)
    assert hello.suites == [0x0005, 0x000A, RENEGOTIATION_SCSV]
    assert hello.extensions == {}


def test_tls10_hello_skips_signature_algorithms() -> None:
    hello = parse_client_hello(tls_client_hello(Version.TLS10, [0x002F], groups=[23]))
    assert hello.version == 0x0301
    assert SIG_ALGS not in hello.extensions and GROUPS in hello.extensions


def test_hellos_between_256_and_511_bytes_are_padded_past_them() -> None:
    sizes = []
    for count in range(1, 200, 7):
        raw = tls_client_hello(Version.TLS12, list(range(0xC001, 0xC001 + count)), groups=[29])
        message_size = len(raw) - 5
        sizes.append(message_size)
        assert not 256 <= message_size < 512, message_size
        if PADDING in parse_client_hello(raw).extensions:
            assert message_size >= 512
    assert min(sizes) < 256 < 512 <= max(sizes)  # the loop crossed the window


def test_ssl2_hello() -> None:
    hello = parse_client_hello(ssl2_client_hello([0x010080, 0x0700C0]))
    assert hello.ssl2
    assert hello.version == 0x0002
    assert hello.suites == [0x010080, 0x0700C0]
