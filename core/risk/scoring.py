"""The asset score: 0-100 per address, every point given by a named rule.

Scoring is pure: services in, findings out. `annotate` first gives each service its
colour (the catalogue) and marks CDN edge ports (the CDN data); `score_asset` then
applies the rules below to one address's services. `portintel explain` prints the
findings, so a user can see which rule gave each point and argue with it.

    rule                  points              per
    exposure.open-ports   2 (max 20)          open port that is not a CDN edge
    port.red              25                  service that should not face the internet
    port.yellow           5                   port with no identified (or no catalogued) service
    port.cdn-edge         0                   CDN edge port: listed, explained, not penalised
    vuln.critical         15                  CVE with CVSS 9.0-10.0   (each CVE once per asset)
    vuln.high             10                  CVE with CVSS 7.0-8.9
    vuln.medium           4                   CVE with CVSS 4.0-6.9
    vuln.low              1                   CVE with CVSS 0.1-3.9
    vuln.unscored         4                   CVE the source gave no CVSS for
    vuln.none             0                   CVE with CVSS 0.0
    tls.protocol.ssl      15                  endpoint accepting SSLv2 or SSLv3
    tls.protocol.legacy   5                   endpoint accepting TLS 1.0 or 1.1
    tls.cipher.insecure   10                  endpoint offering NULL/EXPORT/anon/RC4/DES/MD5 suites
    tls.cipher.weak       3                   endpoint offering 3DES or non-forward-secret suites
    cert.expired          10                  certificate past its not-after date
    cert.not-yet-valid    5                   certificate before its not-before date
    cert.self-signed      5                   self-signed certificate
    cert.weak-key         5                   RSA/DSA key under 2048 bits, EC key under 224 bits

The score is the sum, capped at 100. An allowlist entry multiplies the exposure and
colour points of the ports it expects by its weight (0.2 by default); CVEs, TLS and
certificate findings on an expected port count in full.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from core.models import Colour, Endpoint, PortState, Service, Vuln, replaced
from core.risk.allowlist import EMPTY, Allowlist
from core.risk.catalogue import Catalogue, default_catalogue
from core.risk.cdn import CdnDatabase, default_cdns, mark_edges
from core.risk.grading import Grade, OfferedSuite, canonical_version

MAX_SCORE = 100
EXPOSURE_CAP = 20


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Rule(BaseModel):
    """A scoring rule: its id, what one hit is worth, and why it exists."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    points: int = Field(ge=0)
    severity: Severity
    rationale: str


def _rules(*rules: Rule) -> dict[str, Rule]:
    return {rule.id: rule for rule in rules}


