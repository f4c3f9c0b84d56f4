"""The Celery app factory and the shard task: the only module here that imports celery.

Settings that carry the guarantees (each one is checked by tests with real workers):
- acks late + reject on worker lost: a shard is acknowledged only after its results are
  committed; a worker process that dies mid-shard puts it back on the queue.
- prefetch multiplier 1: a worker holds one unacknowledged shard per process, so a
  worker that vanishes strands at most that many, and fast workers are not starved.
- visibility timeout: with Redis, a shard taken by a worker that vanished entirely (the
  machine died, SIGKILL) is handed out again after this many seconds. It must exceed the
  longest shard, or a live worker's shard is handed out twice (harmless: the store keeps
  one, but the work is done twice).
- JSON only: a shard is data, never pickled code.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery

from core.distributed.shards import Shard
from core.distributed.work import ShardOutcome, Status, run_shard
from core.errors import StoreError
from core.store import Store

TASK = "portintel.verify_shard"
QUEUE = "portintel"
VISIBILITY_TIMEOUT = 3600
STORE_RETRIES = 3  # a store that is briefly unreachable: retried with backoff, then failed

log = logging.getLogger("portintel.worker")
_stores: dict[str, Store] = {}  # one per worker process, opened by its first shard


def make_app(
    broker: str,
    *,
    db_url: str | None = None,
    vantage: str = "",
    rate: float | None = None,
    visibility_timeout: int = VISIBILITY_TIMEOUT,
) -> Celery:
    """A Celery app on `broker` (Redis, also the result backend) with the shard task.

    The submitting side needs only `broker`; a worker also gives the store it writes
    to, the vantage name it records and its per-process probe rate.
    """
    app = Celery("portintel", broker=broker, backend=broker, set_as_current=False)
    # Sweeps for abandoned shards often enough that a short timeout means a quick retry.
    restore_every = max(1, min(10, visibility_timeout // 4))
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE,
        task_track_started=True,
        result_expires=7 * 86400,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": visibility_timeout,
            "unacked_restore_interval": restore_every,
            "unacked_restore_throttle": 1,
        },
        portintel_db=db_url,
        portintel_vantage=vantage,
        portintel_rate=rate,
    )
    app.task(name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True)(_verify_shard)
    return app


def _store(url: str | None) -> Store:
    key = url or ""
    if key not in _stores:
        _stores[key] = Store(url)
    return _stores[key]


def _verify_shard(task: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """The task body: validate the shard, run it, report the outcome as data."""
    conf = task.app.conf
    worker = str(task.request.hostname or "")
    shard_id = str(payload.get("shard_id", "?")) if isinstance(payload, dict) else "?"
    try:
        shard = Shard.model_validate(payload)
        outcome = run_shard(
            shard,
            _store(conf.portintel_db),
            worker=worker,
            vantage_name=conf.portintel_vantage or worker,
            rate=conf.portintel_rate,
        )
    except StoreError as exc:
        if task.request.retries < STORE_RETRIES:
            raise task.retry(exc=exc, countdown=2**task.request.retries) from exc
        outcome = ShardOutcome(shard_id, Status.FAILED, worker=worker, reason=str(exc))
    except Exception as exc:  # reported to the submitter as data; the traceback is logged here
        log.exception("shard %s failed", shard_id)
        outcome = ShardOutcome(shard_id, Status.FAILED, worker=worker, reason=repr(exc))
    log.info("shard %s: %s", shard_id, outcome.status.value)
    return outcome.as_dict()
