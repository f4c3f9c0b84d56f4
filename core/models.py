"""portintel's own data types: what every stage of the pipeline passes to the next.

An `Endpoint` (ip, port, transport) is the key everything merges on. An `Observation` is
one source's claim about one endpoint at one time; a `Service` is the reconciled belief
about that endpoint built from every observation of it. Provider response models live in
their connectors and use `extra="ignore"`; ours forbid unknown fields so a typo is an error.
"""

from __future__ import annotations

import ipaddress
import socket
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from core.certificate import CertSummary as CertSummary  # re-exported: a model's field
from core.certificate import as_utc

BANNER_CAP = 2048
"""Banners are capped before they are stored: hostile services send endless ones."""


def _canonical_ip(value: str) -> str:
    if _already_canonical(value):
        return value
    return ipaddress.ip_address(value.strip()).compressed


def _already_canonical(value: str) -> bool:
    """Is `value` an address written exactly as `ipaddress` would write it?

    The fast path of almost every address: ipaddress costs 3-10 us a call, most of
    validating an Observation, while a C round trip (text -> bytes -> text) costs well
    under one. A canonical address comes back unchanged; anything unusual (spaces,
    leading zeros, upper case, a scope, a bad address) does not, and goes to ipaddress
    to be accepted or rejected exactly as before.
    """
    if ":" not in value:
        family = socket.AF_INET
    elif "." in value:
        return False  # an embedded IPv4 address: C and ipaddress write those differently
    else:
        family = socket.AF_INET6
    try:
        return socket.inet_ntop(family, socket.inet_pton(family, value)) == value
    except (OSError, ValueError):  # ValueError: an embedded NUL
        return False


IpStr = Annotated[str, AfterValidator(_canonical_ip)]
UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as its field values: pydantic's own __getstate__/__setstate__ path costs
        # more per Observation than normalizing one, which matters when results come back
        # from worker processes (core.parallel). Unpickling does not validate, as with
        # pydantic's own: the values were validated when the model was first built.
        return (_unpickle, (type(self), tuple(self.__dict__.values()), _shared(self)))


_FIELD_SETS: dict[frozenset[str], frozenset[str]] = {}


def _shared(model: BaseModel) -> frozenset[str]:
    """The model's fields set as one shared object per distinct set: pickle writes an
    object it has already written as a back-reference, so thousands of observations
    with the same fields set carry it once."""
    fields = frozenset(model.__pydantic_fields_set__)
    if len(_FIELD_SETS) < 4096:  # a bound, should a caller set fields in every order
        return _FIELD_SETS.setdefault(fields, fields)
    return _FIELD_SETS.get(fields, fields)


def _unpickle(cls: type[M], values: tuple[Any, ...], fields_set: frozenset[str]) -> M:
    return trusted(cls, dict(zip(cls.__pydantic_fields__, values, strict=True)), set(fields_set))


M = TypeVar("M", bound=BaseModel)


def trusted(cls: type[M], values: dict[str, Any], fields_set: set[str] | None = None) -> M:
    """An instance of `cls` from values known to be valid, without validating them again.

    For values that come from a validated instance (a copy with a field changed, a row
    the store wrote, a pickle): `values` must hold every field, in declaration order,
    already of its type; `fields_set` defaults to all of them. What `model_construct`
    promises, without its per-field Python loop.
    """
    obj = cls.__new__(cls)
    object.__setattr__(obj, "__dict__", values)
    object.__setattr__(
        obj, "__pydantic_fields_set__", set(values) if fields_set is None else fields_set
    )
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


def replaced(model: M, **changes: Any) -> M:
    """`model.model_copy(update=changes)`, for hot loops: the same copy (the changes are
    not validated either), without model_copy's generic Python around it."""
    if not changes.keys() <= type(model).__pydantic_fields__.keys():
        unknown = ", ".join(sorted(changes.keys() - type(model).__pydantic_fields__.keys()))
        raise ValueError(f"{type(model).__name__} has no field {unknown}")
    values = model.__dict__.copy()
    values.update(changes)  # existing keys keep their place: declaration order holds
    return trusted(type(model), values, model.__pydantic_fields_set__ | changes.keys())


class Transport(StrEnum):
    TCP = "tcp"
    UDP = "udp"


class Kind(StrEnum):
    """How a source came to its claim."""

    PASSIVE = "passive"  # an internet scanner's database
    ACTIVE = "active"  # our own probe
    IMPORTED = "imported"  # a third-party findings file


class Evidence(StrEnum):
    """How much a claim is worth on its own.

    InternetDB gives ports without transport or time: a hint, not a sighting.
    """

    STRONG = "strong"
    WEAK = "weak"


