"""The four views of an inventory: Summary, List, Products and Ciphers.

Each view is a pure function from reconciled services (coloured by
`core.risk.scoring.annotate`) to rows; the terminal, CSV, JSON and HTML outputs all
render the same rows. `ServiceFilter` holds the filters users reach for (target,
colour, status, source, port, product) and is applied before a view.

    Summary   per target: name, organisation, open ports, counts by colour, score
    List      every port: service, product, version, status, sources, colour,
              prevalence, first detected
    Products  product (and version): instances and targets
    Ciphers   every suite offered: grade, endpoints, targets, protocol versions
"""

from __future__ import annotations

import ipaddress
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from core.models import Colour, Endpoint, PortState, Service, Status
from core.naming import canonical_service
from core.risk.addresses import endpoint_key, ip_sort_key, parse_ip
from core.risk.grading import Grade, OfferedSuite, canonical_version
from core.risk.prevalence import Prevalence
from core.risk.scoring import Risk


@dataclass(frozen=True, slots=True)
class Row:
    """A view's row. Plain slotted dataclasses, not pydantic models: they are built from
    already validated Services, and a 100,000-row List view would otherwise spend most
    of its time validating them again."""

    def values(self) -> dict[str, Any]:
        """The row's fields in column order, as Python values."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def cells(self) -> dict[str, str]:
        """The row as text cells: lists `;`-joined, times ISO 8601 UTC, None empty."""
        return {name: _cell(value) for name, value in self.values().items()}

    def as_json(self) -> dict[str, Any]:
        """The row as JSON-ready values: times ISO 8601 UTC, tuples as lists."""
        return {name: _json(value) for name, value in self.values().items()}


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, tuple):
        return list(value)
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, tuple | list):
        return ";".join(_cell(item) for item in value)
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


@dataclass(frozen=True, slots=True)
class SummaryRow(Row):
    target: str
    name: str | None  # the asset's first hostname
    hostnames: tuple[str, ...]
    org: str | None
    open_ports: int
    ports: tuple[str, ...]  # 22/tcp, 443/tcp, ...
    green: int
    yellow: int
    red: int
    cdn_edge: int
    score: int


@dataclass(frozen=True, slots=True)
class ListRow(Row):
    ip: str
    port: int
    transport: str
    service: str | None
    product: str | None
    version: str | None
    status: str
    state: str
    sources: tuple[str, ...]
    colour: str | None
    prevalence: str | None  # bucket name; None when prevalence was not computed
    instances: int | None  # how many addresses have this port open across the store
    first_seen: datetime
    last_seen: datetime
    hostnames: tuple[str, ...]
    org: str | None
    cves: tuple[str, ...]
    max_cvss: float | None
    http_title: str | None
    banner: str | None


@dataclass(frozen=True, slots=True)
class ProductRow(Row):
    product: str
    version: str | None
    instances: int  # open endpoints running it
    targets: int  # distinct addresses running it


@dataclass(frozen=True, slots=True)
class CipherRow(Row):
    suite: str
    grade: str
    endpoints: int
    targets: int
    protocols: tuple[str, ...]  # protocol versions seen on the endpoints offering it


VIEW_ROWS: dict[str, type[Row]] = {
    "summary": SummaryRow,
    "list": ListRow,
    "products": ProductRow,
    "ciphers": CipherRow,
}


def columns(view: str) -> tuple[str, ...]:
    """The column names of a view, in output order."""
    return tuple(f.name for f in fields(VIEW_ROWS[view]))


# -- filters ----------------------------------------------------------------------------

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ServiceFilter(BaseModel):
    """Which services a view shows. Empty fields do not filter; values in a field are ORed,
    fields are ANDed. Targets are addresses, CIDR blocks or hostnames; products match as
    case-insensitive substrings; services by canonical name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    targets: tuple[str, ...] = ()
    colours: tuple[Colour, ...] = ()
    statuses: tuple[Status, ...] = ()
    sources: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    products: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    open_only: bool = False

    @field_validator("targets")
    @classmethod
    def _targets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(item.strip() for item in value if item.strip())

    def _networks(self) -> tuple[list[IpNetwork], set[str]]:
        networks: list[IpNetwork] = []
        names: set[str] = set()
        for item in self.targets:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                names.add(item.lower().rstrip("."))
        return networks, names

    def apply(self, services: Iterable[Service]) -> Iterator[Service]:
        networks, names = self._networks()
        products = [p.casefold() for p in self.products]
        wanted_services = {canonical_service(s) for s in self.services}
        sources = set(self.sources)
        for svc in services:
            if self.open_only and svc.state is not PortState.OPEN:
                continue
            if self.targets and not _in_targets(svc, networks, names):
                continue
            if self.colours and svc.colour not in self.colours:
                continue
            if self.statuses and svc.status not in self.statuses:
                continue
            if sources and not sources & set(svc.sources):
                continue
            if self.ports and svc.endpoint.port not in self.ports:
                continue
            if products and not (
                svc.product and any(p in svc.product.casefold() for p in products)
            ):
                continue
            if wanted_services and canonical_service(svc.service) not in wanted_services:
                continue
            yield svc


def _in_targets(svc: Service, networks: Sequence[IpNetwork], names: set[str]) -> bool:
    addr = parse_ip(svc.endpoint.ip)
    if any(addr.version == net.version and addr in net for net in networks):
        return True
    return any(host.lower().rstrip(".") in names for host in svc.hostnames)


# -- the views --------------------------------------------------------------------------


