"""Folding probe results into a TlsProfile: outcomes, names, grades, verdicts (no network)."""

from __future__ import annotations

import pytest

from core.risk.grading import Grade
from core.verify.tls import suites
from core.verify.tls.assemble import build_profile, negotiated, outcome, suite_result
from core.verify.tls.handshake import StdlibHandshake, Target
from core.verify.tls.model import ProbeStatus, VersionResult


def result(version: str, status: ProbeStatus, outcome_text: str, *codes: int) -> VersionResult:
    return VersionResult(
        version=version,
        status=status,
        outcome=outcome_text,
        suites=tuple(suite_result(suites.registry()[c], version) for c in codes),
    )


@pytest.mark.parametrize(
    ("outcomes", "budget_hit", "expected"),
    [
        ([(ProbeStatus.ACCEPTED, "server-hello")], False, "ok"),
        ([(ProbeStatus.ACCEPTED, "server-hello")], True, "partial"),
        ([(ProbeStatus.ERROR, "refused: connection refused")] * 2, False, "unreachable"),
        ([(ProbeStatus.ERROR, "starttls-failed: EHLO: expected 250")], False, "starttls-failed"),
        ([(ProbeStatus.REJECTED, "alert handshake_failure")], False, "no-tls"),
        ([(ProbeStatus.SKIPPED, "not sent: handshake budget exhausted")], True, "partial"),
    ],
)
def test_outcome(outcomes: list[tuple[ProbeStatus, str]], budget_hit: bool, expected: str) -> None:
    results = [result("TLSv1.2", status, text) for status, text in outcomes]
    assert outcome(results, budget_hit) == expected


def test_negotiated_names_come_from_the_registry() -> None:
    assert negotiated(StdlibHandshake("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", None)) == (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    )
    assert negotiated(StdlibHandshake("TLSv1.2", "DES-CBC3-SHA", None)) == (
        "TLS_RSA_WITH_3DES_EDE_CBC_SHA"  # OpenSSL 3 dropped it; the registry still names it
    )
    assert negotiated(StdlibHandshake(None, None, None, "refused")) is None


def test_build_profile_grades_and_judges() -> None:
    results = [
        result("SSLv3", ProbeStatus.REJECTED, "alert handshake_failure"),
        result("TLSv1.2", ProbeStatus.ACCEPTED, "server-hello", 0xC02F, 0x000A),
        result("TLSv1.3", ProbeStatus.ACCEPTED, "server-hello", 0x1301),
    ]
    profile = build_profile(
        Target("192.0.2.7", 443, sni="www.example.com"),
        results,
        groups13=[29],
        groups_ec=[29, 23],
        dhe_bits=None,
        stdlib=StdlibHandshake("TLSv1.3", "TLS_AES_128_GCM_SHA256", b"not a certificate"),
        cert=None,
        anomalies=["x", "x"],
        handshakes=9,
        budget_hit=False,
        elapsed=0.123456,
    )
    assert profile.versions == ("TLSv1.2", "TLSv1.3")
    assert profile.groups == ("x25519",) and profile.groups_tls12 == ("x25519", "secp256r1")
    assert profile.cert is None
    assert profile.grade is Grade.INSECURE  # 3DES
    assert profile.grade_reasons == (
        "accepts TLS_RSA_WITH_3DES_EDE_CBC_SHA (insecure: 64-bit block cipher (Sweet32); "
        "no forward secrecy (RSA key exchange); no AEAD (CBC or stream mode))",
    )
    assert profile.anomalies == ("x",)
    assert profile.negotiated == "TLS_AES_128_GCM_SHA256"
    assert profile.elapsed == 0.1235
    assert [s.name for s in profile.offered_suites()] == [
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        "TLS_AES_128_GCM_SHA256",
    ]
    summary = profile.summary()
    assert summary.versions == ("TLSv1.2", "TLSv1.3") and summary.cipher == profile.negotiated
    intermediate = next(v for v in profile.mozilla if v.profile == "intermediate")
    assert intermediate.reasons == (
        "accepts TLS_RSA_WITH_3DES_EDE_CBC_SHA, outside the profile",
        "certificate key unknown",
    )
