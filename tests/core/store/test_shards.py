"""Shard records: a shard's observations and its record commit together, once.

Runs on SQLite and on PostgreSQL (the `store` fixture), since the celery executor's
promise that nothing is counted twice rests on these few statements on both backends.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime

import pytest

from core.errors import StoreError
from core.store import Store
from core.store.shards import ShardRecord
from tests.core.store.factories import observation

FINISHED = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


def record(shard_id: str = "tcp-0001", **fields: object) -> ShardRecord:
    values: dict[str, object] = {
        "shard_id": shard_id,
        "worker": "portintel-1@w1.example.com",
        "vantage": "w1.example.com/192.0.2.250",
        "observations": 2,
        "open_ports": 2,
        "walls": ("192.0.2.66",),
        "finished_at": FINISHED,
    }
    values.update(fields)
    return ShardRecord(**values)  # type: ignore[arg-type]


def stored_count(store: Store) -> int:
    return sum(len(group) for _, group in store.iter_endpoint_observations())


def test_a_shard_is_stored_with_its_observations_and_read_back(store: Store) -> None:
    run_id = store.start_run("scan", ["192.0.2.0/24"])
    shard = record()

    assert store.add_shard(run_id, shard, [observation(port=22), observation(port=80)])

    assert stored_count(store) == 2
    assert store.shard_results(run_id) == {"tcp-0001": shard}
    assert store.shard_results(run_id, "tcp-0001") == {"tcp-0001": shard}
    assert store.shard_results(run_id, "tcp-other") == {}
    assert store.shard_results(run_id + 1) == {}


def test_the_same_shard_stored_again_is_a_no_op(store: Store) -> None:
    # Given a shard already stored (its first delivery)
    run_id = store.start_run("scan", ["192.0.2.0/24"])
    first = record(worker="portintel-1@w1.example.com")
    assert store.add_shard(run_id, first, [observation(port=22)])

    # When a second delivery of the same shard brings its own results
    again = record(worker="portintel-2@w2.example.com")
    stored = store.add_shard(run_id, again, [observation(port=22), observation(port=23)])

    # Then nothing of it is stored, and the first delivery's record stands
    assert stored is False
    assert stored_count(store) == 1
    assert store.shard_results(run_id)["tcp-0001"].worker == "portintel-1@w1.example.com"


def test_the_same_shard_id_in_another_run_is_another_shard(store: Store) -> None:
    first, second = store.start_run("scan", []), store.start_run("scan", [])
    assert store.add_shard(first, record(), [observation(port=22)])
    assert store.add_shard(second, record(), [observation(port=22)])
    assert stored_count(store) == 2


def test_a_failed_write_stores_neither_the_record_nor_any_observation(store: Store) -> None:
    # Given observations of which the last cannot be stored (no such raw record)
    run_id = store.start_run("scan", ["192.0.2.0/24"])
    broken = [observation(port=22), observation(port=23, raw_id=424242)]

    with pytest.raises(StoreError):
        store.add_shard(run_id, record(), broken)

    # Then the shard is not marked stored, so a retry can still store it whole
    assert store.shard_results(run_id) == {}
    assert stored_count(store) == 0
    assert store.add_shard(run_id, record(), [observation(port=22)])


def test_two_deliveries_racing_store_exactly_one(store: Store, db_url: str) -> None:
    # Given two workers (two stores on the same database) finishing the same shard at once
    run_id = store.start_run("scan", ["192.0.2.0/24"])
    # Opened one after the other: Alembic's migration context is process-global.
    workers = {"w1": Store(db_url), "w2": Store(db_url)}
    barrier = threading.Barrier(2, timeout=30)
    results: list[bool] = []
    errors: list[BaseException] = []

    def deliver(worker: str) -> None:
        try:
            rows = [observation(port=port) for port in range(1, 51)]
            barrier.wait()
            results.append(workers[worker].add_shard(run_id, record(worker=worker), rows))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(name,)) for name in workers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for opened in workers.values():
            opened.close()

    # Then exactly one delivery stored its rows
    assert errors == []
    assert sorted(results) == [False, True]
    assert stored_count(store) == 50
    assert len(store.shard_results(run_id)) == 1


def test_a_shards_tls_profiles_are_stored_with_it_and_only_once(store: Store) -> None:
    from core.verify.tls.model import TlsProfile

    run_id = store.start_run("scan", ["192.0.2.0/24"])
    ours = TlsProfile(ip="192.0.2.7", port=443, outcome="ok", versions=("TLSv1.3",))
    theirs = dataclasses.replace(ours, versions=("TLSv1.2",))

    assert store.add_shard(run_id, record(), [observation(port=443)], [ours])
    assert not store.add_shard(run_id, record(worker="w2"), [observation(port=443)], [theirs])

    assert list(store.tls_profiles(run_id)) == [ours]
