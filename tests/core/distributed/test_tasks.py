"""The Celery app: the settings that carry the guarantees, and the task body's outcomes.

No broker is contacted: the task runs with `apply()`, in this process.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.distributed import tasks
from core.distributed.shards import split
from core.distributed.work import ShardOutcome, Status
from core.errors import StoreError
from core.pipeline.verify import plan_scan
from core.store import Store
from tests.core.distributed.conftest import scope_of

BROKER = "redis://127.0.0.1:1/0"  # never connected to by these tests


def test_the_app_acks_late_requeues_lost_work_and_speaks_json_only() -> None:
    app = tasks.make_app(BROKER, db_url="sqlite:///x.db", vantage="w1", visibility_timeout=8)
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.result_backend == BROKER
    assert conf.task_default_queue == tasks.QUEUE
    options = conf.broker_transport_options
    assert options["visibility_timeout"] == 8
    assert options["unacked_restore_interval"] == 2  # a quarter of the timeout
    task = app.tasks[tasks.TASK]
    assert task.acks_late and task.reject_on_worker_lost
    assert (conf.portintel_db, conf.portintel_vantage) == ("sqlite:///x.db", "w1")


def run_task(app: Any, payload: object) -> Any:
    return app.tasks[tasks.TASK].apply(args=[payload])


@pytest.fixture
def app(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(tasks, "_stores", {})
    return tasks.make_app(BROKER, db_url=f"sqlite:///{tmp_path / 'w.db'}", vantage="w1")


def test_a_malformed_shard_is_reported_failed_not_raised(app: Any) -> None:
    result = run_task(app, {"shard_id": "tcp-x", "hosts": "not a shard"})
    outcome = ShardOutcome.from_dict(result.get())
    assert outcome.status is Status.FAILED
    assert outcome.shard_id == "tcp-x" and "validation error" in outcome.reason.lower()


def test_a_shard_runs_through_the_task_and_reports_its_outcome(
    app: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # Given a shard of a run in the worker's store, with the probes replaced
    with Store(app.conf.portintel_db) as store:
        run_id = store.start_run("scan", ["192.0.2.1/32"])
    scope = scope_of("192.0.2.1")
    (shard,) = split(plan_scan(scope, [22, 80]), scope, run_id)
    calls: list[tuple[str, str]] = []

    def fake_run_shard(got: Any, store: Store, *, worker: str, vantage_name: str, rate: Any):
        calls.append((worker, vantage_name))
        assert got == shard
        return ShardOutcome(got.shard_id, Status.STORED, worker=worker, open_ports=2)

    monkeypatch.setattr(tasks, "run_shard", fake_run_shard)

    outcome = ShardOutcome.from_dict(run_task(app, shard.model_dump(mode="json")).get())

    assert outcome.status is Status.STORED and outcome.open_ports == 2
    assert len(calls) == 1 and calls[0][0] and calls[0][1] == "w1"  # node name, vantage


def test_a_store_error_is_retried_then_reported(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    scope = scope_of("192.0.2.1")
    (shard,) = split(plan_scan(scope, [22]), scope, 1)

    attempts: list[int] = []

    def down(*args: Any, **kwargs: Any) -> ShardOutcome:
        attempts.append(1)
        raise StoreError("store postgresql://db.example.net/x: connection refused")

    monkeypatch.setattr(tasks, "run_shard", down)

    # (Run eagerly, Celery performs each retry at once, in this process.)
    outcome = ShardOutcome.from_dict(run_task(app, shard.model_dump(mode="json")).get())

    # Then the shard was tried once and retried STORE_RETRIES times, and the failure
    # is an outcome that names the cause
    assert len(attempts) == 1 + tasks.STORE_RETRIES
    assert outcome.status is Status.FAILED and "connection refused" in outcome.reason
