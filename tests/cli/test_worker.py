"""`portintel worker` and `scan --executor celery`: real workers, Redis and PostgreSQL.

The end-to-end tests use the lab (tests/conftest.py): its Redis is the broker and its
PostgreSQL the shared store, and two `portintel worker` processes run inside the lab's
namespace, so the only 127.0.0.1 they can reach, and scan, is the lab's own. The
submitting CLI runs in-process on a thread that joined the same namespace.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cli.app import app
from core.distributed import INSTALL
from core.store import Store, tables
from tests.lab.daemons import LAB_PASSWORD, RunningLab
from tests.lab.netns import netns

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0
JOB_TIMEOUT = 240.0
LAST_PORT = 3 * 8192  # the kill test scans three default-sized shards


# -- without the extra, and bad flags: one line, exit 1 ----------------------------------


@pytest.fixture
def no_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import celery` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "celery", None)


def one_line_error(result: Any) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1, result.stderr
    assert len(lines) == 1, lines
    return str(lines[0])


def test_worker_without_the_extra_says_what_to_install(isolated: Path, no_extra: None) -> None:
    result = CliRunner().invoke(app, ["worker", "--broker", "redis://127.0.0.1:6379/0"])
    line = one_line_error(result)
    assert INSTALL in line and "celery" in line


def test_celery_scan_without_the_extra_says_what_to_install_before_anything_runs(
    isolated: Path, no_extra: None
) -> None:
    args = ["scan", "192.0.2.1", "--no-passive", "--executor", "celery"]
    result = CliRunner().invoke(app, [*args, "--broker", "redis://127.0.0.1:6379/0"])
    assert INSTALL in one_line_error(result)
    with Store(f"sqlite:///{isolated / 'portintel.db'}") as store:
        assert store.runs() == []  # no run was started: nothing was sent


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scan", "192.0.2.1", "--no-passive", "--executor", "celery"], "needs --broker"),
        (["worker"], "needs --broker"),
        (["worker", "--broker", "amqp://127.0.0.1//"], "give a Redis URL"),
    ],
)
def test_a_missing_or_foreign_broker_is_one_line(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.delenv("PORTINTEL_BROKER", raising=False)
    assert message in one_line_error(CliRunner().invoke(app, args))


def test_a_broker_password_never_reaches_the_output(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The store cannot be opened (its parent is a file): the error line names the store,
    # and the broker's password, which the worker saw, is masked everywhere.
    (isolated / "file").write_text("not a directory")
    db = f"sqlite:///{isolated / 'file' / 'x.db'}"
    broker = "redis://:hunter2@127.0.0.1:6379/0"
    result = CliRunner().invoke(app, ["--db", db, "worker", "--broker", broker])
    assert "cannot create" in one_line_error(result)
    assert "hunter2" not in result.output + result.stderr


def test_a_job_with_a_failed_shard_exits_partial_and_names_it(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stand-in for Celery whose workers store every shard but the first
    from core.distributed import tasks
    from core.distributed.work import ShardOutcome, Status
    from core.store.shards import ShardRecord
    from tests.core.distributed.test_submit import FakeApp

    url = f"sqlite:///{isolated / 'portintel.db'}"
    failed: list[str] = []

    def worker(shard: Any) -> tuple[str, Any]:
        if not failed:
            failed.append(shard.shard_id)
            return "SUCCESS", ShardOutcome(shard.shard_id, Status.FAILED, reason="boom").as_dict()
        record = ShardRecord(shard.shard_id, "portintel-1@w1", "w1/192.0.2.250", 0, 0)
        with Store(url) as store:
            store.add_shard(shard.run_id, record, [])
        return "SUCCESS", ShardOutcome.of_record(record, Status.STORED).as_dict()

    monkeypatch.setattr(tasks, "make_app", lambda broker: FakeApp(worker, delay=0))
    args = ["scan", "192.0.2.1", "--no-passive", "-p", "1-20000", "--executor", "celery"]

    # When the job runs
    result = CliRunner().invoke(app, [*args, "--broker", "redis://127.0.0.1:6379/0"])

    # Then it says which shard failed and why, and exits 3 (partial)
    assert result.exit_code == 3, result.stderr
    assert "2/3 shards on 1 worker" in result.stderr
    assert f"shard {failed[0]} failed: boom" in result.stderr
    assert "shards 3/3" in result.stderr


def test_a_broker_that_is_down_is_one_line(isolated: Path) -> None:
    # Inside a namespace of its own: nothing listens on its loopback, nothing leaves it.
    argv = ["scan", "127.0.0.1", "-p", "1-10", "--no-passive", "--executor", "celery"]
    argv += ["--broker", "redis://:hunter2@127.0.0.1:6390/0"]
    with netns() as ns:
        result = ns.call(lambda: CliRunner().invoke(app, argv), timeout=120)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.exit_code == 1, result.stderr
    assert len(errors) == 1 and "cannot reach the broker" in errors[0]
    assert "127.0.0.1:6390" in errors[0] and "hunter2" not in result.stderr


# -- real workers ------------------------------------------------------------------------


@dataclass
class Cluster:
    """Two workers in the lab, a broker database of their own, a store of their own."""

    lab: RunningLab
    broker: str
    db: str
    workers: dict[str, subprocess.Popen[bytes]]  # by Celery node name
    logs: Path

    def scan(self, *args: str) -> Any:
        argv = ["--db", self.db, "scan", "127.0.0.1", "--no-passive", "-f", "json"]
        argv += ["--executor", "celery", "--broker", self.broker, *args]
        return self.lab.ns.call(lambda: CliRunner().invoke(app, argv), timeout=JOB_TIMEOUT)

    def in_lab(self, fn: Any, *args: Any) -> Any:
        return self.lab.ns.call(fn, *args, timeout=60)

    def celery(self) -> Any:
        from core.distributed.tasks import make_app

        return make_app(self.broker)

    def kill(self, node: str) -> None:
        """SIGKILL a whole worker: its main process and every child (a dead machine)."""
        proc = self.workers[node]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def log_tail(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.logs.glob("*.log"))


def _pg(port: int, database: str = "postgres") -> str:
    return f"postgresql://postgres:{LAB_PASSWORD}@127.0.0.1:{port}/{database}"


def _admin(port: int, statement: str) -> None:
    import psycopg

    with psycopg.connect(_pg(port), autocommit=True) as conn:
        conn.execute(statement)


def _wait_ready(cluster: Cluster) -> None:
    app_ = cluster.celery()
    deadline = time.monotonic() + READY_TIMEOUT
    for _ in range(int(READY_TIMEOUT)):
        for node, proc in cluster.workers.items():
            if proc.poll() is not None:
                raise AssertionError(f"{node} exited early:\n{cluster.log_tail()}")
        replies = cluster.in_lab(lambda: app_.control.ping(timeout=1.0))
        answered = {name for reply in replies for name in reply}
        if answered >= set(cluster.workers):
            return
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"workers not ready after {READY_TIMEOUT}s:\n{cluster.log_tail()}")


@contextmanager
def cluster(lab: RunningLab, tmp: Path, visibility_timeout: int = 30) -> Iterator[Cluster]:
    port = lab["postgresql"].port("postgresql")
    database = f"dist_{uuid.uuid4().hex[:12]}"
    lab.ns.call(_admin, port, f'CREATE DATABASE "{database}"')
    db = _pg(port, database).replace("postgresql://", "postgresql+psycopg://")
    broker_db = 1 + uuid.uuid4().int % 15  # a Redis database of its own
    broker = f"redis://127.0.0.1:{lab['redis'].port('redis')}/{broker_db}"
    logs = tmp / "workers"
    logs.mkdir()
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp / "config"), "PYTHONPATH": str(ROOT)}
    env.pop("PORTINTEL_CONFIG", None)
    workers: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name in ("w1.example.com", "w2.example.com"):
            argv = [sys.executable, "-m", "cli", "--db", db, "worker", "--broker", broker]
            argv += ["--concurrency", "1", "--vantage", name, "--loglevel", "INFO"]
            argv += ["--visibility-timeout", str(visibility_timeout)]
            with (logs / f"{name}.log").open("wb") as log:
                proc = lab.ns.popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                    start_new_session=True,  # so a kill takes the worker's children too
                )  # fmt: skip
            workers[f"portintel-{proc.pid}@{name}"] = proc
        running = Cluster(lab, broker, db, workers, logs)
        _wait_ready(running)
        yield running
    finally:
        for proc in workers.values():
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in workers.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        lab.ns.call(_admin, port, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _comparable(doc: dict[str, Any]) -> dict[tuple[str, int, str], dict[str, Any]]:
    """Services by endpoint, without what differs between any two runs (times, and raw
    banners: MariaDB's greeting carries a fresh salt, Redis's INFO its clock) or that
    only the celery run has (vantage tags)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: strip(v)
                for k, v in value.items()
                if not k.endswith(("_seen", "_at")) and k != "banner"
            }
        if isinstance(value, list):
            return [strip(v) for v in value if not str(v).startswith("vantage:")]
        return value

    return {
        (s["endpoint"]["ip"], s["endpoint"]["port"], s["endpoint"]["transport"]): strip(s)
        for s in doc["services"]
    }


