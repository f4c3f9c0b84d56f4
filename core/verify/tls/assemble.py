"""Folding what the probes found into a `TlsProfile`: pure, no I/O.

Enumeration (enumerate.py) decides what to send and collects the answers; this module
turns them into the profile: each suite with its components and grade, the endpoint's
grade and its reasons, the certificate summary, the Mozilla verdicts and the overall
outcome. Kept apart so the judgement can be tested and re-run without a network.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.certificate import CertSummary
from core.verify.sslclient import iana_cipher_name
from core.verify.tls import grade, groups, suites
from core.verify.tls.handshake import StdlibHandshake, Target
from core.verify.tls.model import (
    MozillaVerdict,
    ProbeStatus,
    SuiteResult,
    TlsProfile,
    VersionResult,
)
from core.verify.tls.records import Outcome


def suite_result(suite: suites.Suite, version: str) -> SuiteResult:
    """One accepted suite with its components and grade."""
    rank, reasons = grade.suite_grade(suite)
    return SuiteResult(
        code=suite.hex,
        name=suite.name,
        openssl_name=suite.openssl,
        version=version,
        kx=suite.kx,
        auth=suite.auth,
        cipher=suite.cipher,
        mac=suite.mac,
        grade=rank,
        reasons=reasons,
    )


def negotiated(handshake: StdlibHandshake) -> str | None:
    """The IANA name of what the system OpenSSL negotiated."""
    if handshake.cipher is None:
        return None
    known = suites.by_name(handshake.cipher)
    return known.name if known else iana_cipher_name(handshake.cipher)


def outcome(results: Sequence[VersionResult], budget_hit: bool) -> str:
    """ok, partial, unreachable, starttls-failed or no-tls."""
    if any(r.status is ProbeStatus.ACCEPTED for r in results):
        return "partial" if budget_hit else "ok"
    seen = {r.outcome.split(":")[0] for r in results if r.status is not ProbeStatus.SKIPPED}
    if seen and seen <= {str(Outcome.REFUSED), str(Outcome.UNREACHABLE)}:
        return "unreachable"
    if seen == {str(Outcome.STARTTLS_FAILED)}:
        return "starttls-failed"
    return "partial" if budget_hit else "no-tls"


def verdicts(
    results: Sequence[VersionResult],
    group_names: Sequence[str],
    cert: CertSummary | None,
    dhe_bits: int | None,
) -> tuple[MozillaVerdict, ...]:
    """The endpoint against each of Mozilla's profiles (data/mozilla.toml)."""
    accepted = [r for r in results if r.status is ProbeStatus.ACCEPTED]
    seen = grade.Observed(
        versions=[r.version for r in accepted],
        suites=[s.name for r in accepted for s in r.suites],
        groups=group_names,
        cert=cert,
        dhe_bits=dhe_bits,
        server_preference=any(r.server_preference for r in accepted),
    )
    found = []
    for profile in grade.mozilla_profiles():
        compliant, reasons, notes = grade.mozilla_verdict(profile, seen)
        found.append(
            MozillaVerdict(
                profile=profile.name,
                guidelines=profile.guidelines,
                compliant=compliant,
                reasons=tuple(reasons),
                notes=tuple(notes),
            )
        )
    return tuple(found)


def build_profile(
    target: Target,
    results: Sequence[VersionResult],
    *,
    groups13: Sequence[int],
    groups_ec: Sequence[int],
    dhe_bits: int | None,
    stdlib: StdlibHandshake,
    cert: CertSummary | None,
    anomalies: Sequence[str],
    handshakes: int,
    budget_hit: bool,
    elapsed: float,
) -> TlsProfile:
    """The profile of one endpoint from everything its probes established."""
    accepted = [r for r in results if r.status is ProbeStatus.ACCEPTED]
    graded = [grade.version_graded(r.version) for r in accepted]
    graded += [grade.Graded(s.name, s.grade, s.reasons) for r in accepted for s in r.suites]
    endpoint, reasons = grade.endpoint_grade(graded)
    names13 = [groups.name(code) for code in groups13]
    names_ec = [groups.name(code) for code in groups_ec]
    return TlsProfile(
        ip=target.host,
        port=target.port,
        sni=target.sni,
        starttls=str(target.starttls) if target.starttls else None,
        outcome=outcome(results, budget_hit),
        versions=tuple(r.version for r in accepted),
        protocols=tuple(results),
        groups=tuple(names13),
        groups_tls12=tuple(names_ec),
        dhe_bits=dhe_bits,
        negotiated=negotiated(stdlib),
        negotiated_version=stdlib.version,
        cert=cert,
        grade=endpoint,
        grade_reasons=reasons,
        mozilla=verdicts(results, [*names13, *names_ec], cert, dhe_bits),
        anomalies=tuple(dict.fromkeys(anomalies)),
        handshakes=handshakes,
        elapsed=round(elapsed, 4),
    )
