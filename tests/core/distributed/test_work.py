"""One shard on a worker: gated by its scope, probed, stored once with its vantage.

The probing test runs inside a network namespace the test creates, against a listener
it opened there; the others replace the probes and send nothing.
"""

from __future__ import annotations

import dataclasses
import socket
from typing import Any

import pytest

from core.distributed import work
from core.distributed.shards import Shard, split
from core.distributed.work import ShardOutcome, Status, run_shard
from core.models import Endpoint, Kind, Observation, PortState, Transport, utcnow
from core.pipeline import verify as verify_stage
from core.pipeline.verify import Plan, VerifyOptions, VerifyResult, plan_scan
from core.store import Store
from core.store.shards import ShardRecord
from core.targets import Scope
from tests.core.distributed.conftest import scope_of
from tests.lab.netns import netns

LISTEN_PORT = 8080
CLAIMED_CLOSED = 8099  # claimed open by a provider; nothing listens there


def ep(ip: str, port: int) -> Endpoint:
    return Endpoint(ip=ip, port=port, transport=Transport.TCP)


def claim(ip: str, port: int) -> Observation:
    now = utcnow()
    return Observation(
        endpoint=ep(ip, port), source="shodan", kind=Kind.PASSIVE, observed_at=now, fetched_at=now
    )


def one_shard(run_id: int, scope: Scope, ports: range, **options: Any) -> Shard:
    plan = plan_scan(scope, ports, claims=[ep("127.0.0.1", CLAIMED_CLOSED)])
    (shard,) = split(plan, scope, run_id, VerifyOptions(**options))
    return shard


def verifier_rows(store: Store) -> dict[tuple[int, PortState], tuple[str, ...]]:
    return {
        (endpoint.port, o.state): o.tags
        for endpoint, group in store.iter_endpoint_observations()
        for o in group
        if o.source == "verifier"
    }


def test_a_shard_is_probed_and_stored_once_with_its_vantage(store: Store) -> None:
    with netns() as ns:
        # Given a listener in the namespace and a shard over its port and a claimed one
        def listen() -> socket.socket:
            sock = socket.socket()
            sock.bind(("127.0.0.1", LISTEN_PORT))
            sock.listen(64)
            sock.setblocking(False)
            return sock

        listener = ns.call(listen)
        try:
            run_id = store.start_run("scan", ["127.0.0.1/32"])
            shard = one_shard(
                run_id, scope_of("127.0.0.1"), range(8000, 8100), timeout=0.5, fingerprint=False
            )

            # When a worker runs it
            first = ns.call(
                run_shard, shard, store, worker="portintel-1@w1", vantage_name="w1.example.com"
            )

            # Then the open port and the refuted claim are stored, tagged with the vantage
            assert (first.status, first.open_ports, first.observations) == (Status.STORED, 1, 2)
            tag = "vantage:w1.example.com/127.0.0.1"
            rows = verifier_rows(store)
            assert set(rows) == {(LISTEN_PORT, PortState.OPEN), (CLAIMED_CLOSED, PortState.CLOSED)}
            assert all(tag in tags for tags in rows.values())
            record = store.shard_results(run_id)[shard.shard_id]
            assert (record.worker, record.vantage) == ("portintel-1@w1", "w1.example.com/127.0.0.1")

            # When the same shard is delivered again (to another worker)
            drained = 0
            while drained < 100:  # the scan's connections, bounded
                try:
                    listener.accept()[0].close()
                    drained += 1
                except BlockingIOError:
                    break
            again = ns.call(run_shard, shard, store, worker="portintel-2@w2", vantage_name="w2")

            # Then it is not probed again, nothing is added, and the first result stands
            assert again.status is Status.ALREADY
            assert again.worker == "portintel-1@w1"
            with pytest.raises(BlockingIOError):
                listener.accept()
            assert verifier_rows(store) == rows
        finally:
            listener.close()


