"""The system OpenSSL as a TLS client that accepts anything, and its suite names in IANA's.

Shared by TLS detection (core.verify.tlsinfo) and TLS enumeration (core.verify.tls), which
must stay light to import: standard library only.
"""

from __future__ import annotations

import re
import ssl
import warnings
from functools import cache


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