def _verifier_rows(db: str, run_id: int) -> list[tuple[str, int, str]]:
    obs = tables.observations.c
    engine = sa.create_engine(db)
    try:
        with engine.connect() as conn:
            query = sa.select(obs.ip, obs.port, obs.transport).where(
                obs.run_id == run_id, obs.source == "verifier"
            )
            return [tuple(row) for row in conn.execute(query)]  # type: ignore[misc]
    finally:
        engine.dispose()


def _start_run(db: str) -> int:
    with Store(db) as store:
        return store.start_run("scan", ["127.0.0.1/32"])


def _shards(db: str, run_id: int) -> dict[str, Any]:
    with Store(db) as store:
        return store.shard_results(run_id)


@pytest.fixture(scope="module")
def pair(lab: RunningLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two workers shared by the tests that do not kill one."""
    with cluster(lab, tmp_path_factory.mktemp("pair")) as running:
        yield running


def test_a_celery_job_gives_the_same_inventory_as_one_machine(
    lab: RunningLab, pair: Cluster, isolated: Path
) -> None:
    running = pair
    # Given the inventory of a full TCP scan of the lab on this machine alone
    alone = lab.ns.call(
        lambda: CliRunner().invoke(app, ["scan", "127.0.0.1", "--no-passive", "-f", "json"]),
        timeout=JOB_TIMEOUT,
    )
    assert alone.exit_code == 0, alone.stderr

    # When the same job runs on the two workers
    shared = running.scan()

    # Then it is complete, shared out, and the reconciled inventory is the same
    assert shared.exit_code == 0, shared.stderr + running.log_tail()
    assert "8/8 shards on 2 workers" in shared.stderr
    assert _comparable(json.loads(shared.stdout)) == _comparable(json.loads(alone.stdout))
    # And every observation names the worker's vantage point
    run_id = json.loads(shared.stdout)["run"]["id"]
    records = running.in_lab(_shards, running.db, run_id)
    assert {r.worker for r in records.values()} == set(running.workers)
    vantages = {
        tag
        for service in json.loads(shared.stdout)["services"]
        for tag in service["tags"]
        if tag.startswith("vantage:")
    }
    assert vantages and vantages <= {
        "vantage:w1.example.com/127.0.0.1",
        "vantage:w2.example.com/127.0.0.1",
    }


def test_a_worker_refuses_a_shard_outside_the_scope_it_carries(
    lab: RunningLab, pair: Cluster
) -> None:
    from core.distributed.shards import split
    from core.distributed.submit import task_id
    from core.distributed.tasks import QUEUE, TASK
    from core.distributed.work import ShardOutcome, Status
    from core.pipeline.verify import plan_scan
    from tests.core.distributed.conftest import scope_of

    def trap() -> Any:
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.2", 8080))
        sock.listen(16)
        sock.setblocking(False)
        return sock

    running = pair
    outside = lab.ns.call(trap)
    try:
        # Given a shard for 127.0.0.1 whose host list was tampered with on the way
        with_run = running.in_lab(_start_run, running.db)
        scope = scope_of("127.0.0.1")
        (shard,) = split(plan_scan(scope, [8080]), scope, with_run)
        bad = shard.model_copy(update={"hosts": ("127.0.0.1", "127.0.0.2")})
        celery = running.celery()

        # When it reaches a real worker through the broker
        def send() -> Any:
            sent = celery.send_task(
                TASK, args=[bad.model_dump(mode="json")], task_id=task_id(bad), queue=QUEUE
            )
            return sent.get(timeout=60)

        outcome = ShardOutcome.from_dict(running.in_lab(send))

        # Then it is refused, nothing is stored, and no probe reached the outside host
        assert outcome.status is Status.REFUSED, outcome
        assert "127.0.0.2" in outcome.reason
        assert running.in_lab(_shards, running.db, with_run) == {}
        with pytest.raises(BlockingIOError):
            outside.accept()
    finally:
        outside.close()


def test_killing_a_worker_mid_job_loses_nothing_and_counts_nothing_twice(
    lab: RunningLab, isolated: Path
) -> None:
    # Short visibility timeout: the killed worker's shard goes to the other one quickly.
    with cluster(lab, isolated, visibility_timeout=4) as running:
        inspect = running.celery().control.inspect
        box: dict[str, Any] = {}

        tcp = {p.port: s for s in lab for p in s.ports if p.transport == "tcp"}
        assert max(tcp) <= LAST_PORT  # the lab's ports are all in the three shards

        def job() -> None:
            # Three shards of 8,192 ports; the rate makes each last about 2.7 s, longer
            # than a look at the workers (up to 1 s) plus the kill: the kill lands while
            # the shard runs. (At 1.4 s a shard could be stored just before it, under load.)
            box["result"] = running.scan("-p", f"1-{LAST_PORT}", "--rate", "3000")

        submitter = threading.Thread(target=job, name="celery-job")
        submitter.start()
        try:
            # When one worker is running a shard, it is killed (SIGKILL, children too)
            victim, killed_shard = "", ""
            for _ in range(120):  # bounded: each look waits up to 0.5 s for replies
                active = running.in_lab(lambda: inspect(timeout=0.5).active()) or {}
                busy = [(node, tasks[0]["id"]) for node, tasks in active.items() if tasks]
                if busy:
                    victim, task = busy[0]
                    killed_shard = task.split("-", 2)[2]  # portintel-<run>-<shard id>
                    running.kill(victim)
                    break
            assert victim, "no worker was ever seen running a shard"
        finally:
            submitter.join(timeout=JOB_TIMEOUT)
        result = box["result"]

        # Then the job still completes, every shard stored once, the lost one by the other
        assert result.exit_code == 0, result.stderr + running.log_tail()
        assert "3/3 shards" in result.stderr
        doc = json.loads(result.stdout)
        run_id = doc["run"]["id"]
        records = running.in_lab(_shards, running.db, run_id)
        assert len(records) == 3
        assert records[killed_shard].worker != victim
        # And no endpoint was counted twice
        rows = running.in_lab(_verifier_rows, running.db, run_id)
        assert len(rows) == len(set(rows))
        # And nothing was lost: exactly the lab's TCP ports, each named
        found = _comparable(doc)
        assert {port for (_, port, t) in found if t == "tcp"} == set(tcp)
        for port, service in tcp.items():
            got = found[("127.0.0.1", port, "tcp")]
            assert (got["product"] or "").lower() == service.product.lower(), got
