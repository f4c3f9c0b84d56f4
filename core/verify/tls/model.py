"""What TLS enumeration found on one endpoint: a `TlsProfile`, pure data.

Everything a peer tool (sslscan, sslyze, testssl.sh) reports per endpoint is here:
protocol versions with how each probe ended, the suites accepted per version in the
server's order (when it imposes one), the key-exchange groups, the certificate, a grade per
suite and per endpoint with the reasons, and verdicts against Mozilla's profiles. Odd
server behaviour is kept as data (`anomalies`, per-version `outcome`), never raised.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, ClassVar

from core.certificate import CertSummary
from core.risk.grading import Grade, OfferedSuite

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from core.models import TlsSummary

# Plain frozen dataclasses, not pydantic models: `python -m core.verify.tls` is timed as a
# whole process against sslscan, and pydantic's import alone costs about three times the
# enumeration of a typical server. Profiles are built by our own code; reading one back
# from JSON (`profile_from_json`) validates it with pydantic all the same.
_FORBID: dict[str, str] = {"extra": "forbid"}  # when pydantic reads one: as with the models


class ProbeStatus(StrEnum):
    """How the probe of one protocol version ended."""

    ACCEPTED = "accepted"  # a ServerHello for this version naming a suite we offered
    REJECTED = "rejected"  # an alert, a lower version, or the connection closed politely
    ERROR = "error"  # reset, timeout, garbage, malformed TLS, unreachable, STARTTLS failed
    SKIPPED = "skipped"  # not probed (the handshake budget ran out, or not asked for)


@dataclass(frozen=True, slots=True, kw_only=True)  # keywords only, as with models
class SuiteResult:
    """One accepted cipher suite under one protocol version."""

    __pydantic_config__: ClassVar[dict[str, str]] = _FORBID

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


@dataclass(frozen=True, slots=True, kw_only=True)  # keywords only, as with models
class VersionResult:
    """One protocol version: whether it is accepted, and its suites."""

    __pydantic_config__: ClassVar[dict[str, str]] = _FORBID

    version: str  # SSLv2, SSLv3, TLSv1.0, TLSv1.1, TLSv1.2, TLSv1.3
    status: ProbeStatus
    outcome: str  # how the first probe ended: "server-hello", "alert handshake_failure", ...
    suites: tuple[SuiteResult, ...] = ()  # the server's order when it has one, else code order
    server_preference: bool | None = None  # None: fewer than two suites, or inconclusive
    handshakes: int = 0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)  # keywords only, as with models
class MozillaVerdict:
    __pydantic_config__: ClassVar[dict[str, str]] = _FORBID

    profile: str  # modern, intermediate
    guidelines: str  # the version of Mozilla's guidelines the profile data reflects
    compliant: bool
    reasons: tuple[str, ...] = ()  # every way the endpoint falls outside the profile
    notes: tuple[str, ...] = ()  # recommendations not met that do not fail the profile


@dataclass(frozen=True, slots=True, kw_only=True)  # keywords only, as with models
class TlsProfile:
    """The full TLS picture of one endpoint (ARCHITECTURE.md: `TlsProfile`)."""

    __pydantic_config__: ClassVar[dict[str, str]] = _FORBID

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
        from core.models import TlsSummary  # pydantic: only the pipeline needs this

        return TlsSummary(versions=self.versions, cipher=self.negotiated, cert=self.cert)


def profile_json(profile: TlsProfile, indent: int | None = None) -> str:
    """The profile as JSON: every field by name, as `profile_from_json` reads it back."""
    separators = (",", ":") if indent is None else None  # compact, unless meant for eyes
    return json.dumps(
        dataclasses.asdict(profile), indent=indent, separators=separators, default=_json_value
    )


def _json_value(value: object) -> str:
    if isinstance(value, datetime):  # certificate validity, UTC
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def profile_from_json(text: str | bytes) -> TlsProfile:
    """A profile from `profile_json`'s JSON, validated (types, enums, no unknown fields).

    Raises pydantic's ValidationError (a ValueError) for anything else.
    """
    return _adapter().validate_json(text)


@cache
def _adapter() -> TypeAdapter[TlsProfile]:
    from pydantic import TypeAdapter  # here: the scan itself never needs it

    return TypeAdapter(TlsProfile)