RULES = _rules(
    Rule(
        id="exposure.open-ports",
        points=2,
        severity=Severity.LOW,
        rationale="Every open port is attack surface; fewer open ports, less to defend.",
    ),
    Rule(
        id="port.red",
        points=25,
        severity=Severity.HIGH,
        rationale="A service that should not face the internet is reachable.",
    ),
    Rule(
        id="port.yellow",
        points=5,
        severity=Severity.LOW,
        rationale="An open port whose service is unknown cannot be judged safe.",
    ),
    Rule(
        id="port.cdn-edge",
        points=0,
        severity=Severity.INFO,
        rationale="A CDN answers on this port for every customer: it says nothing about "
        "the origin, so it is listed but not penalised.",
    ),
    Rule(
        id="vuln.critical",
        points=15,
        severity=Severity.CRITICAL,
        rationale="A known vulnerability rated critical (CVSS 9.0-10.0).",
    ),
    Rule(
        id="vuln.high",
        points=10,
        severity=Severity.HIGH,
        rationale="A known vulnerability rated high (CVSS 7.0-8.9).",
    ),
    Rule(
        id="vuln.medium",
        points=4,
        severity=Severity.MEDIUM,
        rationale="A known vulnerability rated medium (CVSS 4.0-6.9).",
    ),
    Rule(
        id="vuln.low",
        points=1,
        severity=Severity.LOW,
        rationale="A known vulnerability rated low (CVSS 0.1-3.9).",
    ),
    Rule(
        id="vuln.unscored",
        points=4,
        severity=Severity.MEDIUM,
        rationale="A known vulnerability without a CVSS score: counted as medium.",
    ),
    Rule(
        id="vuln.none",
        points=0,
        severity=Severity.INFO,
        rationale="A CVE rated CVSS 0.0 has no impact: listed, not counted.",
    ),
    Rule(
        id="tls.protocol.ssl",
        points=15,
        severity=Severity.HIGH,
        rationale="SSL 2.0 and 3.0 are broken (DROWN, POODLE) and prohibited (RFC 6176, 7568).",
    ),
    Rule(
        id="tls.protocol.legacy",
        points=5,
        severity=Severity.MEDIUM,
        rationale="TLS 1.0 and 1.1 are deprecated (RFC 8996): weak hashes, CBC attacks.",
    ),
    Rule(
        id="tls.cipher.insecure",
        points=10,
        severity=Severity.HIGH,
        rationale="NULL, EXPORT, anonymous, RC4, DES or MD5 suites give little or no "
        "protection to the traffic.",
    ),
    Rule(
        id="tls.cipher.weak",
        points=3,
        severity=Severity.MEDIUM,
        rationale="3DES (Sweet32) and suites without forward secrecy weaken the channel.",
    ),
    Rule(
        id="cert.expired",
        points=10,
        severity=Severity.MEDIUM,
        rationale="An expired certificate breaks clients and trains users to click through.",
    ),
    Rule(
        id="cert.not-yet-valid",
        points=5,
        severity=Severity.MEDIUM,
        rationale="A certificate that is not yet valid is rejected by clients.",
    ),
    Rule(
        id="cert.self-signed",
        points=5,
        severity=Severity.MEDIUM,
        rationale="A self-signed certificate cannot be verified, so it cannot stop an "
        "interception.",
    ),
    Rule(
        id="cert.weak-key",
        points=5,
        severity=Severity.MEDIUM,
        rationale="RSA/DSA keys under 2048 bits and EC keys under 224 bits are within "
        "reach of attackers.",
    ),
)


class Finding(BaseModel):
    """One rule's verdict on one asset or endpoint: the points and the evidence for them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str
    severity: Severity
    points: int = Field(ge=0)  # what counts toward the score, after any allowlist weight
    base_points: int = Field(ge=0)  # before the weight
    weight: float = Field(default=1.0, ge=0, le=1)
    endpoint: str | None = None  # ip:port/transport, or None for the asset as a whole
    evidence: str
    rationale: str
    allowlist: str | None = None  # the allowlist entry that lowered the weight


class Risk(BaseModel):
    """An asset's score with its breakdown: the findings add up to `points`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    asset: str
    score: int = Field(ge=0, le=MAX_SCORE)
    points: int = Field(ge=0)  # the uncapped sum of the findings' points
    open_ports: int = Field(ge=0)
    green: int = Field(default=0, ge=0)
    yellow: int = Field(default=0, ge=0)
    red: int = Field(default=0, ge=0)
    cdn_edge: int = Field(default=0, ge=0)
    findings: tuple[Finding, ...] = ()

    @property
    def colours(self) -> dict[Colour, int]:
        return {Colour.GREEN: self.green, Colour.YELLOW: self.yellow, Colour.RED: self.red}


def _half_up(value: float) -> int:
    # round() rounds half to even: 2.5 -> 2 would surprise whoever checks the arithmetic.
    return math.floor(value + 0.5)


def _finding(
    rule_id: str,
    evidence: str,
    *,
    endpoint: Endpoint | None = None,
    rationale: str | None = None,
    weight: float = 1.0,
    allowlist: str | None = None,
    base_points: int | None = None,
) -> Finding:
    rule = RULES[rule_id]
    base = rule.points if base_points is None else base_points
    return Finding(
        rule=rule.id,
        severity=rule.severity,
        points=_half_up(base * weight),
        base_points=base,
        weight=weight,
        endpoint=str(endpoint) if endpoint is not None else None,
        evidence=evidence,
        rationale=rationale or rule.rationale,
        allowlist=allowlist,
    )


def annotate(
    services: Iterable[Service],
    catalogue: Catalogue | None = None,
    cdns: CdnDatabase | None = None,
) -> Iterator[Service]:
    """Each service with its colour set and, when it is an open CDN edge port, cdn-edge."""
    catalogue = catalogue or default_catalogue()
    for svc in mark_edges(services, cdns or default_cdns()):
        colour = catalogue.classify(svc.service, svc.product).colour
        yield svc if svc.colour is colour else replaced(svc, colour=colour)


