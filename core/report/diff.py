"""What changed between two runs: ports opened, ports closed, services that changed.

A port is open in a run when its reconciled state is open. Compared per endpoint:

    opened    open in the later run, not open (or absent) in the earlier one
    closed    open in the earlier run, not open (or absent) in the later one
    changed   open in both, with a different service, product, version, certificate,
              negotiated cipher or set of TLS versions

An endpoint present in only one run whose address the other run did not target is not
called opened or closed (it was not looked at): it is counted in `unscanned`. A run
whose targets are unknown is taken to have covered everything.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from core.models import CertSummary, Endpoint, PortState, Service
from core.naming import canonical_service
from core.risk.addresses import endpoint_key, parse_ip
from core.risk.grading import canonical_version

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Change(StrEnum):
    OPENED = "opened"
    CLOSED = "closed"
    CHANGED = "changed"


class FieldChange(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str  # service, product, version, certificate, cipher, tls_versions, state, status
    before: str | None
    after: str | None


class DiffEntry(BaseModel):
    """One endpoint that opened, closed or changed, described as the later run sees it
    (the earlier run for a port that closed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    change: Change
    ip: str
    port: int
    transport: str
    service: str | None
    product: str | None
    version: str | None
    colour: str | None
    fields: tuple[FieldChange, ...] = ()


class Diff(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    run_a: int | None = None
    run_b: int | None = None
    opened: tuple[DiffEntry, ...] = ()
    closed: tuple[DiffEntry, ...] = ()
    changed: tuple[DiffEntry, ...] = ()
    unscanned: int = 0  # endpoints in one run whose address the other run did not target

    @property
    def entries(self) -> tuple[DiffEntry, ...]:
        return self.opened + self.closed + self.changed

    def rows(self) -> list[dict[str, str]]:
        """Flat rows for CSV and tables: one per endpoint, or per changed field."""
        out = []
        for entry in self.entries:
            base = {
                "change": entry.change.value,
                "ip": entry.ip,
                "port": str(entry.port),
                "transport": entry.transport,
                "service": entry.service or "",
                "product": entry.product or "",
                "version": entry.version or "",
                "colour": entry.colour or "",
            }
            if not entry.fields:
                out.append({**base, "field": "", "before": "", "after": ""})
            for item in entry.fields:
                out.append(
                    {
                        **base,
                        "field": item.field,
                        "before": item.before or "",
                        "after": item.after or "",
                    }
                )
        return out


ROW_COLUMNS = (
    "change",
    "ip",
    "port",
    "transport",
    "service",
    "product",
    "version",
    "colour",
    "field",
    "before",
    "after",
)


def parse_scope(targets: Sequence[str]) -> list[IpNetwork] | None:
    """A run's targets as networks; None (unknown: assume everything) if any is not one."""
    if not targets:
        return None
    try:
        return [ipaddress.ip_network(t, strict=False) for t in targets]
    except ValueError:
        return None


def _covers(scope: Sequence[IpNetwork] | None, ip: str) -> bool:
    if scope is None:
        return True
    addr = parse_ip(ip)
    return any(addr.version == net.version and addr in net for net in scope)


def _cert(cert: CertSummary | None) -> str | None:
    if cert is None:
        return None
    if cert.sha256:
        return f"sha256:{cert.sha256.lower()}"
    until = f" until {cert.not_after:%Y-%m-%d}" if cert.not_after else ""
    return f"{cert.subject or '?'} by {cert.issuer or '?'}{until}"


def _versions(svc: Service) -> str | None:
    if svc.tls is None:
        return None
    versions = sorted({v for v in (canonical_version(x) for x in svc.tls.versions) if v})
    return ",".join(versions) or None


def _fields(svc: Service) -> dict[str, str | None]:
    return {
        "service": canonical_service(svc.service),
        "product": svc.product,
        "version": svc.version,
        "certificate": _cert(svc.tls.cert if svc.tls else None),
        "cipher": svc.tls.cipher if svc.tls else None,
        "tls_versions": _versions(svc),
    }


def _differences(before: Service, after: Service) -> tuple[FieldChange, ...]:
    old, new = _fields(before), _fields(after)
    changes = []
    for name, value in new.items():
        was = old[name]
        same = (was or "").casefold() == (value or "").casefold()
        if not same:
            changes.append(FieldChange(field=name, before=was, after=value))
    return tuple(changes)


def _entry(change: Change, svc: Service, fields: tuple[FieldChange, ...] = ()) -> DiffEntry:
    return DiffEntry(
        change=change,
        ip=svc.endpoint.ip,
        port=svc.endpoint.port,
        transport=svc.endpoint.transport.value,
        service=svc.service,
        product=svc.product,
        version=svc.version,
        colour=svc.colour.value if svc.colour else None,
        fields=fields,
    )


def diff_services(
    before: Iterable[Service],
    after: Iterable[Service],
    *,
    before_targets: Sequence[str] = (),
    after_targets: Sequence[str] = (),
    run_a: int | None = None,
    run_b: int | None = None,
) -> Diff:
    """The difference between two runs' services (`before` is the earlier run)."""
    old = {svc.endpoint: svc for svc in before}
    new = {svc.endpoint: svc for svc in after}
    old_scope, new_scope = parse_scope(before_targets), parse_scope(after_targets)
    opened: list[DiffEntry] = []
    closed: list[DiffEntry] = []
    changed: list[DiffEntry] = []
    unscanned = 0
    endpoints: list[Endpoint] = sorted(old.keys() | new.keys(), key=endpoint_key)
    for endpoint in endpoints:
        was, now = old.get(endpoint), new.get(endpoint)
        was_open = was is not None and was.state is PortState.OPEN
        now_open = now is not None and now.state is PortState.OPEN
        if now_open and not was_open:
            assert now is not None
            if was is None and not _covers(old_scope, endpoint.ip):
                unscanned += 1
                continue
            fields = () if was is None else _state_change(was, now)
            opened.append(_entry(Change.OPENED, now, fields))
        elif was_open and not now_open:
            assert was is not None
            if now is None and not _covers(new_scope, endpoint.ip):
                unscanned += 1
                continue
            fields = () if now is None else _state_change(was, now)
            closed.append(_entry(Change.CLOSED, was, fields))
        elif was_open and now_open:
            assert was is not None and now is not None
            fields = _differences(was, now)
            if fields:
                changed.append(_entry(Change.CHANGED, now, fields))
    return Diff(
        run_a=run_a,
        run_b=run_b,
        opened=tuple(opened),
        closed=tuple(closed),
        changed=tuple(changed),
        unscanned=unscanned,
    )


def _state_change(was: Service, now: Service) -> tuple[FieldChange, ...]:
    return (
        FieldChange(field="state", before=was.state.value, after=now.state.value),
        FieldChange(field="status", before=was.status.value, after=now.status.value),
    )
