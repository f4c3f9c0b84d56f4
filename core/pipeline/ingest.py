"""Ingest: ask every enabled source about the scope, store raw records and observations.

Sources run concurrently, each in its own task; one failing is recorded on its SourceRun
and the others go on. Everything is written to the store as it arrives (raw payload first,
then its observations), so an interrupted run keeps all it already paid for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from core.credits import CostEstimate
from core.errors import SourceError
from core.models import Observation, RawRecord, RunStatus, SourceRun, replaced
from core.pipeline.harmonize import harmonize
from core.store import Store
from core.targets import Job, Scope

log = logging.getLogger(__name__)


class PassiveSource(Protocol):
    """What the pipeline needs of a connector."""

    @property
    def name(self) -> str: ...
    @property
    def search_threshold(self) -> int: ...
    @property
    def credits_spent(self) -> float: ...
    @property
    def requests_sent(self) -> int: ...
    def estimate(self, job: Job) -> CostEstimate: ...
    def collect(self, job: Job) -> AsyncIterator[RawRecord]: ...
    @staticmethod
    def normalize(raw: RawRecord) -> list[Observation]: ...


class Progress(Protocol):
    """Progress reporting, implemented by the CLI (or not at all)."""

    def start(self, source: str, total: int) -> None: ...
    def advance(self, source: str, records: int, observations: int) -> None: ...
    def finish(self, source: str, status: RunStatus) -> None: ...


class _NoProgress:
    def start(self, source: str, total: int) -> None:
        pass

    def advance(self, source: str, records: int, observations: int) -> None:
        pass

    def finish(self, source: str, status: RunStatus) -> None:
        pass


@dataclass
class _Tally:
    source: str
    records: int = 0
    observations: int = 0
    errors: list[str] = field(default_factory=list)

    def snapshot(self, src: PassiveSource, status: RunStatus) -> SourceRun:
        return SourceRun(
            source=self.source,
            status=status,
            requests=src.requests_sent,
            records=self.records,
            observations=self.observations,
            credits_spent=src.credits_spent,
            errors=tuple(self.errors),
        )


def estimate(sources: Sequence[PassiveSource], scope: Scope) -> list[CostEstimate]:
    """What a run would ask of each source and cost: no request is sent."""
    return [src.estimate(scope.job(src.search_threshold)) for src in sources]


async def _run_source(
    store: Store, run_id: int, src: PassiveSource, scope: Scope, progress: Progress
) -> SourceRun:
    job = scope.job(src.search_threshold)
    tally = _Tally(src.name)
    if not job.ips and not job.networks:
        # Only loopback/private addresses in scope: no internet scanner has seen them.
        tally.errors.append("nothing to ask: no target is an internet address")
        skipped = tally.snapshot(src, RunStatus.SKIPPED)
        store.save_source_run(run_id, skipped)
        return skipped
    progress.start(src.name, len(job.ips) + len(job.networks))
    store.save_source_run(run_id, tally.snapshot(src, RunStatus.RUNNING))
    status = RunStatus.OK
    try:
        async for raw in src.collect(job):
            raw_id = store.add_raw(run_id, raw)
            tally.records += 1
            try:
                observations = src.normalize(raw)
            except SourceError as exc:
                # Schema drift in one record must not cost the others: keep the raw payload
                # (a fixed normalizer can re-run on it) and say what went wrong.
                tally.errors.append(str(exc))
                status = RunStatus.PARTIAL
                observations = []
            kept = [
                replaced(harmonize(obs), raw_id=raw_id)
                for obs in observations
                if obs.endpoint.ip in scope  # passive data names third parties: not ours
            ]
            tally.observations += store.add_observations(run_id, kept)
            progress.advance(src.name, 1, len(kept))
    except SourceError as exc:
        log.warning("%s", exc)
        tally.errors.append(exc.reason)
        status = RunStatus.FAILED
    except asyncio.CancelledError:
        store.save_source_run(run_id, tally.snapshot(src, RunStatus.INTERRUPTED))
        progress.finish(src.name, RunStatus.INTERRUPTED)
        raise
    result = tally.snapshot(src, status)
    store.save_source_run(run_id, result)
    progress.finish(src.name, status)
    return result


async def ingest(
    store: Store,
    run_id: int,
    sources: Sequence[PassiveSource],
    scope: Scope,
    progress: Progress | None = None,
) -> list[SourceRun]:
    """Run every source over the scope concurrently; returns each source's outcome."""
    progress = progress or _NoProgress()
    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(_run_source(store, run_id, src, scope, progress)) for src in sources
        ]
    return [task.result() for task in tasks]


def overall_status(results: Sequence[SourceRun]) -> RunStatus:
    """OK when every source that ran succeeded; FAILED when none did; else PARTIAL."""
    ran = [r for r in results if r.status is not RunStatus.SKIPPED]
    if not ran:
        return RunStatus.OK
    failed = [r for r in ran if r.status is RunStatus.FAILED]
    if len(failed) == len(ran):
        return RunStatus.FAILED
    if failed or any(r.status is RunStatus.PARTIAL for r in ran):
        return RunStatus.PARTIAL
    return RunStatus.OK