def _describe(svc: Service) -> str:
    what = " ".join(part for part in (svc.product, svc.version) if part)
    name = svc.service or "unidentified service"
    return f"{svc.endpoint.port}/{svc.endpoint.transport} {name}" + (f" ({what})" if what else "")


def vuln_rule(cvss: float | None) -> str:
    """The vuln.* rule for a CVSS base score (None: the source gave none)."""
    if cvss is None:
        return "vuln.unscored"
    if cvss >= 9.0:
        return "vuln.critical"
    if cvss >= 7.0:
        return "vuln.high"
    if cvss >= 4.0:
        return "vuln.medium"
    if cvss > 0.0:
        return "vuln.low"
    return "vuln.none"


def _vuln_findings(exposed: Sequence[Service]) -> list[Finding]:
    # One CVE on port 80 and 443 of the same server is one vulnerability of the asset.
    worst: dict[str, Vuln] = {}
    where: dict[str, list[str]] = defaultdict(list)
    for svc in exposed:
        for vuln in svc.vulns:
            known = worst.get(vuln.cve)
            if known is None or (vuln.cvss is not None and (known.cvss or -1.0) < vuln.cvss):
                worst[vuln.cve] = vuln
            where[vuln.cve].append(f"{svc.endpoint.port}/{svc.endpoint.transport}")
    findings = []
    for cve in sorted(worst):
        vuln = worst[cve]
        cvss = "no CVSS" if vuln.cvss is None else f"CVSS {vuln.cvss:.1f}"
        findings.append(
            _finding(vuln_rule(vuln.cvss), f"{cve} ({cvss}) on {', '.join(where[cve])}")
        )
    return findings


def _suite_names(svc: Service, offered: Sequence[OfferedSuite]) -> list[OfferedSuite]:
    suites = list(offered)
    cipher = svc.tls.cipher if svc.tls is not None else None
    if cipher and all(s.name != cipher for s in suites):
        suites.append(OfferedSuite(name=cipher))
    return suites


def _tls_findings(svc: Service, offered: Sequence[OfferedSuite], now: datetime) -> list[Finding]:
    findings: list[Finding] = []
    tls = svc.tls
    endpoint = svc.endpoint
    versions = sorted({v for v in (canonical_version(x) for x in tls.versions) if v}) if tls else []
    ssl = [v for v in versions if v.startswith("SSL")]
    legacy = [v for v in versions if v in ("TLSv1.0", "TLSv1.1")]
    if ssl:
        findings.append(
            _finding("tls.protocol.ssl", f"accepts {', '.join(ssl)}", endpoint=endpoint)
        )
    if legacy:
        findings.append(
            _finding("tls.protocol.legacy", f"accepts {', '.join(legacy)}", endpoint=endpoint)
        )
    suites = _suite_names(svc, offered)
    for grade, rule_id in (
        (Grade.INSECURE, "tls.cipher.insecure"),
        (Grade.WEAK, "tls.cipher.weak"),
    ):
        names = sorted({s.name for s in suites if s.effective_grade is grade})
        if names:
            findings.append(
                _finding(rule_id, f"offers {grade} {', '.join(names)}", endpoint=endpoint)
            )
            break  # the worst grade speaks for the endpoint; one cipher finding each
    cert = tls.cert if tls else None
    if cert is None:
        return findings
    if cert.not_after is not None and cert.not_after < now:
        findings.append(
            _finding(
                "cert.expired",
                f"{cert.subject or 'certificate'} expired {cert.not_after:%Y-%m-%d}",
                endpoint=endpoint,
            )
        )
    if cert.not_before is not None and cert.not_before > now:
        findings.append(
            _finding(
                "cert.not-yet-valid",
                f"{cert.subject or 'certificate'} valid from {cert.not_before:%Y-%m-%d}",
                endpoint=endpoint,
            )
        )
    if cert.self_signed:
        findings.append(
            _finding(
                "cert.self-signed",
                f"{cert.subject or 'certificate'} is signed by itself",
                endpoint=endpoint,
            )
        )
    if _weak_key(cert.key_type, cert.key_bits):
        findings.append(
            _finding(
                "cert.weak-key", f"{cert.key_type} key of {cert.key_bits} bits", endpoint=endpoint
            )
        )
    return findings


