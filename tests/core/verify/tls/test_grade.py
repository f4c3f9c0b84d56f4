"""Suite and endpoint grades, and the Mozilla profile verdicts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.models import CertSummary
from core.risk.grading import Grade, grade_cipher
from core.verify.tls import suites
from core.verify.tls.grade import (
    Graded,
    Observed,
    endpoint_grade,
    mozilla_profiles,
    mozilla_verdict,
    suite_grade,
    version_graded,
)


@pytest.mark.parametrize(
    ("code", "grade", "why"),
    [
        (0xC02F, Grade.RECOMMENDED, ""),  # ECDHE-RSA-AES128-GCM
        (0x1301, Grade.RECOMMENDED, ""),  # TLS 1.3
        (0xCCA8, Grade.RECOMMENDED, ""),  # ECDHE ChaCha20
        (0xC0AE, Grade.SECURE, "truncated"),  # ECDHE-ECDSA CCM_8
        (0xC013, Grade.WEAK, "CBC"),  # forward secret but CBC
        (0x009C, Grade.WEAK, "forward secrecy"),  # static RSA GCM
        (0x002F, Grade.WEAK, "forward secrecy"),
        (0x000A, Grade.INSECURE, "64-bit block"),  # 3DES
        (0x0005, Grade.INSECURE, "RC4"),
        (0x0009, Grade.INSECURE, "DES_CBC"),
        (0x0003, Grade.INSECURE, "export"),
        (0x0034, Grade.INSECURE, "anonymous"),
        (0x0002, Grade.INSECURE, "no encryption"),
        (0xC0B4, Grade.INSECURE, "no encryption"),  # TLS_SHA256_SHA256, integrity only
        (0x010080, Grade.INSECURE, "SSLv2"),
        (0xC104, Grade.INSECURE, "64-bit block"),  # GOST Magma MGM
        (0xC0B0, Grade.WEAK, "name-based"),  # ECCPWD: the name grader sees no ECDHE
    ],
)
def test_suite_grades(code: int, grade: Grade, why: str) -> None:
    got, reasons = suite_grade(suites.registry()[code])
    assert got is grade
    assert why in " ".join(reasons)
    assert (grade is Grade.RECOMMENDED) == (reasons == ())


def test_never_better_than_the_name_based_grade() -> None:
    for suite in suites.registry().values():
        ours, _ = suite_grade(suite)
        by_name = grade_cipher(suite.name)
        if by_name is not Grade.UNKNOWN:
            assert ours.rank <= by_name.rank, suite.name


def test_endpoint_grade_is_the_worst_and_says_why() -> None:
    grade, reasons = endpoint_grade(
        [
            version_graded("TLSv1.2"),
            Graded("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", Grade.RECOMMENDED),
            Graded("TLS_RSA_WITH_AES_128_CBC_SHA", Grade.WEAK, ("no forward secrecy",)),
            version_graded("TLSv1.0"),
        ]
    )
    assert grade is Grade.WEAK
    assert reasons == (
        "accepts TLS_RSA_WITH_AES_128_CBC_SHA (weak: no forward secrecy)",
        "accepts TLSv1.0 (weak: deprecated by RFC 8996)",
    )
    assert endpoint_grade([]) == (Grade.UNKNOWN, ())
    assert endpoint_grade([version_graded("SSLv3")])[0] is Grade.INSECURE


def _cert(key_type: str, bits: int) -> CertSummary:
    return CertSummary(
        subject="CN=a.example.com",
        key_type=key_type,
        key_bits=bits,
        not_before=datetime(2024, 1, 1, tzinfo=UTC),
        not_after=datetime(2030, 1, 1, tzinfo=UTC),
    )


def _profile(name: str):  # type: ignore[no-untyped-def]
    return next(p for p in mozilla_profiles() if p.name == name)


def test_profiles_are_loaded_with_their_guidelines_version() -> None:
    assert [p.name for p in mozilla_profiles()] == ["modern", "intermediate"]
    assert {p.guidelines for p in mozilla_profiles()} == {"5.7"}
    assert "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256" in _profile("intermediate").suites


def test_a_modern_server_meets_both_profiles() -> None:
    seen = Observed(
        versions=["TLSv1.3"],
        suites=["TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"],
        groups=["x25519", "secp256r1"],
        cert=_cert("EC", 256),
        dhe_bits=None,
        server_preference=False,
    )
    assert mozilla_verdict(_profile("modern"), seen) == (True, [], [])
    assert mozilla_verdict(_profile("intermediate"), seen)[0]


def test_verdict_reasons_name_every_deviation() -> None:
    seen = Observed(
        versions=["TLSv1.0", "TLSv1.2"],
        suites=["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA"],
        groups=["x25519", "secp521r1"],
        cert=_cert("RSA", 1024),
        dhe_bits=1024,
        server_preference=True,
    )
    ok, reasons, notes = mozilla_verdict(_profile("intermediate"), seen)
    assert not ok
    assert reasons == [
        "accepts TLSv1.0, outside the profile",
        "accepts TLS_RSA_WITH_AES_128_CBC_SHA, outside the profile",
        "accepts group secp521r1, outside the profile",
        "DHE prime of 1024 bits, below 2048",
        "RSA key of 1024 bits, below 2048",
    ]
    assert notes and "cipher order" in notes[0]
    ok, reasons, _ = mozilla_verdict(_profile("modern"), seen)
    assert "RSA certificate, the profile wants EC" in reasons
    assert "accepts finite-field DHE, outside the profile" in reasons


def test_no_tls_fails_every_profile() -> None:
    seen = Observed([], [], [], None, None, None)
    for profile in mozilla_profiles():
        assert mozilla_verdict(profile, seen) == (False, ["no TLS version accepted"], [])