class PortState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    FILTERED = "filtered"
    OPEN_FILTERED = "open|filtered"


class Status(StrEnum):
    """Reconciliation status of an endpoint (ARCHITECTURE.md)."""

    CONFIRMED = "confirmed"
    ACTIVE_ONLY = "active-only"
    REFUTED = "refuted"
    UNVERIFIED = "unverified"
    CDN_EDGE = "cdn-edge"
    CONFLICT = "conflict"
    OUT_OF_SCOPE = "out-of-scope"


class Colour(StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


class Endpoint(Frozen):
    ip: IpStr
    port: int = Field(ge=0, le=65535)
    transport: Transport = Transport.TCP

    def __str__(self) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{host}:{self.port}/{self.transport}"

    @property
    def sort_key(self) -> tuple[int, int, int, str]:
        addr = ipaddress.ip_address(self.ip)
        return (addr.version, int(addr), self.port, self.transport.value)


class Vuln(Frozen):
    cve: str
    cvss: float | None = None


class TlsSummary(Frozen):
    """What a single handshake (a provider's, or our first probe's) showed."""

    versions: tuple[str, ...] = ()  # versions known to be accepted
    cipher: str | None = None  # negotiated suite, IANA name where known
    cert: CertSummary | None = None


class Observation(Frozen):
    """One claim by one source about one endpoint at one time."""

    endpoint: Endpoint
    source: str  # shodan, censys, netlas, internetdb, verifier, import:nmap, ...
    kind: Kind
    evidence: Evidence = Evidence.STRONG
    state: PortState = PortState.OPEN
    observed_at: UtcDatetime | None = None  # when the source saw it (None: it does not say)
    fetched_at: UtcDatetime  # when we got the claim
    service: str | None = None  # canonical service name (core.naming)
    product: str | None = None
    version: str | None = None
    cpes: tuple[str, ...] = ()
    banner: str | None = Field(default=None, max_length=BANNER_CAP)
    http_server: str | None = None
    http_title: str | None = None
    http_status: int | None = None
    tls: TlsSummary | None = None
    vulns: tuple[Vuln, ...] = ()
    hostnames: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()  # cdn, honeypot, cloud, waf:<name>, ...
    org: str | None = None
    asn: str | None = None
    raw_id: int | None = None  # the stored raw payload this came from

    @property
    def seen_at(self) -> datetime:
        """The best time we have for this claim: the source's, else ours."""
        return self.observed_at or self.fetched_at


class SourceSeen(Frozen):
    source: str
    first_seen: UtcDatetime
    last_seen: UtcDatetime
    state: PortState  # what this source said most recently


class Conflict(Frozen):
    field: str  # service, product or version
    values: dict[str, str]  # source -> the value it claims


class Service(Frozen):
    """The reconciled belief about one endpoint."""

    endpoint: Endpoint
    state: PortState
    status: Status
    service: str | None = None
    product: str | None = None
    version: str | None = None
    chosen_from: str | None = None  # the source whose service/product/version won
    cpes: tuple[str, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    first_seen: UtcDatetime
    last_seen: UtcDatetime
    per_source: tuple[SourceSeen, ...] = ()
    hostnames: tuple[str, ...] = ()
    vulns: tuple[Vuln, ...] = ()
    tags: tuple[str, ...] = ()
    org: str | None = None
    http_title: str | None = None
    banner: str | None = None
    tls: TlsSummary | None = None
    colour: Colour | None = None

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(s.source for s in self.per_source)


class RunStatus(StrEnum):
    RUNNING = "running"
    OK = "ok"
    PARTIAL = "partial"  # some source failed, the others completed
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"  # not configured (no key)


class SourceRun(Frozen):
    """What one source was asked in a run and how it went."""

    source: str
    status: RunStatus
    requests: int = 0
    records: int = 0
    observations: int = 0
    credits_spent: float = 0
    errors: tuple[str, ...] = ()


class Run(Frozen):
    id: int
    started_at: UtcDatetime
    finished_at: UtcDatetime | None = None
    command: str
    targets: tuple[str, ...] = ()
    status: RunStatus = RunStatus.RUNNING
    sources: tuple[SourceRun, ...] = ()


class RawRecord(Frozen):
    """A provider payload as received: stored so a better normalizer can re-run for free."""

    source: str
    endpoint_kind: str  # which API call: host, search, ...
    query: str  # the ip or query asked (never a key)
    fetched_at: UtcDatetime
    payload: Any


def utcnow() -> datetime:
    return datetime.now(UTC)
