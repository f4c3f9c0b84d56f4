"""One shard's work on a worker: the scope gate, the probes, and one store transaction.

Celery-free, so it is tested directly. The order is what makes a shard idempotent:
1. a shard whose record is already in the store is not probed again;
2. `verify` (the one scope gate, then the probes) writes into a buffer, not the store;
3. the buffered observations, TLS profiles and the shard's record are committed
   together, and the commit is a no-op if another delivery of the same shard got there
   first.
A worker killed anywhere before step 3 commits leaves nothing behind, so Celery can hand
the shard to another worker (acks late) and nothing is counted twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from core.distributed.shards import Shard
from core.distributed.vantage import stamp, vantage_of
from core.errors import ScopeError
from core.models import Observation
from core.pipeline.verify import verify
from core.store import Store
from core.store.shards import ShardRecord
from core.verify.tls import TlsProfile


class Status(StrEnum):
    STORED = "stored"  # probed now, and this delivery's results are the stored ones
    ALREADY = "already-stored"  # an earlier delivery of the same shard stored it
    REFUSED = "refused"  # a host outside the shard's scope: nothing was probed
    FAILED = "failed"  # an error on the worker (the reason says which)


@dataclass(frozen=True)
class ShardOutcome:
    """What a shard task reports back to the submitter (as a JSON-able dict)."""

    shard_id: str
    status: Status
    worker: str = ""
    vantage: str = ""
    observations: int = 0
    open_ports: int = 0
    walls: tuple[str, ...] = ()
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["status"] = self.status.value
        data["walls"] = list(self.walls)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardOutcome:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["status"] = Status(values["status"])
        values["walls"] = tuple(values.get("walls", ()))
        return cls(**values)

    @classmethod
    def of_record(cls, record: ShardRecord, status: Status) -> ShardOutcome:
        return cls(
            shard_id=record.shard_id,
            status=status,
            worker=record.worker,
            vantage=record.vantage,
            observations=record.observations,
            open_ports=record.open_ports,
            walls=record.walls,
        )


@dataclass
class _Buffer:
    """An ObservationSink that keeps what `verify` finds until the shard commits."""

    items: list[Observation] = field(default_factory=list)
    tls_profiles: list[TlsProfile] = field(default_factory=list)

    def add_observations(self, run_id: int, observations: Iterable[Observation]) -> int:
        batch = list(observations)
        self.items.extend(batch)
        return len(batch)

    def save_tls_profile(self, run_id: int, profile: TlsProfile) -> None:
        self.tls_profiles.append(profile)


def run_shard(
    shard: Shard,
    store: Store,
    *,
    worker: str,
    vantage_name: str,
    rate: float | None = None,
) -> ShardOutcome:
    """Probe one shard (behind the scope gate) and store its results exactly once.

    `rate` is this worker process's own cap on probes per second; the lower of it and
    the job's rate applies.
    """
    done = store.shard_results(shard.run_id, shard.shard_id).get(shard.shard_id)
    if done is not None:
        return ShardOutcome.of_record(done, Status.ALREADY)
    options = shard.options
    if rate is not None:
        options = dataclasses.replace(options, rate=min(rate, options.rate or rate))
    buffer = _Buffer()
    try:
        scope = shard.scope.to_scope()
        found = asyncio.run(verify(buffer, shard.run_id, shard.plan(), scope, options))
    except ScopeError as exc:
        return ShardOutcome(shard.shard_id, Status.REFUSED, worker=worker, reason=str(exc))
    vantages = sorted({vantage_of(vantage_name, host) for host in shard.hosts})
    record = ShardRecord(
        shard_id=shard.shard_id,
        worker=worker,
        vantage=",".join(vantages)[:255],
        observations=len(buffer.items),
        open_ports=found.open,
        walls=tuple(found.walls),
    )
    observations = stamp(buffer.items, vantage_name)
    if store.add_shard(shard.run_id, record, observations, buffer.tls_profiles):
        return ShardOutcome.of_record(record, Status.STORED)
    # Another delivery of this shard committed while this one was probing.
    winner = store.shard_results(shard.run_id, shard.shard_id)[shard.shard_id]
    return ShardOutcome.of_record(winner, Status.ALREADY)