@pytest.fixture
def no_probes(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    sent: list[object] = []
    monkeypatch.setattr(verify_stage, "scan_tcp", lambda *a, **k: sent.append(a))
    monkeypatch.setattr(verify_stage, "scan_udp", lambda *a, **k: sent.append(a))
    return sent


def test_a_shard_naming_a_host_outside_its_scope_is_refused_unprobed(
    store: Store, no_probes: list[object]
) -> None:
    # Given a shard tampered with on the way: a host added that its scope does not hold
    run_id = store.start_run("scan", ["192.0.2.1/32"])
    shard = one_shard(run_id, scope_of("192.0.2.1"), range(1, 100))
    tampered = shard.model_copy(update={"hosts": (*shard.hosts, "203.0.113.5")})

    # When a worker gets it, then the gate refuses it before any probe, storing nothing
    outcome = run_shard(tampered, store, worker="w1", vantage_name="w1")
    assert outcome.status is Status.REFUSED
    assert "203.0.113.5" in outcome.reason
    assert no_probes == []
    assert store.shard_results(run_id) == {}
    assert verifier_rows(store) == {}


def test_a_scope_that_excludes_the_host_also_refuses(store: Store, no_probes: list[object]) -> None:
    run_id = store.start_run("scan", ["192.0.2.0/30"])
    shard = one_shard(run_id, scope_of("192.0.2.1"), range(1, 10))
    narrowed = shard.model_copy(
        update={"scope": shard.scope.model_copy(update={"exclude": ("192.0.2.1/32",)})}
    )
    assert run_shard(narrowed, store, worker="w1", vantage_name="w1").status is Status.REFUSED
    assert no_probes == []


@pytest.mark.parametrize(
    ("job_rate", "worker_rate", "applied"),
    [(None, 100.0, 100.0), (50.0, 100.0, 50.0), (500.0, 100.0, 100.0), (500.0, None, 500.0)],
)
def test_the_lower_of_the_job_and_worker_rates_applies(
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    job_rate: float | None,
    worker_rate: float | None,
    applied: float,
) -> None:
    seen: list[VerifyOptions] = []

    async def fake_verify(
        sink: Any, run_id: int, plan: Plan, scope: Scope, options: VerifyOptions
    ) -> VerifyResult:
        seen.append(options)
        return VerifyResult()

    monkeypatch.setattr(work, "verify", fake_verify)
    run_id = store.start_run("scan", ["192.0.2.1/32"])
    shard = one_shard(run_id, scope_of("192.0.2.1"), range(1, 10), rate=job_rate)
    run_shard(shard, store, worker="w1", vantage_name="w1", rate=worker_rate)
    assert [o.rate for o in seen] == [applied]
    assert dataclasses.replace(seen[0], rate=job_rate) == shard.options


def test_a_delivery_that_loses_the_race_reports_the_winner(
    store: Store, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a second delivery of the shard that commits while this one is probing
    run_id = store.start_run("scan", ["192.0.2.1/32"])
    shard = one_shard(run_id, scope_of("192.0.2.1"), range(1, 10))
    winner = ShardRecord(shard.shard_id, "portintel-9@w9", "w9/192.0.2.250", 0, 0)

    async def racing_verify(
        sink: Any, run_id: int, plan: Plan, scope: Scope, options: VerifyOptions
    ) -> VerifyResult:
        assert store.add_shard(run_id, winner, [])
        sink.add_observations(run_id, [claim("192.0.2.1", 7)])
        return VerifyResult(open=1, observations=1)

    monkeypatch.setattr(work, "verify", racing_verify)

    # When this delivery tries to store its own results
    outcome = run_shard(shard, store, worker="portintel-1@w1", vantage_name="w1")

    # Then it reports the winner's record, and its own observation was not stored
    assert outcome == ShardOutcome.of_record(winner, Status.ALREADY)
    assert list(store.iter_endpoint_observations()) == []


def test_tls_profiles_found_in_a_shard_are_stored_with_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.verify.tls.model import TlsProfile

    profile = TlsProfile(ip="192.0.2.1", port=443, outcome="ok", versions=("TLSv1.3",))

    async def verify_with_tls(
        sink: Any, run_id: int, plan: Plan, scope: Scope, options: VerifyOptions
    ) -> VerifyResult:
        sink.save_tls_profile(run_id, profile)
        sink.add_observations(run_id, [claim("192.0.2.1", 443)])
        return VerifyResult(open=1, observations=1)

    monkeypatch.setattr(work, "verify", verify_with_tls)
    run_id = store.start_run("scan", ["192.0.2.1/32"])
    shard = one_shard(run_id, scope_of("192.0.2.1"), range(440, 450))

    assert run_shard(shard, store, worker="w1", vantage_name="w1").status is Status.STORED
    assert list(store.tls_profiles(run_id)) == [profile]


def test_an_outcome_round_trips_as_json_data() -> None:
    outcome = ShardOutcome(
        "tcp-1", Status.STORED, "portintel-1@w1", "w1/127.0.0.1", 3, 2, ("192.0.2.9",)
    )
    data = outcome.as_dict()
    assert data["status"] == "stored" and data["walls"] == ["192.0.2.9"]
    assert ShardOutcome.from_dict(data | {"added_later": 1}) == outcome
