"""Verify: probe in-scope endpoints ourselves and record what answered as active observations.

Two plans: a full scan (every in-scope host x the chosen ports, plus every claimed
endpoint) and a claims check (exactly the endpoints some source claimed). Either way,
`verify` is the one gate between a plan and the network: it refuses any host outside the
user's scope before a single packet leaves, even when a provider or an imported file named
it. Results are written to the store as they come, so an interrupted run keeps them.

What becomes an observation:
- every open port (fingerprinted), with the verifier as source;
- the closed/filtered result of every *claimed* endpoint (that is what refutes a claim);
  unclaimed closed ports are not stored: a full scan would write 65,535 rows a host;
- claimed endpoints on a SYN-ACK wall host: open|filtered, tagged `syn-ack-wall`
  (a host that answers on every port says nothing about any one of them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from core.errors import ScopeError
from core.models import Endpoint, Kind, Observation, PortState, Transport, utcnow
from core.store import Store
from core.targets import Scope
from core.verify.fingerprint import fingerprint, identify_udp
from core.verify.tcp import TcpScan, scan_tcp
from core.verify.tls import TlsProfile, enumerate_tls
from core.verify.tls.starttls import StartTls
from core.verify.udp import UdpScan, scan_udp

SOURCE = "verifier"


class ObservationSink(Protocol):
    """Where `verify` writes what it found: the Store itself, or a buffer that a Celery
    shard (core.distributed) commits together with its shard record."""

    def add_observations(self, run_id: int, observations: Iterable[Observation]) -> int: ...

    def save_tls_profile(self, run_id: int, profile: TlsProfile) -> None: ...


@dataclass(frozen=True)
class VerifyOptions:
    timeout: float = 1.0  # per connect / per datagram, before a retry
    retries: int = 1  # extra probes before a port is called filtered
    rate: float | None = None  # connects (and datagrams) per second, None: no cap
    max_in_flight: int = 4096
    per_host: int = 1024
    fingerprint: bool = True
    fingerprint_timeout: float = 5.0  # one endpoint, all its probes
    fingerprint_parallel: int = 32  # endpoints fingerprinted at once
    tls_enum: bool = True  # enumerate versions and suites wherever TLS was found
    tls_timeout: float = 5.0  # per TLS connection
    tls_parallel: int = 4  # TLS connections at once to one host


# Services that upgrade to TLS in-band: enumeration goes through their STARTTLS first.
_STARTTLS = {
    "smtp": StartTls.SMTP,
    "imap": StartTls.IMAP,
    "pop3": StartTls.POP3,
    "ftp": StartTls.FTP,
    "postgresql": StartTls.POSTGRES,
}
_USABLE_PROFILE = {"ok", "partial"}


@dataclass
class Plan:
    """What to probe: ports per host and transport, and which endpoints were claimed."""

    tcp: dict[str, set[int]] = field(default_factory=dict)
    udp: dict[str, set[int]] = field(default_factory=dict)
    claimed: set[Endpoint] = field(default_factory=set)
    out_of_scope: set[Endpoint] = field(default_factory=set)

    def add(self, endpoint: Endpoint) -> None:
        table = self.tcp if endpoint.transport is Transport.TCP else self.udp
        table.setdefault(endpoint.ip, set()).add(endpoint.port)

    @property
    def hosts(self) -> set[str]:
        return set(self.tcp) | set(self.udp)

    def size(self) -> int:
        return sum(map(len, self.tcp.values())) + sum(map(len, self.udp.values()))


def plan_claims(scope: Scope, claims: Iterable[Endpoint]) -> Plan:
    """Exactly the claimed endpoints that are in scope; the rest are set aside as such."""
    plan = Plan()
    for endpoint in claims:
        if endpoint.ip in scope:
            plan.claimed.add(endpoint)
            plan.add(endpoint)
        else:
            plan.out_of_scope.add(endpoint)
    return plan


def claimed_endpoints(store: Store, ips: Collection[str]) -> set[Endpoint]:
    """Endpoints some passive or imported source has ever claimed open, among `ips`."""
    return {
        endpoint
        for endpoint, observations in store.iter_endpoint_observations(ips)
        if any(o.kind is not Kind.ACTIVE and o.state is PortState.OPEN for o in observations)
    }


def plan_scan(
    scope: Scope,
    tcp_ports: Sequence[int],
    udp_ports: Sequence[int] = (),
    claims: Iterable[Endpoint] = (),
) -> Plan:
    """Every in-scope host x the given ports, plus the claimed endpoints."""
    plan = plan_claims(scope, claims)
    for ip in scope.addresses():
        if tcp_ports:
            plan.tcp.setdefault(ip, set()).update(tcp_ports)
        if udp_ports:
            plan.udp.setdefault(ip, set()).update(udp_ports)
    return plan


def _guard(plan: Plan, scope: Scope) -> None:
    """The scope gate: nothing outside the user's targets minus excludes is ever probed."""
    outside = sorted(ip for ip in plan.hosts if ip not in scope)
    if outside:
        raise ScopeError(f"refusing to probe {outside[0]}: it is not in the targets given")


def check_scope(plan: Plan, scope: Scope) -> None:
    """The scope gate, for a caller that hands the plan on (the celery executor refuses
    before submitting; each worker's `verify` applies the same gate again)."""
    _guard(plan, scope)


def _groups(table: dict[str, set[int]]) -> list[tuple[list[str], list[int]]]:
    """Hosts sharing one port list are scanned together (one pass of the scanner)."""
    by_ports: dict[tuple[int, ...], list[str]] = {}
    for ip, ports in table.items():
        by_ports.setdefault(tuple(sorted(ports)), []).append(ip)
    return [(hosts, list(ports)) for ports, hosts in by_ports.items()]


