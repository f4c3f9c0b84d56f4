"""Cipher suite and protocol grades, for both IANA and OpenSSL spellings."""

from __future__ import annotations

import pytest

from core.risk.grading import Grade, OfferedSuite, canonical_version, grade_cipher, grade_version


@pytest.mark.parametrize(
    ("suite", "grade"),
    [
        ("TLS_AES_128_GCM_SHA256", Grade.RECOMMENDED),
        ("TLS_CHACHA20_POLY1305_SHA256", Grade.RECOMMENDED),
        ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", Grade.RECOMMENDED),
        ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", Grade.RECOMMENDED),
        ("ECDHE-RSA-AES256-GCM-SHA384", Grade.RECOMMENDED),
        ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", Grade.SECURE),
        ("DHE-RSA-AES256-SHA256", Grade.SECURE),
        ("TLS_RSA_WITH_AES_128_GCM_SHA256", Grade.WEAK),  # no forward secrecy
        ("AES128-SHA", Grade.WEAK),  # OpenSSL: no prefix means RSA key exchange
        ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", Grade.WEAK),
        ("DES-CBC3-SHA", Grade.WEAK),
        ("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", Grade.WEAK),
        ("TLS_RSA_WITH_RC4_128_SHA", Grade.INSECURE),
        ("RC4-MD5", Grade.INSECURE),
        ("TLS_RSA_WITH_NULL_SHA256", Grade.INSECURE),
        ("NULL-SHA", Grade.INSECURE),
        ("TLS_RSA_EXPORT_WITH_DES40_CBC_SHA", Grade.INSECURE),
        ("EXP-RC4-MD5", Grade.INSECURE),
        ("TLS_DH_anon_WITH_AES_128_CBC_SHA", Grade.INSECURE),
        ("ADH-AES256-SHA", Grade.INSECURE),
        ("TLS_RSA_WITH_DES_CBC_SHA", Grade.INSECURE),
        ("DES-CBC-SHA", Grade.INSECURE),
        ("TLS_EMPTY_RENEGOTIATION_INFO_SCSV", Grade.UNKNOWN),
        ("garbage", Grade.UNKNOWN),
        ("", Grade.UNKNOWN),
    ],
)
def test_grade_cipher(suite: str, grade: Grade) -> None:
    assert grade_cipher(suite) is grade


@pytest.mark.parametrize(
    ("text", "version", "grade"),
    [
        ("SSLv2", "SSLv2", Grade.INSECURE),
        ("SSLv3", "SSLv3", Grade.INSECURE),
        ("ssl 3.0", "SSLv3", Grade.INSECURE),
        ("TLSv1", "TLSv1.0", Grade.WEAK),
        ("TLSv1.0", "TLSv1.0", Grade.WEAK),
        ("tls1_1", "TLSv1.1", Grade.WEAK),
        ("TLS 1.2", "TLSv1.2", Grade.SECURE),
        ("TLSv1.3", "TLSv1.3", Grade.RECOMMENDED),
        ("-TLSv1", None, Grade.UNKNOWN),  # Shodan's "refused" marker
        ("TLSv2.0", None, Grade.UNKNOWN),
        ("DTLSv1.2", None, Grade.UNKNOWN),
    ],
)
def test_versions(text: str, version: str | None, grade: Grade) -> None:
    assert canonical_version(text) == version
    assert grade_version(text) is grade


def test_an_enumerator_s_own_grade_wins() -> None:
    assert OfferedSuite(name="AES128-SHA").effective_grade is Grade.WEAK
    assert OfferedSuite(name="AES128-SHA", grade=Grade.SECURE).effective_grade is Grade.SECURE


def test_ranks_put_insecure_first() -> None:
    ordered = sorted(Grade, key=lambda g: g.rank)
    assert ordered[:2] == [Grade.INSECURE, Grade.WEAK]
