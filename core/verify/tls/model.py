"""What TLS enumeration found on one endpoint: a `TlsProfile`, pure data.

Everything a peer tool (sslscan, sslyze, testssl.sh) reports per endpoint is here:
protocol versions with how each probe ended, the suites accepted per version in the
server's order (when it imposes one), the key-exchange groups, the certificate, a grade per
suite and per endpoint with the reasons, and verdicts against Mozilla's profiles. Odd
server behaviour is kept as data (`anomalies`, per-version `outcome`), never raised.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from core.models import CertSummary, TlsSummary
from core.risk.grading import Grade, OfferedSuite


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProbeStatus(StrEnum):
    """How the probe of one protocol version ended."""

    ACCEPTED = "accepted"  # a ServerHello for this version naming a suite we offered
    REJECTED = "rejected"  # an alert, a lower version, or the connection closed politely
    ERROR = "error"  # reset, timeout, garbage, malformed TLS, unreachable, STARTTLS failed
    SKIPPED = "skipped"  # not probed (the handshake budget ran out, or not asked for)


class SuiteResult(_Frozen):
    """One accepted cipher suite under one protocol version."""

    code: str  # hex code point: 0xC02F (SSLv2 cipher specs: 0x0700C0)
    name: str  # IANA name
    openssl_name: str | None = None
    version: str  # TLSv1.2, ...
    kx: str
    auth: str
    cipher: str
    mac: str
    grade: Grade
    reasons: tuple[str, ...] = ()  # why the grade is below recommended


class VersionResult(_Frozen):
    """One protocol version: whether it is accepted, and its suites."""

    version: str  # SSLv2, SSLv3, TLSv1.0, TLSv1.1, TLSv1.2, TLSv1.3
    status: ProbeStatus
    outcome: str  # how the first probe ended: "server-hello", "alert handshake_failure", ...
    suites: tuple[SuiteResult, ...] = ()  # the server's order when it has one, else code order
    server_preference: bool | None = None  # None: fewer than two suites, or inconclusive
    handshakes: int = 0
    notes: tuple[str, ...] = ()


class MozillaVerdict(_Frozen):
    profile: str  # modern, intermediate
    guidelines: str  # the version of Mozilla's guidelines the profile data reflects
    compliant: bool
    reasons: tuple[str, ...] = ()  # every way the endpoint falls outside the profile
    notes: tuple[str, ...] = ()  # recommendations not met that do not fail the profile


class TlsProfile(_Frozen):
    """The full TLS picture of one endpoint (ARCHITECTURE.md: `TlsProfile`)."""

    ip: str
    port: int
    sni: str | None = None
    starttls: str | None = None
    outcome: str  # ok, no-tls, unreachable, starttls-failed, partial
    versions: tuple[str, ...] = ()  # accepted versions, oldest first
    protocols: tuple[VersionResult, ...] = ()  # every version probed, oldest first
    groups: tuple[str, ...] = ()  # TLS 1.3 key_share groups accepted, in discovery order
    groups_tls12: tuple[str, ...] = ()  # ECDHE curves accepted for TLS 1.2 and older
    dhe_bits: int | None = None  # size of the finite-field DHE prime, when DHE is accepted
    negotiated: str | None = None  # what a permissive OpenSSL client negotiates (IANA name)
    negotiated_version: str | None = None
    cert: CertSummary | None = None
    grade: Grade = Grade.UNKNOWN
    grade_reasons: tuple[str, ...] = ()
    mozilla: tuple[MozillaVerdict, ...] = ()
    anomalies: tuple[str, ...] = ()  # protocol violations seen (unoffered suite, garbage...)
    handshakes: int = 0
    elapsed: float = 0.0  # seconds

    def accepted(self, version: str | None = None) -> tuple[SuiteResult, ...]:
        """Accepted suites, for one version or all of them (oldest version first)."""
        return tuple(
            suite
            for result in self.protocols
            if version is None or result.version == version
            for suite in result.suites
        )

    def offered_suites(self) -> tuple[OfferedSuite, ...]:
        """The suites in the shape the Ciphers view takes (`core.report.views`)."""
        return tuple(
            OfferedSuite(name=s.name, version=s.version, grade=s.grade) for s in self.accepted()
        )

    def summary(self) -> TlsSummary:
        """The single-handshake summary an Observation carries."""
        return TlsSummary(versions=self.versions, cipher=self.negotiated, cert=self.cert)
