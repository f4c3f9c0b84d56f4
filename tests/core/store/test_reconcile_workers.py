"""reconcile_all in worker processes against a real database (SQLite file, PostgreSQL):
the shares cover every address once, and the services are those one process stores."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from core.errors import StoreError
from core.models import Kind, Observation, PortState, Service
from core.pipeline import reconcile as reconcile_module
from core.pipeline.reconcile import reconcile_all
from core.store import Store
from tests.core.store.factories import T0, observation

IPS = [f"192.0.2.{n}" for n in range(1, 31)] + ["2001:db8::1", "2001:db8::2"]


def _history(store: Store) -> int:
    """Two sources and our probe over IPS, disagreeing here and there; the run's id."""
    run_id = store.start_run("enrich", ["192.0.2.0/24", "2001:db8::/126"])
    claims: list[Observation] = []
    for n, ip in enumerate(IPS):
        for port in (22, 443):
            at = T0 + timedelta(days=n)
            claims.append(observation(ip, port, source="shodan", at=at, service="ssh"))
            claims.append(observation(ip, port, source="censys", at=at, service="http"))
            if n % 3 == 0:
                state = PortState.CLOSED if n % 2 else PortState.OPEN
                probe = observation(ip, port, source="verifier", kind=Kind.ACTIVE, state=state)
                claims.append(probe)
    store.add_observations(run_id, claims)
    return run_id


def _services(store: Store, run_id: int) -> list[Service]:
    return list(store.services(run_id))


@pytest.fixture
def worker_pids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Small shares, and a file where each share's process writes its pid."""
    monkeypatch.setattr(reconcile_module, "SHARE", 10)
    pids = tmp_path / "pids"
    real = reconcile_module._reconcile_share

    def spy(ips: list[str]) -> int | str:
        with pids.open("a") as out:
            out.write(f"{os.getpid()}\n")
        return real(ips)

    monkeypatch.setattr(reconcile_module, "_reconcile_share", spy)
    return pids


def test_workers_store_exactly_the_services_one_process_stores(
    store: Store, worker_pids: Path
) -> None:
    # Given a history of 64 endpoints (at least 128 observations: many shares of 10)
    one = _history(store)
    assert reconcile_all(store, one) == 64

    # When another run is reconciled by two worker processes
    two = store.start_run("enrich", [])
    saved = reconcile_all(store, two, workers=2)

    # Then the same services are stored, and the work was done in two other processes
    assert saved == 64
    assert _services(store, two) == _services(store, one)
    pids = set(worker_pids.read_text().split())
    assert len(pids) == 2 and str(os.getpid()) not in pids
    # And the store still works in this process afterwards
    assert store.latest_run_id() == two


def test_workers_reconcile_only_the_addresses_asked_for(store: Store, worker_pids: Path) -> None:
    run_id = _history(store)
    wanted = set(IPS[::2])  # 16 addresses, 32 endpoints, over 64 observations

    assert reconcile_all(store, run_id, ips=wanted, workers=2) == 32
    assert {s.endpoint.ip for s in _services(store, run_id)} == wanted
    assert worker_pids.read_text()  # shares went to the workers


def test_a_workers_store_error_reaches_the_caller(
    store: Store, worker_pids: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = _history(store)

    def full_disk(self: Store, run_id: int, services: object) -> int:
        raise StoreError("store x: storing services failed: database or disk is full")

    monkeypatch.setattr(Store, "save_services", full_disk)  # the forked workers' too
    with pytest.raises(StoreError, match="disk is full"):
        reconcile_all(store, run_id, workers=2)


def test_little_work_stays_in_this_process(store: Store, worker_pids: Path) -> None:
    run_id = store.start_run("enrich", [])
    store.add_observations(run_id, [observation("192.0.2.1", port) for port in range(1, 6)])

    assert reconcile_all(store, run_id, workers=2) == 5  # one share of 10: no workers
    assert not worker_pids.exists()


def test_address_shares_cover_every_address_once_in_order(store: Store) -> None:
    _history(store)
    everything = [endpoint.ip for endpoint, _ in store.iter_endpoint_observations()]
    in_order = list(dict.fromkeys(everything))  # the store's own address order

    shares = list(store.address_shares(None, 10))

    assert [ip for share in shares for ip in share] == in_order
    # Each address holds 4 or 6 observations: a share closes once it holds 10 or more
    assert all(len(share) in (2, 3) for share in shares[:-1])
    chosen = list(store.address_shares({"192.0.2.1", "2001:db8:0::2", "198.51.100.1"}, 10))
    assert chosen == [["192.0.2.1", "2001:db8::2"]]


def test_an_in_memory_store_is_not_shared_with_workers(worker_pids: Path) -> None:
    with Store("sqlite://") as store:
        assert not store.shareable
        run_id = _history(store)
        assert reconcile_all(store, run_id, workers=2) == 64
    assert not worker_pids.exists()


def test_a_file_store_is_shareable(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'p.db'}") as store:
        assert store.shareable
        with store.reopen() as again:
            assert again.url == store.url
