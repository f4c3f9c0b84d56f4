"""Grades for TLS protocol versions and cipher suites, from their names alone.

Providers name suites two ways: IANA (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`, Censys,
our verifier) and OpenSSL (`ECDHE-RSA-AES128-GCM-SHA256`, Shodan). Both are split into
tokens and graded on the same properties: the bulk cipher, whether the key exchange is
forward secret and authenticated, and whether the cipher is an AEAD.

    insecure     broken or no protection: NULL, EXPORT, anonymous, RC4, RC2, DES, MD5
    weak         no forward secrecy (static RSA/DH/ECDH key exchange), 3DES, IDEA
    secure       forward secret, CBC mode
    recommended  forward secret with an AEAD (GCM, CCM, ChaCha20-Poly1305); TLS 1.3
    unknown      a name we cannot parse: never penalised
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Grade(StrEnum):
    RECOMMENDED = "recommended"
    SECURE = "secure"
    WEAK = "weak"
    INSECURE = "insecure"
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        """Worse grades rank lower; unknown sorts with the best (it is never penalised)."""
        return _RANK[self]


_RANK = {
    Grade.INSECURE: 0,
    Grade.WEAK: 1,
    Grade.SECURE: 2,
    Grade.RECOMMENDED: 3,
    Grade.UNKNOWN: 4,
}

_INSECURE_TOKENS = {
    "NULL",
    "ENULL",
    "EXPORT",
    "EXP",
    "EXPORT40",
    "EXPORT1024",
    "ANON",
    "ADH",
    "AECDH",
    "RC4",
    "RC2",
    "MD5",
}
_FORWARD_SECRET = {"ECDHE", "DHE", "EDH"}
_STATIC_KEX = {"RSA", "DH", "ECDH", "PSK", "SRP", "KRB5"}
_AEAD = {"GCM", "CCM", "CHACHA20", "POLY1305"}
_TLS13_BULK = {"AES", "CHACHA20"}


def _tokens(name: str) -> list[str]:
    return [token for token in re.split(r"[-_\s]+", name.strip().upper()) if token]


def _key_exchange(tokens: list[str]) -> list[str] | None:
    """The key-exchange tokens, [] for a TLS 1.3 suite, None when the name is not a suite."""
    if tokens[0] in ("TLS", "SSL"):
        if "WITH" in tokens:
            return tokens[1 : tokens.index("WITH")]
        # TLS 1.3 names carry no key exchange: TLS_AES_128_GCM_SHA256.
        return [] if len(tokens) > 1 and tokens[1] in _TLS13_BULK else None
    # OpenSSL names lead with the key exchange when there is one ("AES128-SHA" is RSA).
    if tokens[0] in _FORWARD_SECRET | _STATIC_KEX | _INSECURE_TOKENS:
        return [tokens[0]]
    if re.match(r"^(AES|CAMELLIA|DES|IDEA|SEED|ARIA|CHACHA20)", tokens[0]):
        return ["RSA"]
    return None


def grade_cipher(name: str) -> Grade:
    """The grade of one cipher suite, IANA or OpenSSL spelling."""
    tokens = _tokens(name)
    if not tokens:
        return Grade.UNKNOWN
    kex = _key_exchange(tokens)
    if kex is None:
        return Grade.UNKNOWN
    token_set = set(tokens)
    triple_des = "3DES" in token_set or "CBC3" in token_set or "DES3" in token_set
    if token_set & _INSECURE_TOKENS or ("DES" in token_set and not triple_des):
        return Grade.INSECURE
    if not kex:  # TLS 1.3: every suite is forward secret and AEAD
        return Grade.RECOMMENDED
    if triple_des or "IDEA" in token_set or not set(kex) & _FORWARD_SECRET:
        return Grade.WEAK
    if any(token.startswith(tuple(_AEAD)) for token in tokens):
        return Grade.RECOMMENDED
    return Grade.SECURE


_VERSION = re.compile(r"^(ssl|tls)\s*v?\s*(\d)(?:[._\s]?(\d))?$")


def canonical_version(name: str) -> str | None:
    """`TLSv1.0`, `SSLv3`, ... for any common spelling; None when it is not a version.

    Shodan prefixes versions a server refuses with "-" (`-SSLv3`): those are None too.
    """
    text = name.strip().lower()
    if text.startswith("-"):
        return None
    match = _VERSION.match(text)
    if match is None:
        return None
    family, major, minor = match.group(1), match.group(2), match.group(3) or "0"
    if family == "ssl" and major in ("2", "3"):
        return f"SSLv{major}"
    if family == "tls" and major == "1" and minor in ("0", "1", "2", "3"):
        return f"TLSv1.{minor}"
    return None


_VERSION_GRADES = {
    "SSLv2": Grade.INSECURE,
    "SSLv3": Grade.INSECURE,
    "TLSv1.0": Grade.WEAK,
    "TLSv1.1": Grade.WEAK,
    "TLSv1.2": Grade.SECURE,
    "TLSv1.3": Grade.RECOMMENDED,
}


def grade_version(name: str) -> Grade:
    """SSL 2/3 insecure, TLS 1.0/1.1 weak (deprecated by RFC 8996), 1.2 secure, 1.3 best."""
    version = canonical_version(name)
    return _VERSION_GRADES[version] if version else Grade.UNKNOWN


@dataclass(frozen=True, slots=True)
class OfferedSuite:
    """One cipher suite an endpoint accepts, as TLS enumeration will report it.

    `grade` is the enumerator's own when it has one; otherwise it is graded by name.
    A dataclass, not a model: TLS enumeration imports this module and stays free of
    pydantic (see core.certificate).
    """

    name: str
    version: str | None = None  # the protocol version it was accepted under
    grade: Grade | None = None

    @property
    def effective_grade(self) -> Grade:
        return self.grade if self.grade is not None else grade_cipher(self.name)
