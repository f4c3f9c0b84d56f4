"""TLS detection and the certificate summary, with certificates minted by the tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core.models import CertSummary, TlsSummary
from core.verify.certificates import summarize_certificate
from core.verify.sslclient import iana_cipher_name
from core.verify.tlsinfo import TlsStream, cert_expired
from tests.core.verify.fp_servers import run, serve, server_context

UTC = dt.UTC


def der_of(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def test_leaf_certificate_summary() -> None:
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    leaf = ca.issue_cert(
        "www.example.com", "192.0.2.5", common_name="www.example.com", key_type=trustme.KeyType.RSA
    )
    summary = summarize_certificate(der_of(leaf.cert_chain_pems[0].bytes()))
    assert summary is not None
    assert summary.sans == ("www.example.com", "192.0.2.5")
    assert summary.subject is not None and "CN=www.example.com" in summary.subject
    assert summary.issuer is not None and "Testing CA" in summary.issuer
    assert (summary.key_type, summary.key_bits) == ("RSA", 2048)
    assert summary.self_signed is False
    assert summary.sha256 is not None and len(summary.sha256) == 64
    assert cert_expired(summary) is False


def test_a_ca_certificate_is_self_signed_with_its_ec_key() -> None:
    ca = trustme.CA()  # ECDSA by default
    summary = summarize_certificate(der_of(ca.cert_pem.bytes()))
    assert summary is not None
    assert summary.self_signed is True
    assert summary.key_type == "EC"
    assert summary.key_bits in (256, 384)
    assert summary.subject == summary.issuer


def test_expired_and_not_yet_valid() -> None:
    ca = trustme.CA()
    old = ca.issue_cert(
        "old.example.com",
        not_before=dt.datetime(2020, 1, 1, tzinfo=UTC),
        not_after=dt.datetime(2021, 1, 1, tzinfo=UTC),
    )
    summary = summarize_certificate(der_of(old.cert_chain_pems[0].bytes()))
    assert summary is not None
    assert summary.not_after == dt.datetime(2021, 1, 1, tzinfo=UTC)
    assert cert_expired(summary) is True
    assert cert_expired(summary, now=dt.datetime(2020, 6, 1, tzinfo=UTC)) is False
    assert cert_expired(summary, now=dt.datetime(2019, 6, 1, tzinfo=UTC)) is True
    assert cert_expired(CertSummary()) is None


def test_garbage_certificate_bytes_are_no_summary() -> None:
    assert summarize_certificate(b"\x30\x82\x01\x00not a certificate") is None
    assert summarize_certificate(b"") is None


@pytest.mark.parametrize(
    ("openssl", "iana"),
    [
        ("ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        ("ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
        ("ECDHE-RSA-CHACHA20-POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
        ("DHE-RSA-AES256-SHA256", "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256"),
        ("ECDHE-RSA-AES128-SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
        ("AES256-GCM-SHA384", "TLS_RSA_WITH_AES_256_GCM_SHA384"),
        ("AES128-SHA", "TLS_RSA_WITH_AES_128_CBC_SHA"),
        ("DES-CBC3-SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
        ("RC4-MD5", "TLS_RSA_WITH_RC4_128_MD5"),
        ("TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384"),
        ("SOMETHING-NEW", "SOMETHING-NEW"),  # unknown: OpenSSL's name, never a made-up one
    ],
)
def test_iana_cipher_names(openssl: str, iana: str) -> None:
    assert iana_cipher_name(openssl) == iana


async def handshake(port: int, sni: str | None) -> tuple[TlsSummary, bytes]:
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        stream = TlsStream(sock, sni)
        async with asyncio.timeout(5):
            await stream.handshake()
            await stream.send(b"ping\n")
            answer = await stream.recv(100)
        assert stream.looks_like_tls
        return stream.summary(), answer
    finally:
        sock.close()


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(await reader.readline())
    await writer.drain()


def test_tls12_server_summary_names_the_suite_by_iana() -> None:
    ctx = server_context(trustme.CA(), "tls12.example.com")
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384")

    async def main() -> tuple[TlsSummary, bytes]:
        async with serve(echo, tls=ctx) as port:
            return await handshake(port, "tls12.example.com")

    summary, answer = run(main())
    assert answer == b"ping\n"
    assert summary.versions == ("TLSv1.2",)
    assert summary.cipher == "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
    assert summary.cert is not None and summary.cert.sans == ("tls12.example.com",)


def test_a_plain_server_is_not_tls() -> None:
    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"220 hello\r\n")
        await writer.drain()

    async def main() -> None:
        async with serve(plain) as port:
            await handshake(port, None)

    with pytest.raises(ssl.SSLError):
        run(main())