def summary_view(services: Iterable[Service], risks: Mapping[str, Risk]) -> list[SummaryRow]:
    """One row per target (address), highest score first.

    The counts and the score describe the whole asset (its Risk); `services` decide which
    targets are listed and supply names and organisation.
    """
    by_ip: dict[str, list[Service]] = defaultdict(list)
    for svc in services:
        by_ip[svc.endpoint.ip].append(svc)
    rows = []
    for ip, group in by_ip.items():
        risk = risks.get(ip)
        hostnames = tuple(sorted({h for s in group for h in s.hostnames}))
        orgs = Counter(s.org for s in group if s.org)
        open_ports = sorted(
            (s.endpoint for s in group if s.state is PortState.OPEN), key=endpoint_key
        )
        rows.append(
            SummaryRow(
                target=ip,
                name=hostnames[0] if hostnames else None,
                hostnames=hostnames,
                org=orgs.most_common(1)[0][0] if orgs else None,
                open_ports=risk.open_ports if risk else len(open_ports),
                ports=tuple(f"{e.port}/{e.transport}" for e in open_ports),
                green=risk.green if risk else 0,
                yellow=risk.yellow if risk else 0,
                red=risk.red if risk else 0,
                cdn_edge=risk.cdn_edge if risk else 0,
                score=risk.score if risk else 0,
            )
        )
    rows.sort(key=lambda r: (-r.score, ip_sort_key(r.target)))
    return rows


def list_view(services: Iterable[Service], prevalence: Prevalence | None = None) -> list[ListRow]:
    """One row per endpoint, in address and port order."""
    rows = []
    for svc in sorted(services, key=lambda s: endpoint_key(s.endpoint)):
        endpoint = svc.endpoint
        cvss = [v.cvss for v in svc.vulns if v.cvss is not None]
        rows.append(
            ListRow(
                ip=endpoint.ip,
                port=endpoint.port,
                transport=endpoint.transport.value,
                service=svc.service,
                product=svc.product,
                version=svc.version,
                status=svc.status.value,
                state=svc.state.value,
                sources=svc.sources,
                colour=svc.colour.value if svc.colour else None,
                prevalence=(
                    prevalence.bucket(endpoint.port, endpoint.transport).value
                    if prevalence
                    else None
                ),
                instances=(
                    prevalence.count(endpoint.port, endpoint.transport) if prevalence else None
                ),
                first_seen=svc.first_seen,
                last_seen=svc.last_seen,
                hostnames=svc.hostnames,
                org=svc.org,
                cves=tuple(v.cve for v in svc.vulns),
                max_cvss=max(cvss) if cvss else None,
                http_title=svc.http_title,
                banner=svc.banner,
            )
        )
    return rows


def products_view(services: Iterable[Service], *, with_versions: bool = True) -> list[ProductRow]:
    """Products on open ports with instance and target counts, most common first.

    Spellings that differ only in case are one product (shown as first met).
    """
    shown: dict[tuple[str, str | None], tuple[str, str | None]] = {}
    instances: Counter[tuple[str, str | None]] = Counter()
    targets: dict[tuple[str, str | None], set[str]] = defaultdict(set)
    for svc in services:
        if svc.state is not PortState.OPEN or not svc.product:
            continue
        version = svc.version if with_versions else None
        key = (svc.product.casefold(), version.casefold() if version else None)
        shown.setdefault(key, (svc.product, version))
        instances[key] += 1
        targets[key].add(svc.endpoint.ip)
    rows = [
        ProductRow(
            product=shown[key][0],
            version=shown[key][1],
            instances=count,
            targets=len(targets[key]),
        )
        for key, count in instances.items()
    ]
    rows.sort(key=lambda r: (-r.instances, -r.targets, r.product.casefold(), r.version or ""))
    return rows


def offered_suites(
    svc: Service, suites: Mapping[Endpoint, Sequence[OfferedSuite]] | None
) -> list[OfferedSuite]:
    """What an endpoint offers: TLS enumeration's list when it ran, else the negotiated suite."""
    enumerated = (suites or {}).get(svc.endpoint)
    if enumerated:
        return list(enumerated)
    if svc.tls is not None and svc.tls.cipher:
        return [OfferedSuite(name=svc.tls.cipher)]
    return []


def ciphers_view(
    services: Iterable[Service],
    suites: Mapping[Endpoint, Sequence[OfferedSuite]] | None = None,
) -> list[CipherRow]:
    """Every suite offered on an open endpoint, worst grade first, then most widespread.

    `suites` maps endpoints to the suites TLS enumeration accepted (with grades); without
    it, each TLS endpoint contributes the suite its handshake negotiated.
    """
    grades: dict[str, Grade] = {}
    endpoints: dict[str, set[Endpoint]] = defaultdict(set)
    protocols: dict[str, set[str]] = defaultdict(set)
    for svc in services:
        if svc.state is not PortState.OPEN:
            continue
        versions = {
            v for v in (canonical_version(x) for x in (svc.tls.versions if svc.tls else ())) if v
        }
        for suite in offered_suites(svc, suites):
            grade = suite.effective_grade
            known = grades.get(suite.name)
            if known is None or grade.rank < known.rank:
                grades[suite.name] = grade
            endpoints[suite.name].add(svc.endpoint)
            version = canonical_version(suite.version) if suite.version else None
            protocols[suite.name].update({version} if version else versions)
    rows = [
        CipherRow(
            suite=name,
            grade=grades[name].value,
            endpoints=len(endpoints[name]),
            targets=len({e.ip for e in endpoints[name]}),
            protocols=tuple(sorted(protocols[name])),
        )
        for name in grades
    ]
    rows.sort(key=lambda r: (Grade(r.grade).rank, -r.endpoints, r.suite))
    return rows
