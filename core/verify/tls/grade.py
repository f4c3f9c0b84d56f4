"""Grades for enumerated suites and endpoints, and verdicts against Mozilla's profiles.

The scale is `core.risk.grading.Grade`, and every suite's grade is never better than the
name-based `grade_cipher` gives it (one grading across the product). Enumeration knows each
suite's components (data/suites.csv), so it adds the issue's stricter rules on top:

    insecure     no encryption or authentication (NULL, anonymous), EXPORT, RC4, RC2, DES,
                 64-bit block ciphers (3DES, IDEA, GOST 28147/Magma), MD5 MACs
    weak         no forward secrecy (static RSA/DH/ECDH, PSK, SRP, KRB5) or no AEAD (CBC)
    secure       forward secret AEAD with a truncated 8-byte tag (CCM_8)
    recommended  forward secret AEAD (GCM, CCM, ChaCha20-Poly1305, every full TLS 1.3 suite)

Name-based grading alone calls forward-secret CBC "secure" and 3DES "weak": for suites
seen on the wire the component rules win because they are the stricter of the two.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

from core.certificate import CertSummary
from core.risk.grading import Grade, grade_cipher, grade_version
from core.verify.tls.suites import DATA_DIR, SSLV2, Suite

_BROKEN_CIPHERS = ("RC4", "RC2", "DES40", "DES_CBC", "28147", "MAGMA")
_SMALL_BLOCK = ("3DES", "IDEA", "28147", "MAGMA")


def suite_grade(suite: Suite) -> tuple[Grade, tuple[str, ...]]:
    """The grade of one suite and the reasons it is not `recommended`."""
    insecure: list[str] = []
    weak: list[str] = []
    if suite.protocol == SSLV2:
        insecure.append("SSLv2 cipher spec")
    if suite.export:
        insecure.append("export-grade (deliberately weakened)")
    if suite.cipher == "NULL" or suite.kx == "NULL":
        insecure.append("no encryption")
    if suite.auth in ("anon", "NULL"):
        insecure.append("anonymous: the server is not authenticated")
    if any(token in suite.cipher for token in _SMALL_BLOCK):
        insecure.append("64-bit block cipher (Sweet32)")
    elif any(token in suite.cipher for token in _BROKEN_CIPHERS):
        insecure.append(f"broken cipher {suite.cipher}")
    if suite.mac == "MD5":
        insecure.append("MD5 MAC")
    if not suite.forward_secret:
        weak.append(f"no forward secrecy ({suite.kx or 'unknown'} key exchange)")
    if not suite.aead and suite.cipher != "NULL":
        weak.append("no AEAD (CBC or stream mode)" if "CBC" in suite.cipher else "no AEAD")
    if insecure:
        grade, reasons = Grade.INSECURE, insecure + weak
    elif weak:
        grade, reasons = Grade.WEAK, weak
    elif suite.cipher.endswith("CCM_8"):
        grade, reasons = Grade.SECURE, ["truncated 8-byte authentication tag"]
    else:
        grade, reasons = Grade.RECOMMENDED, []
    by_name = grade_cipher(suite.name)
    if by_name is not Grade.UNKNOWN and by_name.rank < grade.rank:
        grade = by_name
        reasons.append(f"{by_name} by the name-based grading (core.risk.grading)")
    return grade, tuple(reasons)


@dataclass(frozen=True, slots=True)
class Graded:
    """Something an endpoint accepts (a version or a suite), with its grade."""

    label: str
    grade: Grade
    reasons: tuple[str, ...] = ()


def endpoint_grade(items: Iterable[Graded]) -> tuple[Grade, tuple[str, ...]]:
    """The worst grade among what the endpoint accepts, and what earns it."""
    items = list(items)
    known = [item for item in items if item.grade is not Grade.UNKNOWN]
    if not known:
        return Grade.UNKNOWN, ()
    worst = min(item.grade.rank for item in known)
    grade = next(item.grade for item in known if item.grade.rank == worst)
    reasons = []
    for item in known:
        if item.grade is grade and grade is not Grade.RECOMMENDED:
            why = f": {'; '.join(item.reasons)}" if item.reasons else ""
            reasons.append(f"accepts {item.label} ({grade}{why})")
    return grade, tuple(dict.fromkeys(reasons))


def version_graded(version: str) -> Graded:
    grade = grade_version(version)
    reason = {
        Grade.INSECURE: ("broken protocol",),
        Grade.WEAK: ("deprecated by RFC 8996",),
    }.get(grade, ())
    return Graded(version, grade, reason)


# -- Mozilla profiles ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    guidelines: str
    versions: frozenset[str]
    suites: frozenset[str]
    groups: frozenset[str]
    certificate_types: frozenset[str]
    certificate_curves: frozenset[int]
    rsa_key_bits: int
    dh_param_bits: int
    server_preference: bool


@cache
def mozilla_profiles() -> tuple[Profile, ...]:
    """The profiles in data/mozilla.toml (modern first)."""
    text = (DATA_DIR / "mozilla.toml").read_text("utf-8")
    data = tomllib.loads(text)
    return tuple(
        Profile(
            name=name,
            guidelines=str(data["guidelines"]),
            versions=frozenset(spec["versions"]),
            suites=frozenset(spec["suites"]),
            groups=frozenset(spec["groups"]),
            certificate_types=frozenset(spec["certificate_types"]),
            certificate_curves=frozenset(spec["certificate_curves"]),
            rsa_key_bits=int(spec["rsa_key_bits"]),
            dh_param_bits=int(spec["dh_param_bits"]),
            server_preference=bool(spec["server_preference"]),
        )
        for name, spec in data["profiles"].items()
    )


@dataclass(frozen=True, slots=True)
class Observed:
    """What a verdict is judged on: the facts enumeration established."""

    versions: Sequence[str]
    suites: Sequence[str]  # IANA names, every version
    groups: Sequence[str]  # TLS 1.3 and TLS 1.2 groups together
    cert: CertSummary | None
    dhe_bits: int | None
    server_preference: bool | None


def mozilla_verdict(profile: Profile, seen: Observed) -> tuple[bool, list[str], list[str]]:
    """(compliant, reasons it is not, notes) for one profile."""
    reasons: list[str] = []
    notes: list[str] = []
    if not seen.versions:
        return False, ["no TLS version accepted"], notes
    reasons += [f"accepts {v}, outside the profile" for v in seen.versions
                if v not in profile.versions]  # fmt: skip
    reasons += [
        f"accepts {name}, outside the profile"
        for name in dict.fromkeys(seen.suites)
        if name not in profile.suites
    ]
    reasons += [
        f"accepts group {name}, outside the profile"
        for name in dict.fromkeys(seen.groups)
        if name not in profile.groups
    ]
    if seen.dhe_bits is not None:
        if profile.dh_param_bits == 0:
            reasons.append("accepts finite-field DHE, outside the profile")
        elif seen.dhe_bits < profile.dh_param_bits:
            reasons.append(f"DHE prime of {seen.dhe_bits} bits, below {profile.dh_param_bits}")
    reasons += _certificate_reasons(profile, seen.cert)
    if seen.server_preference and not profile.server_preference:
        notes.append("the server imposes its cipher order; the profile leaves it to clients")
    return not reasons, reasons, notes


def _certificate_reasons(profile: Profile, cert: CertSummary | None) -> list[str]:
    if cert is None or cert.key_type is None:
        return ["certificate key unknown"]
    if cert.key_type not in profile.certificate_types:
        allowed = " or ".join(sorted(profile.certificate_types))
        return [f"{cert.key_type} certificate, the profile wants {allowed}"]
    if cert.key_type == "RSA" and (cert.key_bits or 0) < profile.rsa_key_bits:
        return [f"RSA key of {cert.key_bits} bits, below {profile.rsa_key_bits}"]
    if cert.key_type == "EC" and cert.key_bits not in profile.certificate_curves:
        return [f"EC key on a {cert.key_bits}-bit curve, outside P-256/P-384"]
    return []
