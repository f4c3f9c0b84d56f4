"""InternetDBConnector end to end against the InternetDB emulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.base import Job
from connectors.internetdb import InternetDBConnector
from core.errors import RateLimited, SchemaError, ScopeError, SourceUnavailable
from core.http import RetryPolicy
from core.models import Evidence, RawRecord
from tests.connectors.helpers import collect, make_context, run, small_policy
from tests.emulators.internetdb import InternetDBEmulator

HOST = "198.51.100.23"


def connector(
    emu: InternetDBEmulator,
    tmp_path: Path,
    *,
    budget: float | None = None,
    timeout: float = 5.0,
    policy: RetryPolicy | None = None,
) -> InternetDBConnector:
    ctx = make_context(
        InternetDBConnector.spec,
        emu.url,
        credentials=(),
        tmp_path=tmp_path,
        budget=budget,
        timeout=timeout,
        policy=policy,
    )
    return InternetDBConnector(ctx)


def test_spec_is_keyless_and_weak() -> None:
    spec = InternetDBConnector.spec
    assert (spec.name, spec.key_env, spec.weak) == ("internetdb", (), True)


def test_lookup_returns_the_host_and_skips_no_data(
    internetdb_emulator: InternetDBEmulator, tmp_path: Path
) -> None:
    conn = connector(internetdb_emulator, tmp_path)
    records = collect(conn, Job(ips=[HOST, "192.0.2.99"]))
    assert [(r.source, r.endpoint_kind, r.query) for r in records] == [("internetdb", "host", HOST)]
    observations = InternetDBConnector.normalize(records[0])
    assert [o.endpoint.port for o in observations] == [22, 53, 80, 443, 3306, 8443]
    assert all(o.evidence is Evidence.WEAK for o in observations)
    assert [c.path for c in internetdb_emulator.calls()] == [f"/{HOST}", "/192.0.2.99"]
    assert conn.requests_sent == 2
    # Keyless: nothing that looks like a credential goes out.
    for request in internetdb_emulator.calls():
        assert request.query == {}
        assert not {"authorization", "x-api-key"} & set(request.headers)


def test_ipv6_lookup(internetdb_emulator: InternetDBEmulator, tmp_path: Path) -> None:
    [record] = collect(connector(internetdb_emulator, tmp_path), Job(ips=["2001:db8::25"]))
    assert record.query == "2001:db8::25"
    assert internetdb_emulator.calls()[0].path == "/2001:db8::25"


def test_networks_are_expanded_and_each_address_looked_up_once(
    internetdb_emulator: InternetDBEmulator, tmp_path: Path
) -> None:
    conn = connector(internetdb_emulator, tmp_path)
    # 192.0.2.3 is also inside the network: asked once.
    records = collect(conn, Job(ips=["192.0.2.3"], networks=["192.0.2.0/29"]))
    assert [r.query for r in records] == ["192.0.2.3", "192.0.2.7"]
    assert sorted(c.path for c in internetdb_emulator.calls()) == sorted(
        f"/192.0.2.{i}" for i in range(8)
    )
    assert conn.requests_sent == 8


def test_estimate_counts_lookups_and_costs_nothing(
    internetdb_emulator: InternetDBEmulator, tmp_path: Path
) -> None:
    conn = connector(internetdb_emulator, tmp_path)
    estimate = conn.estimate(Job(ips=["192.0.2.3", HOST], networks=["192.0.2.0/29"]))
    assert (estimate.requests, estimate.credits) == (9, 0.0)
    assert internetdb_emulator.requests == []


def test_a_job_too_large_to_expand_is_refused(
    internetdb_emulator: InternetDBEmulator, tmp_path: Path
) -> None:
    conn = connector(internetdb_emulator, tmp_path)
    conn.ctx.settings["max_addresses"] = 16
    with pytest.raises(ScopeError, match="max_addresses"):
        conn.estimate(Job(ips=[], networks=["192.0.2.0/27"]))
    with pytest.raises(ScopeError):
        collect(conn, Job(ips=[], networks=["192.0.2.0/27"]))
    assert internetdb_emulator.requests == []


def test_account_is_keyless_and_sends_nothing(
    internetdb_emulator: InternetDBEmulator, tmp_path: Path
) -> None:
    account = run(connector(internetdb_emulator, tmp_path).account())
    assert account.detail == "keyless; no quota reported"
    assert (account.plan, account.credits_left) == (None, None)
    assert internetdb_emulator.requests == []


def test_429_then_success_is_retried(
    internetdb_emulator: InternetDBEmulator, tmp_path: Path
) -> None:
    internetdb_emulator.fail_next("429")
    conn = connector(internetdb_emulator, tmp_path)
    assert len(collect(conn, Job(ips=[HOST]))) == 1
    assert conn.requests_sent == 2


def test_a_long_retry_after_is_not_waited_out(
    internetdb_emulator: InternetDBEmulator, tmp_path: Path
) -> None:
    internetdb_emulator.retry_after = "3600"
    internetdb_emulator.fail_next("429")
    conn = connector(internetdb_emulator, tmp_path)
    with pytest.raises(RateLimited) as info:
        collect(conn, Job(ips=[HOST]))
    assert info.value.retry_after == 3600
    assert conn.requests_sent == 1


def test_429_forever_fails_after_bounded_tries(
    internetdb_emulator: InternetDBEmulator, tmp_path: Path
) -> None:
    internetdb_emulator.fail_always("429")
    conn = connector(internetdb_emulator, tmp_path, policy=small_policy(attempts=3))
    with pytest.raises(RateLimited):
        collect(conn, Job(ips=[HOST]))
    assert len(internetdb_emulator.calls()) == 3


def test_500_then_success_is_retried(
    internetdb_emulator: InternetDBEmulator, tmp_path: Path
) -> None:
    internetdb_emulator.fail_next("500")
    conn = connector(internetdb_emulator, tmp_path)
    assert len(collect(conn, Job(ips=[HOST]))) == 1
    assert conn.requests_sent == 2


def test_500_forever_is_source_unavailable(
    internetdb_emulator: InternetDBEmulator, tmp_path: Path
) -> None:
    internetdb_emulator.fail_always("500")
    conn = connector(internetdb_emulator, tmp_path, policy=small_policy(attempts=2))
    with pytest.raises(SourceUnavailable, match="HTTP 500"):
        collect(conn, Job(ips=[HOST]))
    assert len(internetdb_emulator.calls()) == 2


@pytest.mark.parametrize("fault", ["truncate", "garbage"])
def test_unparseable_body_is_a_schema_error(
    internetdb_emulator: InternetDBEmulator, tmp_path: Path, fault: str
) -> None:
    internetdb_emulator.fail_next(fault)
    conn = connector(internetdb_emulator, tmp_path)
    with pytest.raises(SchemaError, match="not valid JSON"):
        collect(conn, Job(ips=[HOST]))
    assert conn.requests_sent == 1


def test_slow_server_times_out(internetdb_emulator: InternetDBEmulator, tmp_path: Path) -> None:
    internetdb_emulator.fail_always("slow")
    conn = connector(internetdb_emulator, tmp_path, timeout=0.2, policy=small_policy(attempts=2))
    with pytest.raises(SourceUnavailable, match="timed out"):
        collect(conn, Job(ips=[HOST]))
    assert conn.requests_sent == 2


def test_connection_reset_then_success_is_retried(
    internetdb_emulator: InternetDBEmulator, tmp_path: Path
) -> None:
    internetdb_emulator.fail_next("reset")
    conn = connector(internetdb_emulator, tmp_path)
    assert len(collect(conn, Job(ips=[HOST]))) == 1
    assert conn.requests_sent == 2


def test_connection_reset_forever_is_source_unavailable(
    internetdb_emulator: InternetDBEmulator, tmp_path: Path
) -> None:
    internetdb_emulator.fail_always("reset")
    conn = connector(internetdb_emulator, tmp_path, policy=small_policy(attempts=2))
    with pytest.raises(SourceUnavailable, match="cannot connect"):
        collect(conn, Job(ips=[HOST]))
    assert conn.requests_sent == 2


def test_no_budget_is_needed(internetdb_emulator: InternetDBEmulator, tmp_path: Path) -> None:
    conn = connector(internetdb_emulator, tmp_path, budget=0)
    assert len(collect(conn, Job(ips=[HOST, "192.0.2.7"]))) == 2
    assert conn.credits_spent == 0


def test_second_run_with_the_same_cache_sends_nothing(
    internetdb_emulator: InternetDBEmulator, tmp_path: Path
) -> None:
    job = Job(ips=[HOST, "192.0.2.99"])  # a hit and a 404: both cached
    first = collect(connector(internetdb_emulator, tmp_path), job)
    assert len(internetdb_emulator.requests) == 2

    again = connector(internetdb_emulator, tmp_path)
    second: list[RawRecord] = collect(again, job)
    assert len(internetdb_emulator.requests) == 2
    assert again.requests_sent == 0
    assert [r.payload for r in second] == [r.payload for r in first]
