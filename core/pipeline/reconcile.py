"""Reconcile: every observation of one endpoint, from every source and run -> one Service.

This is the only merge in portintel: passive claims, our own probes and imported findings
all go through `reconcile`, which is pure and gives the same Service whatever order its
observations come in. `reconcile_all` streams a store's history through it.

"Newest" below means latest `seen_at` (the source's time, else ours). Ties are broken by
latest `fetched_at`, then in favour of an open claim (a port someone saw open is the
safer thing to report), then by source and names, so equal inputs give equal outputs.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Protocol

from core.errors import StoreError
from core.models import (
    Conflict,
    Endpoint,
    Evidence,
    Kind,
    Observation,
    PortState,
    Service,
    SourceSeen,
    Status,
    TlsSummary,
    Vuln,
    trusted,
)
from core.naming import canonical_service
from core.parallel import ordered_map, relaxed_gc
from core.risk.cdn import default_cdns
from core.risk.scoring import annotate

# Who is believed about the service: our own probe, then someone's scan file, then the
# internet scanners' databases; strong evidence before weak within each.
_KIND_RANK = {Kind.ACTIVE: 0, Kind.IMPORTED: 1, Kind.PASSIVE: 2}
_EVIDENCE_RANK = {Evidence.STRONG: 0, Evidence.WEAK: 1}
_STATE_TIE = {
    PortState.OPEN: 3,
    PortState.OPEN_FILTERED: 2,
    PortState.FILTERED: 1,
    PortState.CLOSED: 0,
}
_CONFLICT_FIELDS = ("service", "product", "version")
# The fields a Service built from a dict of all the others would record as set.
_VALIDATED_FIELDS = frozenset(Service.model_fields) - {"colour"}


def _recency(obs: Observation) -> tuple[datetime, datetime, int, str, str, str, str]:
    return (
        obs.observed_at or obs.fetched_at,
        obs.fetched_at,
        _STATE_TIE[obs.state],
        obs.source,
        obs.service or "",
        obs.product or "",
        obs.version or "",
    )


def _rank(obs: Observation) -> tuple[int, int]:
    return _KIND_RANK[obs.kind], _EVIDENCE_RANK[obs.evidence]


def _same(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.casefold() == b.casefold()


class _Folded:
    """One pass over an endpoint's observations, newest first: what the rules read."""

    def __init__(self, newest_first: Sequence[Observation]) -> None:
        self.endpoint = newest_first[0].endpoint
        self.by_source: dict[str, list[Observation]] = {}  # each newest first
        self.probe: Observation | None = None  # our newest probe
        self.claimed_open = False  # some passive or imported source says open
        self.open_claims: list[Observation] = []
        self.tags: set[str] = set()
        self.cpes: set[str] = set()
        self.hostnames: set[str] = set()
        self.vulns: dict[str, Vuln] = {}
        self.org: str | None = None
        self.http_title: str | None = None
        self.banner: str | None = None
        self.tls: TlsSummary | None = None
        for obs in newest_first:
            self.by_source.setdefault(obs.source, []).append(obs)
            if obs.state is PortState.OPEN:
                self.open_claims.append(obs)
            if obs.kind is Kind.ACTIVE:
                if self.probe is None:
                    self.probe = obs
            elif obs.state is PortState.OPEN:
                self.claimed_open = True
            self.tags.update(obs.tags)
            self.cpes.update(obs.cpes)
            self.hostnames.update(obs.hostnames)
            for vuln in obs.vulns:
                self._add_vuln(vuln)
            # The first one met is the newest that has one.
            if self.org is None:
                self.org = obs.org
            if self.http_title is None:
                self.http_title = obs.http_title
            if self.banner is None:
                self.banner = obs.banner
            if self.tls is None:
                self.tls = obs.tls

    def _add_vuln(self, vuln: Vuln) -> None:
        known = self.vulns.get(vuln.cve)
        if known is None or (
            vuln.cvss is not None and (known.cvss is None or known.cvss < vuln.cvss)
        ):
            self.vulns[vuln.cve] = vuln

    def newest_values(self, field: str) -> dict[str, str]:
        """Each source's newest non-null value of `field`, sources in name order."""
        values: dict[str, str] = {}
        for source in sorted(self.by_source):
            for obs in self.by_source[source]:
                value = getattr(obs, field)
                if value is not None:
                    values[source] = value
                    break
        return values


