"""TLS detection on any port, and the certificate and handshake summaries it yields.

Detection is one handshake with verification off (we want to see whatever the server
presents, valid or not) run over our own socket with `ssl.SSLObject` and memory BIOs, so
every raw read is ours: capped in bytes, bounded in time by the caller's deadline, and
visible (a server that answers with a TLS-looking record and then hangs is reported as
such). The certificate summary is plain `cryptography` parsing of DER bytes, independent
of how they were obtained, so TLS enumeration (issue 4) can reuse it with its own
handshakes.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import warnings
from datetime import datetime
from functools import cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from core.models import CertSummary, TlsSummary, utcnow

RAW_CAP = 256 * 1024
"""Most raw bytes one TLS connection may read: certificate chains are a few KiB."""

_CHUNK = 16 * 1024 + 512  # one TLS record with its header


@cache
def detection_context() -> ssl.SSLContext:
    """A client context that accepts anything: old protocols, weak suites, any certificate.

    Detection must succeed wherever a TLS server is, so verification is off and the
    security level is 0 (OpenSSL 3 otherwise refuses TLS 1.0/1.1 servers).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():  # deprecated for connecting; we only want to detect
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):  # a build without legacy support: keep its defaults
        pass
    return ctx


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


def summarize_certificate(der: bytes) -> CertSummary | None:
    """Subject, issuer, SANs, validity, key and fingerprint of a DER certificate.

    None when the bytes do not parse: a hostile server's certificate is input like any other.
    """
    try:
        cert = x509.load_der_x509_certificate(der)
        subject = cert.subject.rfc4514_string()
        issuer = cert.issuer.rfc4514_string()
        not_before = cert.not_valid_before_utc
        not_after = cert.not_valid_after_utc
    except ValueError:
        return None
    key_type, key_bits = _key(cert)
    return CertSummary(
        subject=subject or None,
        issuer=issuer or None,
        sans=_sans(cert),
        not_before=not_before,
        not_after=not_after,
        key_type=key_type,
        key_bits=key_bits,
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
        self_signed=_self_signed(cert),
    )


def cert_expired(cert: CertSummary, now: datetime | None = None) -> bool | None:
    """Whether the certificate is outside its validity window now (None: dates unknown)."""
    if cert.not_after is None or cert.not_before is None:
        return None
    now = now or utcnow()
    return not cert.not_before <= now <= cert.not_after


def _sans(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return ()
    names: list[str] = list(ext.get_values_for_type(x509.DNSName))
    names += [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]
    return tuple(names)


def _key(cert: x509.Certificate) -> tuple[str | None, int | None]:
    try:
        key = cert.public_key()
    except (ValueError, TypeError):  # unsupported or malformed key
        return None, None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    return type(key).__name__, None


def _self_signed(cert: x509.Certificate) -> bool:
    """Issued by itself: same name and the signature verifies under its own key."""
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (InvalidSignature, ValueError, TypeError):  # bad signature, unsupported algorithm
        return False
    return True


# OpenSSL names TLS 1.2-and-older suites its own way (ECDHE-RSA-AES128-GCM-SHA256); reports
# use IANA names (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256). TLS 1.3 names are already IANA.
_OPENSSL_SUITE = re.compile(
    r"^(?:(?P<kx>ECDHE|DHE|EDH|ECDH|DH|PSK|RSA-PSK|DHE-PSK|ECDHE-PSK|SRP)-)?"
    r"(?:(?P<auth>RSA|ECDSA|DSS|ANON)-)?"
    r"(?P<cipher>AES(?:128|256)(?:-GCM|-CCM8?)?|CHACHA20-POLY1305|DES-CBC3|RC4|"
    r"CAMELLIA(?:128|256)|ARIA(?:128|256)-GCM|SEED|NULL)"
    r"(?:-(?P<mac>SHA384|SHA256|SHA|MD5))?$"
)
_CIPHER_IANA = {
    "AES128": "AES_128_CBC",
    "AES256": "AES_256_CBC",
    "AES128-GCM": "AES_128_GCM",
    "AES256-GCM": "AES_256_GCM",
    "AES128-CCM": "AES_128_CCM",
    "AES256-CCM": "AES_256_CCM",
    "AES128-CCM8": "AES_128_CCM_8",
    "AES256-CCM8": "AES_256_CCM_8",
    "CHACHA20-POLY1305": "CHACHA20_POLY1305",
    "DES-CBC3": "3DES_EDE_CBC",
    "RC4": "RC4_128",
    "CAMELLIA128": "CAMELLIA_128_CBC",
    "CAMELLIA256": "CAMELLIA_256_CBC",
    "ARIA128-GCM": "ARIA_128_GCM",
    "ARIA256-GCM": "ARIA_256_GCM",
    "SEED": "SEED_CBC",
    "NULL": "NULL",
}


def iana_cipher_name(openssl_name: str) -> str:
    """The IANA name of a suite OpenSSL reports, or OpenSSL's name when we cannot tell."""
    if openssl_name.startswith("TLS_"):
        return openssl_name
    m = _OPENSSL_SUITE.match(openssl_name)
    if m is None:
        return openssl_name
    kx = {"EDH": "DHE", None: "RSA"}.get(m["kx"], m["kx"])
    auth = m["auth"] or ("" if kx in ("RSA", "PSK") or kx.endswith("PSK") else "RSA")
    auth = {"DSS": "DSS", "ANON": "anon"}.get(auth, auth)
    cipher = _CIPHER_IANA[m["cipher"]]
    mac = m["mac"]
    if mac is None:  # AEAD suites without an explicit PRF hash
        mac = "SHA256" if cipher.startswith(("CHACHA20", "AES_128_GCM")) else "SHA384"
        if "CCM" in cipher:
            mac = ""
    prefix = f"{kx}_{auth}" if auth and auth != kx else kx
    return f"TLS_{prefix}_WITH_{cipher}" + (f"_{mac}" if mac else "")
