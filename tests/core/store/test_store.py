"""The Store API against a real SQLite file: round trips, streaming, upserts, durability."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, timedelta

import pytest
import sqlalchemy as sa

from core.errors import InputError, StoreError
from core.models import (
    Conflict,
    Endpoint,
    Kind,
    Observation,
    PortState,
    RawRecord,
    RunStatus,
    Service,
    SourceRun,
    SourceSeen,
    Status,
    Transport,
)
from core.store import Store, tables
from core.store import store as store_module
from tests.core.store.factories import T0, full_observation, observation


def _all(store: Store, **kwargs: object) -> list[tuple[Endpoint, list[Observation]]]:
    return list(store.iter_endpoint_observations(**kwargs))  # type: ignore[arg-type]


# -- runs ------------------------------------------------------------------------------


def test_an_empty_store_has_no_runs(store: Store) -> None:
    assert store.runs() == []
    assert store.latest_run_id() is None


def test_a_run_round_trips_with_its_sources(store: Store) -> None:
    run_id = store.start_run("enrich", ["192.0.2.0/24", "2001:db8::/64"])
    store.save_source_run(run_id, SourceRun(source="shodan", status=RunStatus.RUNNING))
    store.save_source_run(
        run_id,
        SourceRun(
            source="censys",
            status=RunStatus.FAILED,
            requests=3,
            records=2,
            observations=5,
            credits_spent=1.5,
            errors=("censys: key rejected (HTTP 401)",),
        ),
    )
    store.finish_run(run_id, RunStatus.PARTIAL)

    run = store.run(run_id)
    assert run.command == "enrich"
    assert run.targets == ("192.0.2.0/24", "2001:db8::/64")
    assert run.status is RunStatus.PARTIAL
    assert run.started_at.tzinfo is UTC and run.finished_at is not None
    assert run.finished_at.tzinfo is UTC and run.finished_at >= run.started_at
    assert [s.source for s in run.sources] == ["censys", "shodan"]
    assert run.sources[0] == SourceRun(
        source="censys",
        status=RunStatus.FAILED,
        requests=3,
        records=2,
        observations=5,
        credits_spent=1.5,
        errors=("censys: key rejected (HTTP 401)",),
    )
    assert store.runs() == [run]
    assert store.latest_run_id() == run_id


def test_saving_a_source_run_again_replaces_it(store: Store) -> None:
    run_id = store.start_run("enrich", [])
    store.save_source_run(run_id, SourceRun(source="shodan", status=RunStatus.RUNNING, records=1))
    store.save_source_run(run_id, SourceRun(source="shodan", status=RunStatus.OK, records=7))

    (source,) = store.run(run_id).sources
    assert source.status is RunStatus.OK and source.records == 7


def test_runs_are_listed_oldest_first_and_the_latest_is_the_last(store: Store) -> None:
    first = store.start_run("enrich", [])
    second = store.start_run("verify", [])
    assert [r.id for r in store.runs()] == [first, second]
    assert store.latest_run_id() == second


def test_asking_for_a_missing_run_says_which_runs_exist(store: Store) -> None:
    latest = store.start_run("enrich", [])
    with pytest.raises(InputError, match=rf"no run 99 .*latest is {latest}"):
        store.run(99)


# -- raw records and observations ------------------------------------------------------


def test_raw_payloads_round_trip(store: Store) -> None:
    run_id = store.start_run("enrich", [])
    raw = RawRecord(
        source="shodan",
        endpoint_kind="host",
        query="192.0.2.1",
        fetched_at=T0,
        payload={"ip_str": "192.0.2.1", "data": [{"port": 22, "nested": [1, None, "x"]}]},
    )
    raw_id = store.add_raw(run_id, raw)
    assert list(store.iter_raw(run_id)) == [(raw_id, raw)]
    assert list(store.iter_raw(run_id + 1)) == []


def test_every_observation_field_round_trips(store: Store) -> None:
    run_id = store.start_run("import", [])
    raw_id = store.add_raw(
        run_id,
        RawRecord(
            source="import:nmap", endpoint_kind="file", query="x", fetched_at=T0, payload=None
        ),
    )
    full = full_observation(raw_id=raw_id)
    minimal = observation("192.0.2.7", 22, observed_at=None)
    assert store.add_observations(run_id, [full, minimal]) == 2

    got = {obs.endpoint: obs for _, group in _all(store) for obs in group}
    assert got[full.endpoint] == full
    assert got[minimal.endpoint] == minimal
    # The instant survived, and came back in UTC (SQLite itself keeps no zone).
    back = got[full.endpoint]
    assert back.observed_at is not None and back.observed_at.tzinfo is UTC
    assert back.observed_at == full.observed_at
    assert back.observed_at.hour == 2  # 04:05 at +02:00
    assert back.tls is not None and back.tls.cert is not None
    assert back.tls.cert.not_after is not None and back.tls.cert.not_after.tzinfo is UTC
    assert got[minimal.endpoint].observed_at is None
    # Rebuilt models behave like validated ones: they serialise identically.
    assert back.model_dump_json() == full.model_dump_json()


def test_observations_come_back_grouped_by_endpoint_in_order_across_runs(store: Store) -> None:
    # Given two runs that saw endpoints in scrambled order
    first = store.start_run("enrich", [])
    second = store.start_run("enrich", [])
    store.add_observations(
        first,
        [
            observation("198.51.100.9", 80, at=T0),
            observation("192.0.2.1", 443, at=T0),
            observation("192.0.2.1", 53, transport=Transport.UDP, at=T0),
            observation("2001:db8::1", 22, at=T0),
        ],
    )
    store.add_observations(
        second,
        [
            observation("192.0.2.1", 443, "censys", at=T0 + timedelta(days=1)),
            observation("192.0.2.1", 53, at=T0 + timedelta(days=1)),
        ],
    )

    # When the history is read
    groups = _all(store)

    # Then each endpoint appears once, ordered by (ip text, port number, transport), with
    # all of its history
    assert [str(endpoint) for endpoint, _ in groups] == [
        "192.0.2.1:53/tcp",
        "192.0.2.1:53/udp",
        "192.0.2.1:443/tcp",
        "198.51.100.9:80/tcp",
        "[2001:db8::1]:22/tcp",
    ]
    by_endpoint = dict(groups)
    assert [o.source for o in by_endpoint[Endpoint(ip="192.0.2.1", port=443)]] == [
        "shodan",
        "censys",
    ]
    assert all(o.endpoint == endpoint for endpoint, group in groups for o in group)


def test_reading_can_be_limited_to_some_addresses(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small IN chunks, so the filter is split into several queries.
    monkeypatch.setattr(store_module, "_IN_CHUNK", 2)
    run_id = store.start_run("enrich", [])
    ips = [f"192.0.2.{n}" for n in range(1, 8)]
    store.add_observations(run_id, [observation(ip, 80) for ip in reversed(ips)])

    # Non-canonical spellings are accepted; an address with no observations is no error.
    wanted = ["192.0.2.7", " 192.0.2.3", "192.0.2.1", "192.0.2.5", "203.0.113.1"]
    got = [endpoint.ip for endpoint, _ in _all(store, ips=wanted)]
    assert got == ["192.0.2.1", "192.0.2.3", "192.0.2.5", "192.0.2.7"]
    assert _all(store, ips=[]) == []


def test_a_failing_read_of_observations_is_a_store_error(store: Store, db_url: str) -> None:
    # Given a store whose observations table another hand has dropped
    run_id = store.start_run("enrich", [])
    store.add_observations(run_id, [observation("192.0.2.1", 80)])
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE observations"))
    engine.dispose()

    # Then reading them fails with the store's own error, naming what it was doing
    with pytest.raises(StoreError, match="reading observations failed"):
        _all(store)


def test_a_bad_address_filter_is_an_input_error(store: Store) -> None:
    with pytest.raises(InputError, match="not-an-ip"):
        _all(store, ips=["not-an-ip"])


def test_an_interrupted_stream_keeps_every_observation_it_gave(
    store: Store, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a source that fails after yielding 25 observations, with sorted blocks of 10:
    # two blocks are written, and five observations wait in a third
    monkeypatch.setattr(store_module, "SORTED_ROWS", 10)
    run_id = store.start_run("enrich", [])

    def interrupted() -> Iterator[Observation]:
        for port in range(1, 26):
            yield observation("192.0.2.1", port)
        raise KeyboardInterrupt

    # When storing is interrupted
    with pytest.raises(KeyboardInterrupt):
        store.add_observations(run_id, interrupted())

    # Then all of them are durable, the waiting ones too: a new connection sees them
    with Store(db_url) as reopened:
        stored = [
            obs.endpoint.port for _, group in reopened.iter_endpoint_observations() for obs in group
        ]
    assert sorted(stored) == list(range(1, 26))


def test_sorted_blocks_keep_each_endpoints_observations_in_the_order_given(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given blocks of 7, and three sightings of each of five endpoints given round by
    # round (a search's order: every endpoint once, then again), told apart by banner
    monkeypatch.setattr(store_module, "SORTED_ROWS", 7)
    run_id = store.start_run("enrich", [])
    ips = [f"192.0.2.{n}" for n in (9, 3, 7, 1, 5)]
    given = [
        observation(ip, 443).model_copy(update={"banner": f"round {round_}"})
        for round_ in range(3)
        for ip in ips
    ]

    # When they are stored
    assert store.add_observations(run_id, given) == 15

    # Then each endpoint reads back with its sightings in the order they were given
    read = {endpoint.ip: [obs.banner for obs in group] for endpoint, group in _all(store)}
    assert read == {ip: ["round 0", "round 1", "round 2"] for ip in ips}


def test_services_can_be_written_while_observations_are_streamed(store: Store) -> None:
    # reconcile_all's shape: a read cursor stays open while batches of services commit.
    run_id = store.start_run("enrich", [])
    store.add_observations(run_id, [observation("192.0.2.1", port) for port in range(1, 40)])
    store_module_batch = store_module.BATCH
    assert store_module_batch > 0

    def services() -> Iterator[Service]:
        for endpoint, group in store.iter_endpoint_observations():
            yield _service(endpoint, state=group[0].state)

    assert store.save_services(run_id, services()) == 39
    assert len(list(store.services(run_id))) == 39


# -- services ---------------------------------------------------------------------------


def _service(endpoint: Endpoint, **fields: object) -> Service:
    values: dict[str, object] = {
        "endpoint": endpoint,
        "state": PortState.OPEN,
        "status": Status.UNVERIFIED,
        "first_seen": T0,
        "last_seen": T0 + timedelta(hours=1),
        "per_source": (
            SourceSeen(source="shodan", first_seen=T0, last_seen=T0, state=PortState.OPEN),
        ),
    }
    values.update(fields)
    return Service.model_validate(values)


def test_every_service_field_round_trips(store: Store) -> None:
    run_id = store.start_run("enrich", [])
    full = full_observation()
    service = _service(
        full.endpoint,
        state=PortState.CLOSED,
        status=Status.REFUTED,
        service="http",
        product="nginx",
        version="1.24.0",
        chosen_from="verifier",
        cpes=full.cpes,
        conflicts=(Conflict(field="product", values={"censys": "Apache", "shodan": "nginx"}),),
        per_source=(
            SourceSeen(source="shodan", first_seen=T0, last_seen=T0, state=PortState.OPEN),
            SourceSeen(source="verifier", first_seen=T0, last_seen=T0, state=PortState.CLOSED),
        ),
        hostnames=full.hostnames,
        vulns=full.vulns,
        tags=full.tags,
        org="Example Org",
        http_title="Welcome",
        banner=full.banner,
        tls=full.tls,
        colour="red",
    )
    assert store.save_services(run_id, [service]) == 1
    assert list(store.services(run_id)) == [service]


def test_saving_a_service_again_replaces_it_and_its_sources(store: Store) -> None:
    run_id = store.start_run("enrich", [])
    endpoint = Endpoint(ip="192.0.2.1", port=22)
    store.save_services(run_id, [_service(endpoint)])
    updated = _service(
        endpoint,
        status=Status.CONFIRMED,
        per_source=(
            SourceSeen(source="shodan", first_seen=T0, last_seen=T0, state=PortState.CLOSED),
            SourceSeen(source="verifier", first_seen=T0, last_seen=T0, state=PortState.OPEN),
        ),
    )
    store.save_services(run_id, [updated])

    assert list(store.services(run_id)) == [updated]
    with store._engine.connect() as conn:  # the per-source table reports filter on
        rows = conn.execute(
            sa.select(tables.service_sources.c.source, tables.service_sources.c.state).order_by(
                tables.service_sources.c.source
            )
        ).all()
    assert [tuple(r) for r in rows] == [("shodan", "closed"), ("verifier", "open")]


def test_services_are_kept_per_run_in_endpoint_order(store: Store) -> None:
    first = store.start_run("enrich", [])
    second = store.start_run("enrich", [])
    endpoints = [
        Endpoint(ip="198.51.100.1", port=80),
        Endpoint(ip="192.0.2.1", port=443),
        Endpoint(ip="192.0.2.1", port=22),
    ]
    store.save_services(first, [_service(e) for e in endpoints])
    store.save_services(second, [_service(endpoints[0], status=Status.CONFIRMED)])

    assert [str(s.endpoint) for s in store.services(first)] == [
        "192.0.2.1:22/tcp",
        "192.0.2.1:443/tcp",
        "198.51.100.1:80/tcp",
    ]
    assert [s.status for s in store.services(second)] == [Status.CONFIRMED]
    assert list(store.services(99)) == []


def test_observation_kinds_and_states_round_trip(store: Store) -> None:
    run_id = store.start_run("verify", [])
    probes = [
        observation("192.0.2.1", port, "verifier", kind=Kind.ACTIVE, state=state)
        for port, state in enumerate(PortState, start=1)
    ]
    store.add_observations(run_id, probes)
    assert [o for _, group in _all(store) for o in group] == probes
