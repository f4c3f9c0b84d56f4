"""Verdicts on third-party claims: is what a findings file says still true?

`judge` is pure: one imported claim, plus what our probe saw at that endpoint (or why it
was not probed), gives a verdict with its reason and evidence:

- confirmed: open now, and the service/product/version the claim names (if any) agree;
- changed: open now, but a different service, product or version (both are given);
- refuted: closed now (the host answered with a reset / port unreachable);
- unverified: filtered, a SYN-ACK wall, or out of scope (the reason says which).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from core.importers.records import ImportedClaim
from core.models import Observation, PortState
from core.naming import canonical_service

EXCERPT = 120


class Verdict(StrEnum):
    CONFIRMED = "confirmed"
    CHANGED = "changed"
    REFUTED = "refuted"
    UNVERIFIED = "unverified"


@dataclass(frozen=True)
class ClaimVerdict:
    claim: ImportedClaim
    verdict: Verdict
    reason: str
    probe: Observation | None = None
    vantage: str | None = None

    @property
    def probed_at(self) -> datetime | None:
        return self.probe.fetched_at if self.probe else None

    @property
    def evidence(self) -> str:
        """What answered: a short excerpt of the banner, else the HTTP server or title."""
        if self.probe is None:
            return ""
        text = self.probe.banner or self.probe.http_server or self.probe.http_title or ""
        text = " ".join(text.split())
        return text if len(text) <= EXCERPT else text[:EXCERPT] + "..."

    @property
    def cert_sha256(self) -> str:
        tls = self.probe.tls if self.probe else None
        return (tls.cert.sha256 or "") if tls and tls.cert else ""


def _differs(field: str, claimed: str | None, found: str | None) -> str | None:
    if not claimed or not found:
        return None  # a claim that names nothing, or a service that reveals nothing
    if field == "service":
        same = canonical_service(claimed) == canonical_service(found)
    else:
        same = claimed.casefold() == found.casefold()
    return None if same else f"{field} {claimed} -> {found}"


def judge(
    claim: ImportedClaim, probe: Observation | None, *, in_scope: bool, vantage: str | None = None
) -> ClaimVerdict:
    """The verdict on one claim given our newest probe of its endpoint."""
    if not in_scope:
        return ClaimVerdict(claim, Verdict.UNVERIFIED, "out of scope: not probed", None, vantage)
    if probe is None:
        return ClaimVerdict(claim, Verdict.UNVERIFIED, "not probed", None, vantage)
    why = next((t.split(":", 1)[1] for t in probe.tags if t.startswith("reason:")), "")
    if probe.state is PortState.CLOSED:
        return ClaimVerdict(claim, Verdict.REFUTED, f"closed ({why or 'refused'})", probe, vantage)
    if probe.state is not PortState.OPEN:
        reason = f"{probe.state.value} ({why or 'no answer'})"
        return ClaimVerdict(claim, Verdict.UNVERIFIED, reason, probe, vantage)
    said = claim.observation
    changes = [
        change
        for change in (
            _differs("service", said.service, probe.service),
            _differs("product", said.product, probe.product),
            _differs("version", said.version, probe.version),
        )
        if change
    ]
    if changes:
        return ClaimVerdict(claim, Verdict.CHANGED, "; ".join(changes), probe, vantage)
    return ClaimVerdict(claim, Verdict.CONFIRMED, "open", probe, vantage)
