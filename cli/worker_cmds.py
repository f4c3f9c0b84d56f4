"""`portintel worker` and the celery executor of `portintel scan`.

Both need the distributed extra; without it they say what to install and exit 1. The
worker is a thin wrapper over Celery's own worker: it opens (and migrates) the store
first, so a wrong --db fails before any shard is taken, then hands over to Celery.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Coroutine
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from cli.common import guard, note, redactor, settings
from core.distributed import require_extra
from core.errors import InputError
from core.models import RunStatus
from core.pipeline.verify import Plan, VerifyOptions
from core.store import Store
from core.targets import Scope


class Executor(StrEnum):
    INPROCESS = "inprocess"  # this machine, asyncio (the default; needs nothing more)
    CELERY = "celery"  # shards on `portintel worker`s through a Redis broker


BROKER_HELP = "Redis URL of the broker, e.g. redis://HOST:6379/0 [env: PORTINTEL_BROKER]"
_SCHEMES = ("redis", "rediss")
_PROGRESS_LINES = 20  # about this many progress lines per job, however many shards


def checked_broker(broker: str | None, flag: str) -> str:
    """The broker URL, after checking it is a Redis URL; its password is masked in output."""
    if not broker:
        raise InputError(f"{flag} needs --broker redis://HOST:6379/0 (or PORTINTEL_BROKER)")
    parts = urlsplit(broker)
    if parts.scheme not in _SCHEMES or not parts.hostname:
        raise InputError(f"--broker {parts.scheme}://...: give a Redis URL, redis://HOST:6379/0")
    if parts.password:
        redactor.add([parts.password])
    return broker


def _warn_if_sqlite(url: str) -> None:
    if url.startswith("sqlite"):
        note(
            "the store is a SQLite file: only workers on this machine can write to it; "
            "across machines use PostgreSQL (--db postgresql+psycopg://...)"
        )


Step = Callable[[Store, int, Scope], Coroutine[Any, Any, RunStatus]]


def celery_step(
    plan_for: Callable[[Store, Scope], Plan], options: VerifyOptions, broker: str | None
) -> Step:
    """The verify step of `scan --executor celery`: checked now, before the passive phase."""
    require_extra("--executor celery")
    url = checked_broker(broker, "--executor celery")
    _warn_if_sqlite(settings().database_url())

    async def step(store: Store, run_id: int, scope: Scope) -> RunStatus:
        from core.distributed.submit import run_job
        from core.distributed.tasks import make_app

        plan = plan_for(store, scope)
        if plan.out_of_scope:
            note(f"{len(plan.out_of_scope)} claimed endpoints are out of scope: not probed")
        note(f"probing {plan.size():,} ports on {len(plan.hosts):,} hosts, on the workers")
        shown = -1

        def progress(done: int, total: int, shard: Any, outcome: Any) -> None:
            nonlocal shown
            every = max(1, total // _PROGRESS_LINES)
            if done == total or done // every != shown:
                shown = done // every
                where = f" on {outcome.worker}" if outcome.worker else ""
                note(f"shards {done}/{total}: {shard.describe()} {outcome.status.value}{where}")

        app = make_app(url)
        job = run_job(app, store, run_id, plan, scope, options, on_progress=progress, on_note=note)
        for wall in job.walls:
            note(f"{wall} answers on nearly every port (a SYN-ACK wall): its ports are not listed")
        note(
            f"verifier: {job.open_ports} open ports, {job.observations} observations, "
            f"{len(job.stored)}/{job.shards} shards on {len(job.workers)} "
            f"worker{'' if len(job.workers) == 1 else 's'}"
        )
        for outcome in job.failed[:5]:
            note(f"shard {outcome.shard_id} {outcome.status.value}: {outcome.reason}")
        if not job.failed:
            return RunStatus.OK
        return RunStatus.PARTIAL if job.stored else RunStatus.FAILED

    return step


def worker_command(
    broker: Annotated[str | None, typer.Option(envvar="PORTINTEL_BROKER", help=BROKER_HELP)] = None,
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", "-c", min=1, help="Shards run at once [default: CPUs]"),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(min=1, help="Cap on this worker's probes per second, over all its shards"),
    ] = None,
    vantage: Annotated[
        str | None,
        typer.Option(help="Name recorded on observations as this vantage [default: hostname]"),
    ] = None,
    visibility_timeout: Annotated[
        int,
        typer.Option(
            min=1,
            help="Seconds after which a shard held by a vanished worker goes to another "
            "(keep it above the longest shard)",
        ),
    ] = 3600,
    loglevel: Annotated[str, typer.Option(help="Celery's log level")] = "INFO",
) -> None:
    """Run a verification worker: take scan shards from the broker, probe, store.

    Give it the same store as the scan (--db or PORTINTEL_DB, PostgreSQL across
    machines) and the same broker. Each observation it makes is tagged
    vantage:<name>/<source address>. Stop it with Ctrl-C; a shard it was running is
    handed to another worker. Example:

      portintel --db postgresql+psycopg://pi@db.example.net/portintel worker \\
          --broker redis://queue.example.net:6379/0 --concurrency 2 --rate 5000
    """
    with guard():
        require_extra("portintel worker")
        url = checked_broker(broker, "portintel worker")
        db_url = settings().database_url()
        Store(db_url).close()  # fails now, in one line, if the store cannot be opened
        _warn_if_sqlite(db_url)
        from core.distributed.tasks import QUEUE, make_app

        processes = concurrency or os.cpu_count() or 1
        name = vantage or socket.gethostname()
        app = make_app(
            url,
            db_url=db_url,
            vantage=name,
            rate=None if rate is None else rate / processes,
            visibility_timeout=visibility_timeout,
        )
        argv = [
            "worker",
            f"--loglevel={loglevel}",
            f"--concurrency={processes}",
            f"--queues={QUEUE}",
            f"--hostname=portintel-{os.getpid()}@{name}",
            "--without-gossip",  # workers need not know each other: the broker is enough
            "--without-mingle",
        ]
        app.worker_main(argv)
