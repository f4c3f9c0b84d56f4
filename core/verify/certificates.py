"""A DER certificate -> `CertSummary`: subject, issuer, SANs, validity, key, fingerprint.

Plain `cryptography` parsing of bytes, however they were obtained: TLS detection and TLS
enumeration both use it. It does not import pydantic (see core.certificate).
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from core.certificate import CertSummary


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