def _status_observation(
    endpoint: Endpoint, state: PortState, reason: str, *tags: str
) -> Observation:
    now = utcnow()
    return Observation(
        endpoint=endpoint,
        source=SOURCE,
        kind=Kind.ACTIVE,
        state=state,
        observed_at=now,
        fetched_at=now,
        tags=(f"reason:{reason}", *tags),
    )


@dataclass
class VerifyResult:
    open: int = 0
    observations: int = 0
    walls: list[str] = field(default_factory=list)
    tcp: list[TcpScan] = field(default_factory=list)
    udp: list[UdpScan] = field(default_factory=list)


async def _fingerprint_all(
    store: ObservationSink,
    run_id: int,
    endpoints: Sequence[Endpoint],
    scope: Scope,
    options: VerifyOptions,
    result: VerifyResult,
) -> None:
    limit = asyncio.Semaphore(options.fingerprint_parallel)
    # One TLS enumeration at a time per host (each with its own few connections): the
    # same per-host restraint as the scanner's.
    tls_turn: dict[str, asyncio.Semaphore] = {}

    async def one(endpoint: Endpoint) -> None:
        async with limit:
            names = scope.hostnames.get(endpoint.ip, [])
            if options.fingerprint:
                found = await fingerprint(
                    endpoint.ip, endpoint.port, hostnames=names, timeout=options.fingerprint_timeout
                )
                obs = found.to_observation(endpoint, hostnames=names)
                starttls = _STARTTLS.get(found.service or "") if found.tls is None else None
                if options.tls_enum and (found.tls is not None or starttls is not None):
                    async with tls_turn.setdefault(endpoint.ip, asyncio.Semaphore(1)):
                        profile = await enumerate_tls(
                            endpoint.ip,
                            endpoint.port,
                            sni=names[0] if names else None,
                            starttls=starttls,
                            timeout=options.tls_timeout,
                            max_parallel=options.tls_parallel,
                            cert=found.tls.cert if found.tls is not None else None,
                        )
                    if profile.outcome in _USABLE_PROFILE:
                        store.save_tls_profile(run_id, profile)
                        obs = obs.model_copy(update={"tls": profile.summary()})
            else:
                obs = _status_observation(endpoint, PortState.OPEN, "syn-ack")
        result.observations += store.add_observations(run_id, [obs])

    async with asyncio.TaskGroup() as group:
        for endpoint in endpoints:
            group.create_task(one(endpoint))


async def verify(
    store: ObservationSink,
    run_id: int,
    plan: Plan,
    scope: Scope,
    options: VerifyOptions | None = None,
) -> VerifyResult:
    """Probe the plan (after the scope gate) and store what was found."""
    options = options or VerifyOptions()
    _guard(plan, scope)
    result = VerifyResult()
    for hosts, ports in _groups(plan.tcp):
        scan = await asyncio.to_thread(
            scan_tcp,
            hosts,
            ports,
            timeout=options.timeout,
            retries=options.retries,
            max_in_flight=options.max_in_flight,
            per_host=options.per_host,
            rate=options.rate,
        )
        result.tcp.append(scan)
        found: list[Endpoint] = []
        statuses: list[Observation] = []
        for host in scan.hosts:
            claimed = [
                e for e in plan.claimed if e.ip == host.host and e.transport is Transport.TCP
            ]
            if host.wall:
                result.walls.append(host.host)
                statuses += [
                    _status_observation(e, PortState.OPEN_FILTERED, "syn-ack-wall", "syn-ack-wall")
                    for e in claimed
                ]
                continue
            opened = set(host.open)
            found += [Endpoint(ip=host.host, port=p, transport=Transport.TCP) for p in host.open]
            for endpoint in claimed:
                if endpoint.port in opened:
                    continue
                if endpoint.port in host.filtered:
                    reason = host.filtered[endpoint.port]
                    statuses.append(_status_observation(endpoint, PortState.FILTERED, reason))
                else:
                    statuses.append(_status_observation(endpoint, PortState.CLOSED, "refused"))
        result.observations += store.add_observations(run_id, statuses)
        result.open += len(found)
        await _fingerprint_all(store, run_id, found, scope, options, result)
    for hosts, ports in _groups(plan.udp):
        uscan = await asyncio.to_thread(
            scan_udp,
            hosts,
            ports,
            timeout=options.timeout,
            retries=options.retries,
            rate=options.rate,
        )
        result.udp.append(uscan)
        observations = _udp_observations(uscan, plan.claimed, scope)
        result.open += sum(1 for o in observations if o.state is PortState.OPEN)
        result.observations += store.add_observations(run_id, observations)
    return result


def _udp_observations(
    scan: UdpScan, claimed: Collection[Endpoint], scope: Scope
) -> list[Observation]:
    out: list[Observation] = []
    for host in scan.hosts:
        names = tuple(scope.hostnames.get(host.host, []))
        for port, probe in host.ports.items():
            endpoint = Endpoint(ip=host.host, port=port, transport=Transport.UDP)
            if probe.state is PortState.OPEN:
                found = identify_udp(port, probe.reply)
                if found is not None:
                    out.append(found.to_observation(endpoint, hostnames=names))
                else:
                    out.append(_status_observation(endpoint, PortState.OPEN, probe.reason))
            elif endpoint in claimed:
                out.append(_status_observation(endpoint, probe.state, probe.reason))
    return out
