"""Our own ClientHellos, as raw bytes: SSL 2.0, SSL 3.0 and TLS 1.0 to 1.3.

The system OpenSSL cannot speak SSL 2/3 (nor, at its default security level, TLS 1.0/1.1)
and Python's ssl module cannot offer a single TLS 1.3 suite, so enumeration builds its
hellos itself: any suite list, any group list, one version at a time. No handshake is
ever completed: a hello only has to be valid enough for the server to answer it.
For TLS 1.3 the key_share carries real public keys (made with `cryptography`) for the
groups we can make them for; for any other group the share is left out and the server's
HelloRetryRequest names the group it wants, which is all enumeration needs to know.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache

from core.verify.tls.records import ContentType, Ext, Version

# Signature schemes (RFC 8446 4.2.3) a permissive client accepts: modern first, then the
# SHA-1/SHA-224 and DSA ones old servers still sign with.
SIGNATURE_ALGORITHMS = (
    0x0403, 0x0503, 0x0603,  # ecdsa_secp256r1_sha256, secp384r1_sha384, secp521r1_sha512
    0x0807, 0x0808,  # ed25519, ed448
    0x0804, 0x0805, 0x0806,  # rsa_pss_rsae_sha256/384/512
    0x0809, 0x080A, 0x080B,  # rsa_pss_pss_sha256/384/512
    0x081A, 0x081B, 0x081C,  # ecdsa_brainpool*tls13
    0x0401, 0x0501, 0x0601,  # rsa_pkcs1_sha256/384/512
    0x0303, 0x0301, 0x0302,  # ecdsa/rsa/dsa with SHA-224
    0x0402, 0x0502, 0x0602,  # dsa with SHA-256/384/512
    0x0203, 0x0201, 0x0202,  # ecdsa_sha1, rsa_pkcs1_sha1, dsa_sha1
)  # fmt: skip

RENEGOTIATION_SCSV = 0x00FF


def _u8(n: int) -> bytes:
    return n.to_bytes(1, "big")


def _u16(n: int) -> bytes:
    return n.to_bytes(2, "big")


def _u24(n: int) -> bytes:
    return n.to_bytes(3, "big")


def _vec8(data: bytes) -> bytes:
    return _u8(len(data)) + data


def _vec16(data: bytes) -> bytes:
    return _u16(len(data)) + data


def _ext(kind: int, data: bytes) -> bytes:
    return _u16(kind) + _vec16(data)


def _sni(host: str) -> bytes:
    name = host.encode("idna")
    return _ext(Ext.SERVER_NAME, _vec16(b"\x00" + _vec16(name)))


@cache
def key_share(group: int) -> bytes | None:
    """A real public key for a TLS 1.3 key_share of `group`; None when we make none.

    One key per group per process: the handshake is never completed, so the private
    half is never used.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, x448, x25519

    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    point = serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    if group == 29:
        return x25519.X25519PrivateKey.generate().public_key().public_bytes(*raw)
    if group == 30:
        return x448.X448PrivateKey.generate().public_key().public_bytes(*raw)
    curves: dict[int, ec.EllipticCurve] = {
        23: ec.SECP256R1(),
        24: ec.SECP384R1(),
        25: ec.SECP521R1(),
    }
    if group in curves:
        return ec.generate_private_key(curves[group]).public_key().public_bytes(*point)
    return None


def _extensions(blocks: Sequence[bytes], header_len: int) -> bytes:
    """The extensions block, padded (RFC 7685) out of the 256-511 byte hello size some
    middleboxes and old F5 servers hang on."""
    body = b"".join(blocks)
    size = header_len + 2 + len(body)
    if 256 <= size < 512:
        pad = max(512 - size - 4, 1)
        body += _ext(Ext.PADDING, bytes(pad))
    return _vec16(body)


def tls_client_hello(
    version: int,
    suites: Sequence[int],
    *,
    sni: str | None = None,
    groups: Sequence[int] = (),
    key_share_groups: Sequence[int] = (),
    scsv: bool = True,
) -> bytes:
    """One ClientHello record offering exactly `suites` for exactly `version`.

    SSL 3.0 hellos carry no extensions (SSL 3.0 servers may reject them). TLS 1.3 is
    offered only through supported_versions, with legacy_version 1.2 (RFC 8446 4.1.2).
    `key_share_groups` are the groups (TLS 1.3) we send public keys for, where we can.
    """
    tls13 = version == Version.TLS13
    codes = list(suites)
    if scsv and not tls13 and RENEGOTIATION_SCSV not in codes:
        codes.append(RENEGOTIATION_SCSV)  # some servers refuse a hello without it
    head = (
        _u16(Version.TLS12 if tls13 else version)
        + os.urandom(32)
        + _vec8(os.urandom(32) if tls13 else b"")  # a session id: middlebox compatibility
        + _vec16(b"".join(_u16(code) for code in codes))
        + _vec8(b"\x00")  # null compression only
    )
    blocks: list[bytes] = []
    if version >= Version.TLS10:
        if sni:
            blocks.append(_sni(sni))
        if groups:
            blocks.append(_ext(Ext.SUPPORTED_GROUPS, _vec16(b"".join(_u16(g) for g in groups))))
        if not tls13:
            blocks.append(_ext(Ext.EC_POINT_FORMATS, _vec8(b"\x00")))  # uncompressed
        if version >= Version.TLS12:
            schemes = b"".join(_u16(s) for s in SIGNATURE_ALGORITHMS)
            blocks.append(_ext(Ext.SIGNATURE_ALGORITHMS, _vec16(schemes)))
        if tls13:
            blocks.append(_ext(Ext.SUPPORTED_VERSIONS, _vec8(_u16(Version.TLS13))))
            blocks.append(_ext(Ext.PSK_KEY_EXCHANGE_MODES, _vec8(b"\x01")))  # psk_dhe_ke
            shares = b""
            for group in key_share_groups:
                public = key_share(group)
                if public is not None:
                    shares += _u16(group) + _vec16(public)
            blocks.append(_ext(Ext.KEY_SHARE, _vec16(shares)))
        else:
            blocks.append(_ext(Ext.RENEGOTIATION_INFO, b"\x00"))
    body = head + (_extensions(blocks, 4 + len(head)) if blocks else b"")
    message = _u8(1) + _u24(len(body)) + body  # handshake type 1: client_hello
    # Record version 1.0 for every TLS hello: the most widely tolerated (RFC 8446 5.1).
    record_version = Version.SSL3 if version == Version.SSL3 else Version.TLS10
    return _u8(ContentType.HANDSHAKE) + _u16(record_version) + _vec16(message)


def ssl2_client_hello(specs: Sequence[int]) -> bytes:
    """An SSL 2.0 CLIENT-HELLO offering `specs` (3-byte cipher specs)."""
    challenge = os.urandom(16)
    cipher_specs = b"".join(spec.to_bytes(3, "big") for spec in specs)
    body = (
        _u8(1)  # MSG-CLIENT-HELLO
        + _u16(Version.SSL2)
        + _u16(len(cipher_specs))
        + _u16(0)  # no session id
        + _u16(len(challenge))
        + cipher_specs
        + challenge
    )
    return _u16(0x8000 | len(body)) + body
