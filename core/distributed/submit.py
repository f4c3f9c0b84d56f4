"""The submitting side of a distributed verification: send the shards, follow them to the
end, and check that every shard a worker reported is really in this store.

Progress comes from the Celery result backend (one outcome per shard, in completion
order). The store is the ground truth: a worker that wrote to another database would
report success while this store stays empty, so the job ends by reading the shard
records back and naming any that are missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError
from kombu.utils.url import maybe_sanitize_url

from core.distributed.shards import HOSTS_PER_SHARD, PORTS_PER_SHARD, Shard, split
from core.distributed.tasks import QUEUE, TASK
from core.distributed.work import ShardOutcome, Status
from core.errors import ConfigError
from core.pipeline.verify import Plan, VerifyOptions, check_scope
from core.store import Store
from core.targets import Scope

BROKER_TIMEOUT = 5.0  # seconds to reach the broker before the job is refused
POLL_INTERVAL = 0.25  # seconds between looks at the result backend (one GET per open shard)
PING_TIMEOUT = 1.0

Progress = Callable[[int, int, Shard, ShardOutcome], None]
Note = Callable[[str], None]


@dataclass
class JobResult:
    """How the shards of one job ended."""

    shards: int = 0
    outcomes: list[ShardOutcome] = field(default_factory=list)

    @property
    def stored(self) -> list[ShardOutcome]:
        return [o for o in self.outcomes if o.status in (Status.STORED, Status.ALREADY)]

    @property
    def failed(self) -> list[ShardOutcome]:
        return [o for o in self.outcomes if o.status not in (Status.STORED, Status.ALREADY)]

    @property
    def open_ports(self) -> int:
        return sum(o.open_ports for o in self.stored)

    @property
    def observations(self) -> int:
        return sum(o.observations for o in self.stored)

    @property
    def walls(self) -> list[str]:
        return sorted({wall for o in self.stored for wall in o.walls})

    @property
    def workers(self) -> list[str]:
        return sorted({o.worker for o in self.stored})


def task_id(shard: Shard) -> str:
    """Celery task id of a shard: stable, so a resubmission finds the same result."""
    return f"portintel-{shard.run_id}-{shard.shard_id}"


def _outcome(shard: Shard, result: Any) -> ShardOutcome:
    state = result.state
    if state == "SUCCESS":
        try:
            return ShardOutcome.from_dict(result.result)
        except (KeyError, TypeError, ValueError) as exc:
            reason = f"the worker's answer did not parse ({exc!r}): is it another portintel?"
            return ShardOutcome(shard.shard_id, Status.FAILED, reason=reason)
    try:
        reason = f"{state}: {result.result!r}"
    except Exception as exc:  # an exception type this side cannot rebuild
        reason = f"{state}: {exc!r}"
    return ShardOutcome(shard.shard_id, Status.FAILED, reason=reason)


def run_job(
    app: Celery,
    store: Store,
    run_id: int,
    plan: Plan,
    scope: Scope,
    options: VerifyOptions | None = None,
    *,
    hosts_per_shard: int = HOSTS_PER_SHARD,
    ports_per_shard: int = PORTS_PER_SHARD,
    on_progress: Progress | None = None,
    on_note: Note | None = None,
    timeout: float | None = None,
    poll: float = POLL_INTERVAL,
) -> JobResult:
    """Verify `plan` on the workers and wait until every shard has ended (or `timeout`).

    Raises ScopeError before anything is sent if the plan leaves the scope. On
    KeyboardInterrupt the shards not yet started are revoked, then it re-raises.
    """
    check_scope(plan, scope)
    shards = split(
        plan,
        scope,
        run_id,
        options,
        hosts_per_shard=hosts_per_shard,
        ports_per_shard=ports_per_shard,
    )
    job = JobResult(shards=len(shards))
    if not shards:
        return job
    _reach_broker(app)
    pending: dict[str, tuple[Shard, Any]] = {}
    try:
        for shard in shards:
            result = app.send_task(
                TASK, args=[shard.model_dump(mode="json")], task_id=task_id(shard), queue=QUEUE
            )
            pending[shard.shard_id] = (shard, result)
        if on_note is not None and not app.control.ping(timeout=PING_TIMEOUT):
            on_note("no worker answered yet: the shards wait in the queue until one starts")
        _follow(pending, job, on_progress, timeout, poll)
        if pending:  # timed out: what is still queued should not start after we left
            app.control.revoke([result.id for _, result in pending.values()])
            pending.clear()
    except BaseException:
        if pending:  # nobody is left to want them: do not let workers start them
            app.control.revoke([result.id for _, result in pending.values()])
        raise
    _check_stored(store, run_id, job)
    return job


def _reach_broker(app: Celery) -> None:
    """Fail in one line when the broker is down, rather than after Celery's own retries
    (about twenty seconds of reconnect messages, then a traceback)."""
    with app.connection_for_write() as connection:
        try:
            connection.ensure_connection(max_retries=1, interval_start=0.5, timeout=BROKER_TIMEOUT)
        except OperationalError as exc:
            raise ConfigError(
                f"cannot reach the broker {maybe_sanitize_url(app.conf.broker_url)}: {exc}; "
                "is Redis running "
                "there? Check --broker (or PORTINTEL_BROKER)"
            ) from exc


def _follow(
    pending: dict[str, tuple[Shard, Any]],
    job: JobResult,
    on_progress: Progress | None,
    timeout: float | None,
    poll: float,
) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    while pending:
        for key, (shard, result) in list(pending.items()):
            if not result.ready():
                continue
            outcome = _outcome(shard, result)
            result.forget()
            del pending[key]
            job.outcomes.append(outcome)
            if on_progress is not None:
                on_progress(len(job.outcomes), job.shards, shard, outcome)
        if not pending:
            return
        if deadline is not None and time.monotonic() >= deadline:
            for shard, _ in pending.values():
                reason = f"not finished after {timeout:g} s"
                job.outcomes.append(ShardOutcome(shard.shard_id, Status.FAILED, reason=reason))
            return
        time.sleep(poll)


def _check_stored(store: Store, run_id: int, job: JobResult) -> None:
    """A shard reported stored must be in this store; otherwise it is a failure."""
    records = store.shard_results(run_id)
    for index, outcome in enumerate(job.outcomes):
        if outcome.status in (Status.STORED, Status.ALREADY) and outcome.shard_id not in records:
            job.outcomes[index] = ShardOutcome(
                outcome.shard_id,
                Status.FAILED,
                worker=outcome.worker,
                reason=(
                    f"{outcome.worker or 'a worker'} stored it, but not in this store: "
                    "give the workers the same --db as the scan"
                ),
            )