def _per_source(folded: _Folded) -> tuple[SourceSeen, ...]:
    """Each source's first and last sighting and newest state, sources in name order."""
    return tuple(
        trusted(
            SourceSeen,
            {
                "source": source,
                "first_seen": group[-1].seen_at,  # newest first, so the last is the oldest
                "last_seen": group[0].seen_at,
                "state": group[0].state,
            },
        )
        for source, group in sorted(folded.by_source.items())
    )


def _conflicts(folded: _Folded) -> tuple[Conflict, ...]:
    """A Conflict for each field the sources' newest claims disagree on."""
    conflicts: list[Conflict] = []
    for field in _CONFLICT_FIELDS:
        values = folded.newest_values(field)
        if len({value.casefold() for value in values.values()}) > 1:
            conflicts.append(trusted(Conflict, {"field": field, "values": values}))
    return tuple(conflicts)


def _services_disagree(folded: _Folded) -> bool:
    """Do the sources' newest canonical service names differ? Strong evidence only."""
    names = set()
    for group in folded.by_source.values():
        for obs in group:
            if obs.evidence is Evidence.STRONG and (name := canonical_service(obs.service)):
                names.add(name)
                break
    return len(names) > 1


def _cdn_edge(folded: _Folded) -> bool:
    """A port CDN edges answer on, at an address in a CDN's ranges or tagged as a CDN.

    A database port on a CDN-tagged address is not an edge: it keeps its own status.
    """
    return default_cdns().edge_for(folded.endpoint, folded.tags) is not None


def _state_and_status(folded: _Folded, newest: Observation) -> tuple[PortState, Status]:
    probe = folded.probe
    if probe is None:
        state = PortState.OPEN if folded.claimed_open else newest.state
        if _cdn_edge(folded):
            return state, Status.CDN_EDGE
        if _services_disagree(folded):
            return state, Status.CONFLICT
        return state, Status.UNVERIFIED
    # Our newest probe decides the state; the claims decide what that means.
    if probe.state is PortState.OPEN:
        if not folded.claimed_open:
            return probe.state, Status.ACTIVE_ONLY
        return probe.state, Status.CDN_EDGE if _cdn_edge(folded) else Status.CONFIRMED
    if probe.state is PortState.CLOSED:
        # Any other open claim is refuted: a provider's, an import's, or an older probe's.
        refuted = any(obs is not probe for obs in folded.open_claims)
        return probe.state, Status.REFUTED if refuted else Status.ACTIVE_ONLY
    return probe.state, Status.UNVERIFIED  # filtered: the probe could not tell


def _choose(newest_first: Sequence[Observation]) -> tuple[Observation | None, str | None]:
    """The observation whose service/product wins, and the version to report with it."""
    # sorted() is stable: within a rank the newest stays first.
    ranked = sorted((o for o in newest_first if o.service or o.product), key=_rank)
    if not ranked:
        return None, None
    winner = ranked[0]
    if winner.version is not None:
        return winner, winner.version
    # A version only carries over to the same service and product: nginx's version
    # says nothing about the Apache another source saw.
    for other in ranked[1:]:
        if (
            other.version is not None
            and _same(other.service, winner.service)
            and _same(other.product, winner.product)
        ):
            return winner, other.version
    return winner, None


