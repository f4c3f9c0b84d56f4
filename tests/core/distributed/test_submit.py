"""The submitting side, against a stand-in for Celery: progress, failures, timeouts, and
the final check that what workers reported stored is in this store. No broker and no
probe: the stand-in's "workers" write shard records straight into the store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from core.distributed import submit
from core.distributed.shards import Shard
from core.distributed.submit import run_job, task_id
from core.distributed.tasks import QUEUE, TASK
from core.distributed.work import ShardOutcome, Status
from core.errors import ScopeError
from core.pipeline.verify import Plan, plan_scan
from core.store import Store
from core.store.shards import ShardRecord
from tests.core.distributed.conftest import scope_of

Worker = Callable[[Shard], tuple[str, Any]]  # a shard -> (Celery state, result)


@dataclass
class FakeResult:
    id: str
    state: str = "PENDING"
    result: Any = None
    polls_left: int = 0
    finish: Callable[[], tuple[str, Any]] | None = None
    forgotten: bool = False

    def ready(self) -> bool:
        if self.finish is not None and self.polls_left <= 0:
            self.state, self.result = self.finish()
            self.finish = None
        self.polls_left -= 1
        return self.state in ("SUCCESS", "FAILURE", "REVOKED")

    def forget(self) -> None:
        self.forgotten = True


@dataclass
class FakeControl:
    workers: list[dict[str, Any]]
    revoked: list[str] = field(default_factory=list)

    def ping(self, timeout: float) -> list[dict[str, Any]]:
        return self.workers

    def revoke(self, ids: list[str]) -> None:
        self.revoked.extend(ids)


class FakeConnection:
    def __enter__(self) -> FakeConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def ensure_connection(self, **kwargs: Any) -> None:
        return None  # the broker is always there


class FakeApp:
    """Celery's send_task/control, with each shard finished by `worker` after `delay` polls."""

    def connection_for_write(self) -> FakeConnection:
        return FakeConnection()

    def __init__(self, worker: Worker | None, delay: int = 1, workers: int = 1) -> None:
        self.worker = worker
        self.delay = delay
        self.sent: list[tuple[str, str, str, Shard]] = []
        self.control = FakeControl([{f"w{n}": {"ok": "pong"}} for n in range(workers)])

    def send_task(self, name: str, args: list[Any], task_id: str, queue: str) -> FakeResult:
        shard = Shard.model_validate(args[0])
        self.sent.append((name, task_id, queue, shard))
        finish = None if self.worker is None else (lambda: self.worker(shard))  # type: ignore[misc]
        return FakeResult(task_id, polls_left=self.delay * len(self.sent), finish=finish)


def storing(store: Store, worker: str = "portintel-1@w1") -> Worker:
    def work(shard: Shard) -> tuple[str, Any]:
        record = ShardRecord(shard.shard_id, worker, "w1/127.0.0.1", 0, len(shard.hosts))
        store.add_shard(shard.run_id, record, [])
        return "SUCCESS", ShardOutcome.of_record(record, Status.STORED).as_dict()

    return work


def job_plan() -> tuple[Plan, Any]:
    scope = scope_of("192.0.2.0/29")
    return plan_scan(scope, range(1, 3001)), scope


def test_every_shard_is_sent_followed_and_reported_in_completion_order(store: Store) -> None:
    plan, scope = job_plan()
    run_id = store.start_run("scan", ["192.0.2.0/29"])
    app = FakeApp(storing(store))
    seen: list[tuple[int, int, str]] = []

    job = run_job(
        app,  # type: ignore[arg-type]
        store,
        run_id,
        plan,
        scope,
        hosts_per_shard=4,
        ports_per_shard=1000,
        on_progress=lambda done, total, shard, outcome: seen.append((done, total, shard.shard_id)),
        poll=0,
    )

    # 2 host groups x 3 port ranges, each sent once on our queue under a stable id
    assert job.shards == 6 and len(app.sent) == 6
    assert {(name, queue) for name, _, queue, _ in app.sent} == {(TASK, QUEUE)}
    assert [tid for _, tid, _, _ in app.sent] == [task_id(s) for *_, s in app.sent]
    assert [done for done, _, _ in seen] == [1, 2, 3, 4, 5, 6]
    assert {sid for _, _, sid in seen} == {s.shard_id for *_, s in app.sent}
    assert job.failed == [] and len(job.stored) == 6
    assert job.open_ports == 8 * 3  # the fake worker reports one open port per host
    assert job.workers == ["portintel-1@w1"]


def test_a_shard_out_of_scope_stops_the_job_before_anything_is_sent(store: Store) -> None:
    plan, scope = job_plan()
    plan.tcp["203.0.113.5"] = {22}
    app = FakeApp(storing(store))
    with pytest.raises(ScopeError, match=r"203\.0\.113\.5"):
        run_job(app, store, 1, plan, scope, poll=0)  # type: ignore[arg-type]
    assert app.sent == []


def test_failed_and_lost_shards_are_named(store: Store) -> None:
    # Given one shard whose task failed, one reported stored that this store lacks (a
    # worker with another --db), and the rest stored properly
    plan, scope = job_plan()
    run_id = store.start_run("scan", ["192.0.2.0/29"])
    stored = storing(store)
    calls: list[str] = []

    def worker(shard: Shard) -> tuple[str, Any]:
        calls.append(shard.shard_id)
        if len(calls) == 1:
            return "FAILURE", RuntimeError("worker exploded")
        if len(calls) == 2:
            record = ShardRecord(shard.shard_id, "portintel-9@elsewhere", "x/192.0.2.9", 0, 0)
            return "SUCCESS", ShardOutcome.of_record(record, Status.STORED).as_dict()
        return stored(shard)

    job = run_job(
        FakeApp(worker),  # type: ignore[arg-type]
        store,
        run_id,
        plan,
        scope,
        ports_per_shard=1000,
        poll=0,
    )

    reasons = {o.shard_id: o.reason for o in job.failed}
    assert len(job.failed) == 2 and len(job.stored) == 1
    assert "worker exploded" in reasons[calls[0]]
    assert "same --db" in reasons[calls[1]] and "portintel-9@elsewhere" in reasons[calls[1]]


def test_shards_not_done_in_time_are_failed_and_revoked(store: Store) -> None:
    plan, scope = job_plan()
    run_id = store.start_run("scan", ["192.0.2.0/29"])
    app = FakeApp(None)  # nobody ever finishes a shard

    job = run_job(
        app,  # type: ignore[arg-type]
        store,
        run_id,
        plan,
        scope,
        ports_per_shard=1000,
        timeout=0.05,
        poll=0.01,
    )

    assert len(job.failed) == job.shards == 3
    assert all("not finished after" in o.reason for o in job.failed)
    assert sorted(app.control.revoked) == sorted(tid for _, tid, _, _ in app.sent)


def test_an_interrupted_job_revokes_what_is_left(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan, scope = job_plan()
    app = FakeApp(None)

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(submit.time, "sleep", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_job(app, store, 1, plan, scope, ports_per_shard=1000)  # type: ignore[arg-type]
    assert len(app.control.revoked) == len(app.sent) == 3


def test_no_worker_listening_is_said_once(store: Store) -> None:
    plan, scope = job_plan()
    run_id = store.start_run("scan", ["192.0.2.0/29"])
    notes: list[str] = []
    app = FakeApp(storing(store), workers=0)
    run_job(app, store, run_id, plan, scope, on_note=notes.append, poll=0)  # type: ignore[arg-type]
    assert len(notes) == 1 and "no worker answered" in notes[0]
