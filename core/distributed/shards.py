"""A verification Plan split into Shards: host groups x port ranges, each one Celery task.

A Shard is self-contained JSON: the hosts, the port ranges, the claimed endpoints among
them (whose closed/filtered result refutes a claim), the probe options, and the part of
the job's scope that covers its hosts. The worker rebuilds a Plan and a Scope from it and
hands both to `core.pipeline.verify.verify`, whose scope gate refuses a shard naming a
host outside that scope: there is one gate, and every worker applies it.

Shard ids are a hash of what the shard probes, so the same work always has the same id:
(run_id, shard_id) is the key that makes a redelivered shard a no-op in the store.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from core.models import Endpoint, Transport
from core.pipeline.verify import Plan, VerifyOptions
from core.targets import IPNetwork, Scope

T = TypeVar("T")

HOSTS_PER_SHARD = 8
PORTS_PER_SHARD = 8192
"""Default shard shape. A full-range host is 8 shards: enough pieces for a few workers to
share one host's work, few enough that per-task overhead (a broker round trip, a store
transaction, a fingerprinting pass) stays small next to 8,192 probes per host."""


class ShardScope(BaseModel):
    """The part of the job's scope (targets minus excludes) that covers a shard's hosts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    hostnames: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @classmethod
    def covering(cls, scope: Scope, hosts: Iterable[str]) -> ShardScope:
        """Only the target networks holding one of `hosts`, and the excludes cutting them.

        A subset of the job's scope, so the gate on the worker can only be stricter; it
        keeps a message small when the job's target list is long.
        """
        addresses = [ipaddress.ip_address(h) for h in hosts]
        include = [net for net in scope.include if any(a in net for a in addresses)]
        exclude = [ex for ex in scope.exclude if any(ex.overlaps(net) for net in include)]
        names = {a.compressed: scope.hostnames.get(a.compressed) for a in addresses}
        return cls(
            include=tuple(net.with_prefixlen for net in include),
            exclude=tuple(net.with_prefixlen for net in exclude),
            hostnames={ip: tuple(n) for ip, n in names.items() if n},
        )

    def to_scope(self) -> Scope:
        def nets(values: Sequence[str]) -> list[IPNetwork]:
            return [ipaddress.ip_network(v) for v in values]

        return Scope(
            include=nets(self.include),
            exclude=nets(self.exclude),
            hostnames={ip: list(n) for ip, n in self.hostnames.items()},
        )


class Shard(BaseModel):
    """One host group x one port range of one run's verification, as sent to a worker."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: int
    shard_id: str
    transport: Transport
    hosts: tuple[str, ...]
    ports: tuple[tuple[int, int], ...]  # inclusive ranges, ascending
    claimed: tuple[tuple[str, int], ...] = ()  # (ip, port) claimed open by some source
    scope: ShardScope
    options: VerifyOptions = VerifyOptions()

    def port_list(self) -> list[int]:
        return [port for low, high in self.ports for port in range(low, high + 1)]

    def size(self) -> int:
        """Probes this shard sends at least once (hosts x ports)."""
        return len(self.hosts) * sum(high - low + 1 for low, high in self.ports)

    def plan(self) -> Plan:
        """The Plan a worker hands to `verify` (which gates it on `scope`)."""
        plan = Plan()
        table = plan.tcp if self.transport is Transport.TCP else plan.udp
        ports = set(self.port_list())
        for host in self.hosts:
            table[host] = set(ports)
        plan.claimed = {
            Endpoint(ip=ip, port=port, transport=self.transport) for ip, port in self.claimed
        }
        return plan

    def describe(self) -> str:
        """Short human form: `127.0.0.1 (+3 hosts) tcp 1-8192`."""
        hosts = self.hosts[0] + (f" (+{len(self.hosts) - 1} hosts)" if len(self.hosts) > 1 else "")
        ranges = ",".join(f"{lo}-{hi}" if hi > lo else str(lo) for lo, hi in self.ports[:3])
        more = ",..." if len(self.ports) > 3 else ""
        return f"{hosts} {self.transport.value} {ranges}{more}"


def _chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def port_ranges(ports: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """Sorted ports as inclusive runs: [1, 2, 3, 7] -> ((1, 3), (7, 7))."""
    runs: list[tuple[int, int]] = []
    for port in sorted(set(ports)):
        if runs and port == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], port)
        else:
            runs.append((port, port))
    return tuple(runs)


def shard_id(transport: Transport, hosts: Sequence[str], ranges: Sequence[tuple[int, int]]) -> str:
    """A stable id for this work: the same hosts and ports always give the same id."""
    text = json.dumps([transport.value, sorted(hosts), list(ranges)], separators=(",", ":"))
    return f"{transport.value}-{hashlib.sha256(text.encode()).hexdigest()[:20]}"


def _host_key(ip: str) -> tuple[int, int]:
    address = ipaddress.ip_address(ip)
    return address.version, int(address)


def split(
    plan: Plan,
    scope: Scope,
    run_id: int,
    options: VerifyOptions | None = None,
    *,
    hosts_per_shard: int = HOSTS_PER_SHARD,
    ports_per_shard: int = PORTS_PER_SHARD,
) -> list[Shard]:
    """The plan as shards: hosts sharing a port list, in groups, times ranges of ports.

    Every (host, port, transport) of the plan is in exactly one shard, and every claimed
    endpoint travels with the shard that probes it. Scope is not checked here: the
    caller gates the plan first (`check_scope`) and each worker gates its shard again.
    """
    if hosts_per_shard < 1 or ports_per_shard < 1:
        raise ValueError("hosts_per_shard and ports_per_shard must be at least 1")
    options = options or VerifyOptions()
    claimed: dict[tuple[Transport, str], set[int]] = {}
    for endpoint in plan.claimed:
        claimed.setdefault((endpoint.transport, endpoint.ip), set()).add(endpoint.port)
    shards: list[Shard] = []
    for transport, table in ((Transport.TCP, plan.tcp), (Transport.UDP, plan.udp)):
        by_ports: dict[tuple[int, ...], list[str]] = {}
        for ip, host_ports in table.items():
            if host_ports:
                by_ports.setdefault(tuple(sorted(host_ports)), []).append(ip)
        for ports, hosts in by_ports.items():
            for host_group in _chunks(sorted(hosts, key=_host_key), hosts_per_shard):
                covering = ShardScope.covering(scope, host_group)
                for port_group in _chunks(ports, ports_per_shard):
                    wanted = set(port_group)
                    ranges = port_ranges(port_group)
                    shards.append(
                        Shard(
                            run_id=run_id,
                            shard_id=shard_id(transport, host_group, ranges),
                            transport=transport,
                            hosts=tuple(host_group),
                            ports=ranges,
                            claimed=tuple(
                                (ip, port)
                                for ip in host_group
                                for port in sorted(claimed.get((transport, ip), set()) & wanted)
                            ),
                            scope=covering,
                            options=options,
                        )
                    )
    return shards