def reconcile(observations: Sequence[Observation]) -> Service:
    """The reconciled Service of one endpoint from all of its observations, in any order.

    Raises ValueError for an empty sequence or observations of different endpoints.
    """
    if not observations:
        raise ValueError("reconcile needs at least one observation")
    endpoint = observations[0].endpoint
    for obs in observations:
        if obs.endpoint is not endpoint and obs.endpoint != endpoint:
            raise ValueError(f"observations of {obs.endpoint} mixed with {endpoint}")
    newest_first = sorted(observations, key=_recency, reverse=True)
    folded = _Folded(newest_first)
    state, status = _state_and_status(folded, newest_first[0])
    winner, version = _choose(newest_first)
    seen = folded.open_claims or newest_first  # when was it open; else when was it seen
    banner = winner.banner if winner is not None and winner.banner is not None else folded.banner
    # Built without validating again: every value comes from validated observations and
    # is of its field's type by construction, and validation would cost more than all the
    # rest of reconcile. `trusted` wants every field, in the model's declaration order.
    return trusted(
        Service,
        {
            "endpoint": endpoint,
            "state": state,
            "status": status,
            "service": winner.service if winner else None,
            "product": winner.product if winner else None,
            "version": version,
            "chosen_from": winner.source if winner else None,
            "cpes": tuple(sorted(folded.cpes)),
            "conflicts": _conflicts(folded),
            "first_seen": seen[-1].seen_at,
            "last_seen": seen[0].seen_at,
            "per_source": _per_source(folded),
            "hostnames": tuple(sorted(folded.hostnames)),
            "vulns": tuple(folded.vulns[cve] for cve in sorted(folded.vulns)),
            "tags": tuple(sorted(folded.tags)),
            "org": folded.org,
            "http_title": folded.http_title,
            "banner": banner,
            "tls": folded.tls,
            "colour": None,  # core.risk.scoring.annotate's to set
        },
        set(_VALIDATED_FIELDS),
    )


class ServiceStore(Protocol):
    """What `reconcile_all` needs of a store (core.store.Store provides it)."""

    @property
    def shareable(self) -> bool: ...

    def release(self) -> None: ...

    def reopen(self) -> ServiceStore: ...

    def address_shares(
        self, ips: Collection[str] | None, observations: int
    ) -> Iterator[list[str]]: ...

    def iter_endpoint_observations(
        self, ips: Collection[str] | None = None
    ) -> Iterator[tuple[Endpoint, list[Observation]]]: ...

    def save_services(self, run_id: int, services: Iterable[Service]) -> int: ...


SHARE = 50_000
"""Observations per share of the work a worker process takes at a time: a second or two
of it, so shares balance across workers and an interruption waits for little."""


def reconcile_all(
    store: ServiceStore, run_id: int, ips: Collection[str] | None = None, *, workers: int = 1
) -> int:
    """Reconcile every endpoint in the store's history (or those of `ips`) into run `run_id`.

    Streams: one endpoint's observations are in memory at a time, and the services are
    written in the store's batches as they are made. Returns how many were saved.

    With `workers` > 1 the addresses are cut into shares that many processes reconcile
    side by side, each reading and writing the database itself (only counts come back).
    An endpoint lives in one share and reconcile is pure, so the services are the same.
    The shares hold the addresses in scope, as `ips` does. Less than two shares of work,
    or a store no other process can open (in-memory SQLite), is reconciled here.
    """
    if workers > 1 and store.shareable:
        shares = list(store.address_shares(ips, SHARE))
        if len(shares) > 1:
            return _in_workers(store, run_id, shares, workers)
    services = (reconcile(group) for _, group in store.iter_endpoint_observations(ips))
    with relaxed_gc():  # a bulk loop: see core.parallel
        # Scoring's first step rides along: each service is stored with its risk colour.
        return store.save_services(run_id, annotate(services))


def _in_workers(store: ServiceStore, run_id: int, shares: list[list[str]], workers: int) -> int:
    store.release()  # the workers are forked: no open connection may cross into them
    saved = 0
    for result in ordered_map(
        _reconcile_share,
        shares,
        workers=min(workers, len(shares)),
        initializer=_open_share_store,
        initargs=(store, run_id),
    ):
        if isinstance(result, str):
            raise StoreError(result)
        saved += result
    return saved


# A worker process's own connection to the store, opened once per worker after the fork.
_share_store: ServiceStore | None = None
_share_run = 0


def _open_share_store(store: ServiceStore, run_id: int) -> None:
    global _share_store, _share_run
    _share_store, _share_run = store.reopen(), run_id


def _reconcile_share(ips: list[str]) -> int | str:
    """One share, in a worker: the count saved, or what went wrong (as text)."""
    assert _share_store is not None, "the worker's initializer opens the store"
    try:
        return reconcile_all(_share_store, _share_run, ips)
    except StoreError as exc:
        return str(exc)