def _weak_key(key_type: str | None, bits: int | None) -> bool:
    if key_type is None or bits is None:
        return False
    kind = key_type.lower()
    if kind.startswith("ec") or "ecdsa" in kind:
        return bits < 224
    if "rsa" in kind or "dsa" in kind:
        return bits < 2048
    return False  # Ed25519/Ed448 have fixed, strong sizes


def score_asset(
    ip: str,
    services: Iterable[Service],
    *,
    now: datetime,
    allowlist: Allowlist = EMPTY,
    catalogue: Catalogue | None = None,
    cdns: CdnDatabase | None = None,
    suites: Mapping[Endpoint, Sequence[OfferedSuite]] | None = None,
) -> Risk:
    """The Risk of address `ip` from its services (as `annotate` left them).

    `now` decides certificate validity (passed in so a score is reproducible);
    `suites` are the cipher suites TLS enumeration found per endpoint, when it ran.
    """
    catalogue = catalogue or default_catalogue()
    cdns = cdns or default_cdns()
    open_services = sorted(
        (s for s in services if s.state is PortState.OPEN and s.endpoint.ip == ip),
        key=lambda s: (s.endpoint.port, s.endpoint.transport),  # one address: by port
    )
    findings: list[Finding] = []
    exposed: list[Service] = []
    counts = {Colour.GREEN: 0, Colour.YELLOW: 0, Colour.RED: 0}
    exposure = 0.0
    expected = edges = 0
    for svc in open_services:
        edge = cdns.edge(svc)
        if edge is not None:
            edges += 1
            findings.append(_finding("port.cdn-edge", edge.reason, endpoint=svc.endpoint))
            continue
        exposed.append(svc)
        verdict = catalogue.classify(svc.service, svc.product)
        counts[verdict.colour] += 1
        allowed = allowlist.match(svc)
        weight = allowlist.weight if allowed else 1.0
        expected += allowed is not None
        exposure += RULES["exposure.open-ports"].points * weight
        if verdict.colour is not Colour.GREEN:
            findings.append(
                _finding(
                    f"port.{verdict.colour}",
                    f"{_describe(svc)}; catalogue {verdict.entry}",
                    endpoint=svc.endpoint,
                    rationale=verdict.why,
                    weight=weight,
                    allowlist=allowed,
                )
            )
    if exposed:
        base = min(EXPOSURE_CAP, _half_up(exposure))
        notes = [f"{len(exposed)} open ports"]
        if expected:
            notes.append(f"{expected} expected by the allowlist")
        if edges:
            notes.append(f"{edges} CDN edge ports not counted")
        if _half_up(exposure) > EXPOSURE_CAP:
            notes.append(f"capped at {EXPOSURE_CAP}")
        findings.insert(0, _finding("exposure.open-ports", "; ".join(notes), base_points=base))
    findings.extend(_vuln_findings(exposed))
    for svc in exposed:
        findings.extend(_tls_findings(svc, (suites or {}).get(svc.endpoint, ()), now))
    points = sum(f.points for f in findings)
    return Risk(
        asset=ip,
        score=min(MAX_SCORE, points),
        points=points,
        open_ports=len(open_services),
        green=counts[Colour.GREEN],
        yellow=counts[Colour.YELLOW],
        red=counts[Colour.RED],
        cdn_edge=edges,
        findings=tuple(findings),
    )


def score_assets(
    services: Iterable[Service],
    *,
    now: datetime,
    allowlist: Allowlist = EMPTY,
    catalogue: Catalogue | None = None,
    cdns: CdnDatabase | None = None,
    suites: Mapping[Endpoint, Sequence[OfferedSuite]] | None = None,
) -> dict[str, Risk]:
    """The Risk of every address in `services`, keyed by address."""
    by_ip: dict[str, list[Service]] = defaultdict(list)
    for svc in services:
        by_ip[svc.endpoint.ip].append(svc)
    return {
        ip: score_asset(
            ip,
            group,
            now=now,
            allowlist=allowlist,
            catalogue=catalogue,
            cdns=cdns,
            suites=suites,
        )
        for ip, group in by_ip.items()
    }
