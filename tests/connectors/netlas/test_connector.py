"""NetlasConnector end to end against the emulator on 127.0.0.1, through a real context."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.base import Job
from connectors.netlas import NetlasConnector
from core.errors import (
    AuthError,
    BudgetExhausted,
    QuotaError,
    RateLimited,
    SchemaError,
    SourceError,
    SourceUnavailable,
)
from core.http import RetryPolicy
from tests.connectors.helpers import collect, make_context, run, small_policy
from tests.emulators.netlas import NetlasEmulator

KNOWN = "203.0.113.10"
UNKNOWN = "203.0.113.99"  # no fixture: Netlas answers 200 with no ports
NETWORK = "198.51.100.0/24"  # 53 responses: pages of 20, 20 and 13
EXACT = "198.51.100.0/27"  # 40 responses: two full pages, then an empty one


def connector(
    emu: NetlasEmulator,
    tmp_path: Path,
    *,
    key: str | None = None,
    budget: float | None = None,
    timeout: float = 5.0,
    policy: RetryPolicy | None = None,
) -> NetlasConnector:
    ctx = make_context(
        NetlasConnector.spec,
        emu.url,
        credentials=(emu.key if key is None else key,),
        tmp_path=tmp_path,
        budget=budget,
        timeout=timeout,
        policy=policy,
    )
    return NetlasConnector(ctx)


def error_texts(exc: BaseException) -> str:
    """The message of an error and of every cause under it."""
    texts = []
    seen: BaseException | None = exc
    while seen is not None:
        texts.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    return "\n".join(texts)


# -- lookups, search, account ---------------------------------------------------------------
def test_lookup_sends_the_key_header(netlas_emulator, tmp_path) -> None:
    conn = connector(netlas_emulator, tmp_path)
    records = collect(conn, Job(ips=[KNOWN, UNKNOWN]))

    # The address Netlas knows nothing about yields nothing.
    assert [(r.source, r.endpoint_kind, r.query) for r in records] == [("netlas", "host", KNOWN)]
    assert records[0].payload["ip"] == KNOWN
    calls = netlas_emulator.calls("/api/host/")
    assert [c.path for c in calls] == [f"/api/host/{KNOWN}/", f"/api/host/{UNKNOWN}/"]
    assert all(c.headers["x-api-key"] == netlas_emulator.key for c in calls)
    assert (conn.credits_spent, conn.requests_sent) == (2, 2)
    assert len(NetlasConnector.normalize(records[0])) == 5


def test_search_walks_pages_and_stops_at_a_short_one(netlas_emulator, tmp_path) -> None:
    conn = connector(netlas_emulator, tmp_path)
    records = collect(conn, Job(ips=[], networks=[NETWORK]))

    query = f'ip:"{NETWORK}"'
    assert [(r.endpoint_kind, r.query) for r in records] == [("search", query)] * 3
    calls = netlas_emulator.calls("/api/responses/")
    assert [c.query for c in calls] == [{"q": query, "start": str(n)} for n in (0, 20, 40)]
    assert [len(r.payload["items"]) for r in records] == [20, 20, 13]
    observations = [o for r in records for o in NetlasConnector.normalize(r)]
    assert len({o.endpoint for o in observations}) == 53  # 44 web servers, 9 also on ssh
    assert conn.credits_spent == 3


def test_search_stops_at_an_empty_page(netlas_emulator, tmp_path) -> None:
    records = collect(connector(netlas_emulator, tmp_path), Job(ips=[], networks=[EXACT]))
    assert [len(r.payload["items"]) for r in records] == [20, 20]
    starts = [c.query["start"] for c in netlas_emulator.calls("/api/responses/")]
    assert starts == ["0", "20", "40"]


def test_estimate_is_arithmetic_only(netlas_emulator, tmp_path) -> None:
    estimate = connector(netlas_emulator, tmp_path).estimate(
        Job(ips=[KNOWN, UNKNOWN], networks=[NETWORK, EXACT])
    )
    assert (estimate.source, estimate.requests, estimate.credits) == ("netlas", 4, 4)
    assert "at least" in estimate.note
    assert netlas_emulator.requests == []


def test_account_reads_plan_and_counters(netlas_emulator, tmp_path) -> None:
    account = run(connector(netlas_emulator, tmp_path).account())
    assert (account.plan, account.credits_left) == ("Community", 47)
    assert "47 of 50 requests left" in account.detail
    assert "2025-03-04" in account.detail
    assert [c.path for c in netlas_emulator.requests] == [
        "/api/users/current/",
        "/api/users/profile_data/",
    ]


def test_schema_drift_variant_is_accepted(netlas_emulator, tmp_path) -> None:
    (record,) = collect(connector(netlas_emulator, tmp_path), Job(ips=["192.0.2.200"]))
    assert [o.endpoint.port for o in NetlasConnector.normalize(record)] == [8080]


def test_broken_variant_is_a_schema_error(netlas_emulator, tmp_path) -> None:
    with pytest.raises(SchemaError, match=r"ports\.0\.port"):
        collect(connector(netlas_emulator, tmp_path), Job(ips=["192.0.2.201"]))


# -- faults ------------------------------------------------------------------------------
def test_429_then_success_is_retried(netlas_emulator, tmp_path) -> None:
    netlas_emulator.fail_next("429")
    assert len(collect(connector(netlas_emulator, tmp_path), Job(ips=[KNOWN]))) == 1
    assert len(netlas_emulator.requests) == 2


def test_retry_after_is_read_from_the_429(netlas_emulator, tmp_path) -> None:
    # A Retry-After longer than the policy allows is not waited out: proof it was read.
    netlas_emulator.retry_after = "1"
    netlas_emulator.fail_next("429")
    policy = RetryPolicy(attempts=3, max_total_wait=5.0, max_retry_after=0.5, base_wait=0.0)
    with pytest.raises(RateLimited) as info:
        collect(connector(netlas_emulator, tmp_path, policy=policy), Job(ips=[KNOWN]))
    assert info.value.retry_after == 1.0
    assert "request_was_throttled" in str(info.value)
    assert len(netlas_emulator.requests) == 1


def test_429_forever_gives_up_after_bounded_tries(netlas_emulator, tmp_path) -> None:
    netlas_emulator.fail_always("429")
    with pytest.raises(RateLimited):
        collect(connector(netlas_emulator, tmp_path, policy=small_policy(3)), Job(ips=[KNOWN]))
    assert len(netlas_emulator.requests) == 3


def test_500_then_success_is_retried(netlas_emulator, tmp_path) -> None:
    netlas_emulator.fail_next("500")
    assert len(collect(connector(netlas_emulator, tmp_path), Job(ips=[KNOWN]))) == 1
    assert len(netlas_emulator.requests) == 2


@pytest.mark.parametrize("how", ["fault", "wrong_key"])
def test_bad_key_400_is_an_auth_error_sent_once(netlas_emulator, tmp_path, how) -> None:
    key = None
    if how == "fault":
        netlas_emulator.fail_next("bad_key")
    else:
        key = "netlas-wrong-wrong-wrong-wrong"
    with pytest.raises(AuthError, match="NETLAS_API_KEY") as info:
        collect(connector(netlas_emulator, tmp_path, key=key), Job(ips=[KNOWN]))
    assert len(netlas_emulator.requests) == 1
    assert "API key not found" in str(info.value)
    assert netlas_emulator.key not in error_texts(info.value)


def test_missing_key_fails_before_sending(netlas_emulator, tmp_path) -> None:
    with pytest.raises(AuthError, match="NETLAS_API_KEY"):
        collect(connector(netlas_emulator, tmp_path, key=""), Job(ips=[KNOWN]))
    assert netlas_emulator.requests == []


def test_daily_limit_is_a_quota_error(netlas_emulator, tmp_path) -> None:
    netlas_emulator.fail_next("no_credits")
    with pytest.raises(QuotaError, match="Exceeded Maximum Allowed Queries"):
        collect(connector(netlas_emulator, tmp_path), Job(ips=[], networks=[NETWORK]))
    assert len(netlas_emulator.requests) == 1


def test_plan_limit_403_is_an_auth_error(netlas_emulator, tmp_path) -> None:
    netlas_emulator.fail_next("plan_limit")
    with pytest.raises(AuthError, match="plan"):
        collect(connector(netlas_emulator, tmp_path), Job(ips=[], networks=[NETWORK]))
    assert len(netlas_emulator.requests) == 1


@pytest.mark.parametrize("fault", ["truncate", "garbage"])
def test_unreadable_bodies_are_schema_errors(netlas_emulator, tmp_path, fault) -> None:
    netlas_emulator.fail_next(fault)
    with pytest.raises(SchemaError, match="not valid JSON"):
        collect(connector(netlas_emulator, tmp_path), Job(ips=[KNOWN]))


def test_slow_answers_time_out(netlas_emulator, tmp_path) -> None:
    netlas_emulator.slow_seconds = 1.0
    netlas_emulator.fail_always("slow")
    conn = connector(netlas_emulator, tmp_path, timeout=0.2, policy=small_policy(2))
    with pytest.raises(SourceUnavailable, match="timed out"):
        collect(conn, Job(ips=[KNOWN]))
    assert len(netlas_emulator.requests) == 2


def test_reset_once_is_retried_and_forever_fails(netlas_emulator, tmp_path) -> None:
    netlas_emulator.fail_next("reset")
    assert len(collect(connector(netlas_emulator, tmp_path), Job(ips=[KNOWN]))) == 1

    netlas_emulator.fail_always("reset")
    with pytest.raises(SourceUnavailable):
        collect(connector(netlas_emulator, tmp_path / "other"), Job(ips=[KNOWN]))


# -- budget, cache, secrets ---------------------------------------------------------------
def test_budget_refuses_before_overspending(netlas_emulator, tmp_path) -> None:
    conn = connector(netlas_emulator, tmp_path, budget=2)
    seen = []

    async def walk() -> None:
        async for record in conn.collect(Job(ips=[KNOWN], networks=[NETWORK])):
            seen.append(record.endpoint_kind)

    with pytest.raises(BudgetExhausted):
        run(walk())
    assert seen == ["host", "search"]
    assert len(netlas_emulator.requests) == 2
    assert conn.credits_spent == 2


def test_second_run_with_the_same_cache_sends_nothing(netlas_emulator, tmp_path) -> None:
    job = Job(ips=[KNOWN, UNKNOWN], networks=[NETWORK])
    first = collect(connector(netlas_emulator, tmp_path), job)
    sent = len(netlas_emulator.requests)

    again = connector(netlas_emulator, tmp_path)
    second = collect(again, job)

    assert len(netlas_emulator.requests) == sent == 5  # 2 lookups + 3 search pages
    assert again.credits_spent == 0
    assert [r.payload for r in second] == [r.payload for r in first]
    assert [r.fetched_at for r in second] == [r.fetched_at for r in first]


def test_the_key_never_leaks(netlas_emulator, tmp_path) -> None:
    key = netlas_emulator.key
    records = collect(connector(netlas_emulator, tmp_path), Job(ips=[KNOWN], networks=[NETWORK]))
    observations = [o for r in records for o in NetlasConnector.normalize(r)]
    errors = []
    for fault in ("bad_key", "no_credits", "plan_limit", "500", "garbage"):
        netlas_emulator.fail_always(fault)
        with pytest.raises(SourceError) as info:
            collect(connector(netlas_emulator, tmp_path / fault), Job(ips=[KNOWN]))
        errors.append(error_texts(info.value))
    netlas_emulator.fail_always(None)
    errors.append(str(run(connector(netlas_emulator, tmp_path).account())))

    assert records and observations
    assert all(key not in r.model_dump_json() for r in records)
    assert all(key not in o.model_dump_json() for o in observations)
    assert all(key not in text for text in errors)
    cache_files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert cache_files
    assert all(key.encode() not in p.read_bytes() for p in cache_files)
