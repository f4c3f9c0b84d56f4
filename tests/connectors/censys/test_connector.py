"""CensysConnector end to end against the emulator on 127.0.0.1, through a real context."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.base import Job
from connectors.censys import CensysConnector
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
from tests.emulators.censys import HOST_TYPE, CensysEmulator

KNOWN = "198.51.100.23"
MISSING = "198.51.100.250"  # inside the documentation range, no fixture: a 404
NETWORK = "198.51.100.0/24"  # 130 hosts and one web property in the search fixture


def connector(
    emu: CensysEmulator,
    tmp_path: Path,
    *,
    org: bool = True,
    token: str | None = None,
    budget: float | None = None,
    timeout: float = 5.0,
    policy: RetryPolicy | None = None,
) -> CensysConnector:
    creds = (token if token is not None else emu.key, emu.org_id if org else "")
    ctx = make_context(
        CensysConnector.spec,
        emu.url,
        credentials=creds,
        tmp_path=tmp_path,
        budget=budget,
        timeout=timeout,
        policy=policy,
    )
    return CensysConnector(ctx)


def error_texts(exc: BaseException) -> str:
    """The message of an error and of every cause under it."""
    texts = []
    seen: BaseException | None = exc
    while seen is not None:
        texts.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    return "\n".join(texts)


# -- lookups, search, account ---------------------------------------------------------------
def test_lookup_sends_token_org_and_vendor_accept(censys_emulator, tmp_path) -> None:
    conn = connector(censys_emulator, tmp_path)
    records = collect(conn, Job(ips=[KNOWN, MISSING]))

    # The 404 is "no data": nothing yielded, no error.
    assert [(r.endpoint_kind, r.query, r.source) for r in records] == [("host", KNOWN, "censys")]
    assert records[0].payload["result"]["resource"]["ip"] == KNOWN
    calls = censys_emulator.calls("/v3/global/asset/host/")
    assert [c.path.rsplit("/", 1)[1] for c in calls] == [KNOWN, MISSING]
    for call in calls:
        assert call.headers["authorization"] == f"Bearer {censys_emulator.key}"
        assert call.headers["accept"] == HOST_TYPE
        assert call.query == {"organization_id": censys_emulator.org_id}
    assert conn.credits_spent == 2
    assert conn.requests_sent == 2
    assert len(CensysConnector.normalize(records[0])) == 5


def test_free_account_sends_no_organization_parameter(censys_emulator, tmp_path) -> None:
    records = collect(connector(censys_emulator, tmp_path, org=False), Job(ips=[KNOWN]))
    assert len(records) == 1
    assert censys_emulator.requests[0].query == {}


def test_search_walks_every_page(censys_emulator, tmp_path) -> None:
    conn = connector(censys_emulator, tmp_path)
    records = collect(conn, Job(ips=[], networks=[NETWORK]))

    query = f'host.ip: "{NETWORK}"'
    assert [(r.endpoint_kind, r.query) for r in records] == [("search", query)] * 2
    bodies = [c.json() for c in censys_emulator.calls("/v3/global/search/query")]
    assert [b["query"] for b in bodies] == [query, query]
    assert [b["page_size"] for b in bodies] == [100, 100]
    assert "page_token" not in bodies[0]
    assert bodies[1]["page_token"] == records[0].payload["result"]["next_page_token"] != ""
    assert records[1].payload["result"]["next_page_token"] == ""
    observations = [o for r in records for o in CensysConnector.normalize(r)]
    # 129 hosts with one service each, and 198.51.100.23 with five.
    assert len({o.endpoint.ip for o in observations}) == 130
    assert len(observations) == 134
    assert conn.credits_spent == 2


def test_search_stops_at_an_empty_first_page(censys_emulator, tmp_path) -> None:
    conn = connector(censys_emulator, tmp_path)
    assert collect(conn, Job(ips=[], networks=["192.0.2.0/25"])) == []
    assert len(censys_emulator.requests) == 1


def test_without_organisation_networks_are_looked_up(censys_emulator, tmp_path) -> None:
    conn = connector(censys_emulator, tmp_path, org=False)
    job = Job(ips=[], networks=["203.0.113.8/29"])
    estimate = conn.estimate(job)
    records = collect(conn, job)

    assert [r.query for r in records] == ["203.0.113.10"]
    assert censys_emulator.calls("/v3/global/search") == []
    assert len(censys_emulator.calls("/v3/global/asset/host/")) == 8
    assert (estimate.requests, estimate.credits) == (8, 8)
    assert "CENSYS_ORG_ID" in estimate.note


def test_estimate_is_arithmetic_only(censys_emulator, tmp_path) -> None:
    conn = connector(censys_emulator, tmp_path)
    estimate = conn.estimate(Job(ips=[KNOWN, MISSING, "192.0.2.7"], networks=[NETWORK]))
    assert (estimate.source, estimate.requests, estimate.credits) == ("censys", 4, 4)
    assert "at least" in estimate.note
    assert censys_emulator.requests == []


def test_account_of_an_organisation(censys_emulator, tmp_path) -> None:
    account = run(connector(censys_emulator, tmp_path).account())
    assert account.plan == "organization"
    assert account.credits_left == 24950
    assert "2027-01-01" in account.detail  # the earliest expiry
    assert censys_emulator.requests[0].path == (
        f"/v3/accounts/organizations/{censys_emulator.org_id}/credits"
    )


def test_account_of_a_free_user(censys_emulator, tmp_path) -> None:
    account = run(connector(censys_emulator, tmp_path, org=False).account())
    assert (account.plan, account.credits_left) == ("free", 97)
    assert "2026-07-01" in account.detail


def test_schema_drift_variant_is_accepted(censys_emulator, tmp_path) -> None:
    (record,) = collect(connector(censys_emulator, tmp_path), Job(ips=["192.0.2.200"]))
    assert [o.endpoint.port for o in CensysConnector.normalize(record)] == [8080]


def test_broken_variant_is_a_schema_error(censys_emulator, tmp_path) -> None:
    with pytest.raises(SchemaError, match=r"services\.0\.port"):
        collect(connector(censys_emulator, tmp_path), Job(ips=["192.0.2.201"]))


# -- faults ------------------------------------------------------------------------------
def test_429_then_success_is_retried(censys_emulator, tmp_path) -> None:
    censys_emulator.fail_next("429")
    records = collect(connector(censys_emulator, tmp_path), Job(ips=[KNOWN]))
    assert len(records) == 1
    assert len(censys_emulator.requests) == 2


def test_retry_after_is_read_from_the_429(censys_emulator, tmp_path) -> None:
    # A Retry-After longer than the policy allows is not waited out: proof it was read.
    censys_emulator.retry_after = "1"
    censys_emulator.fail_next("429")
    policy = RetryPolicy(attempts=3, max_total_wait=5.0, max_retry_after=0.5, base_wait=0.0)
    with pytest.raises(RateLimited) as info:
        collect(connector(censys_emulator, tmp_path, policy=policy), Job(ips=[KNOWN]))
    assert info.value.retry_after == 1.0
    assert len(censys_emulator.requests) == 1


def test_429_forever_gives_up_after_bounded_tries(censys_emulator, tmp_path) -> None:
    censys_emulator.fail_always("429")
    with pytest.raises(RateLimited):
        collect(connector(censys_emulator, tmp_path, policy=small_policy(3)), Job(ips=[KNOWN]))
    assert len(censys_emulator.requests) == 3


def test_500_then_success_is_retried(censys_emulator, tmp_path) -> None:
    censys_emulator.fail_next("500")
    assert len(collect(connector(censys_emulator, tmp_path), Job(ips=[KNOWN]))) == 1
    assert len(censys_emulator.requests) == 2


@pytest.mark.parametrize("how", ["fault", "wrong_token"])
def test_bad_key_is_an_auth_error_sent_once(censys_emulator, tmp_path, how) -> None:
    token = None
    if how == "fault":
        censys_emulator.fail_next("bad_key")
    else:
        token = "censys_pat_wrong_wrong_wrong_wrong"
    with pytest.raises(AuthError, match="CENSYS_API_TOKEN") as info:
        collect(connector(censys_emulator, tmp_path, token=token), Job(ips=[KNOWN]))
    assert len(censys_emulator.requests) == 1
    assert censys_emulator.key not in error_texts(info.value)


def test_missing_token_fails_before_sending(censys_emulator, tmp_path) -> None:
    with pytest.raises(AuthError, match="CENSYS_API_TOKEN"):
        collect(connector(censys_emulator, tmp_path, token=""), Job(ips=[KNOWN]))
    assert censys_emulator.requests == []


def test_no_credits_is_a_quota_error(censys_emulator, tmp_path) -> None:
    censys_emulator.fail_next("no_credits")
    with pytest.raises(QuotaError, match="insufficient balance"):
        collect(connector(censys_emulator, tmp_path), Job(ips=[KNOWN]))
    assert len(censys_emulator.requests) == 1


def test_plan_limit_is_an_auth_error(censys_emulator, tmp_path) -> None:
    censys_emulator.fail_next("plan_limit")
    with pytest.raises(AuthError, match="HTTP 403"):
        collect(connector(censys_emulator, tmp_path), Job(ips=[], networks=[NETWORK]))
    assert len(censys_emulator.requests) == 1


@pytest.mark.parametrize("fault", ["truncate", "garbage"])
def test_unreadable_bodies_are_schema_errors(censys_emulator, tmp_path, fault) -> None:
    censys_emulator.fail_next(fault)
    with pytest.raises(SchemaError, match="not valid JSON"):
        collect(connector(censys_emulator, tmp_path), Job(ips=[KNOWN]))


def test_slow_answers_time_out(censys_emulator, tmp_path) -> None:
    censys_emulator.slow_seconds = 1.0
    censys_emulator.fail_always("slow")
    conn = connector(censys_emulator, tmp_path, timeout=0.2, policy=small_policy(2))
    with pytest.raises(SourceUnavailable, match="timed out"):
        collect(conn, Job(ips=[KNOWN]))
    assert len(censys_emulator.requests) == 2


def test_reset_once_is_retried_and_forever_fails(censys_emulator, tmp_path) -> None:
    censys_emulator.fail_next("reset")
    assert len(collect(connector(censys_emulator, tmp_path), Job(ips=[KNOWN]))) == 1

    censys_emulator.fail_always("reset")
    with pytest.raises(SourceUnavailable):
        collect(connector(censys_emulator, tmp_path / "other"), Job(ips=[KNOWN]))


# -- budget, cache, secrets ---------------------------------------------------------------
def test_budget_refuses_before_overspending(censys_emulator, tmp_path) -> None:
    conn = connector(censys_emulator, tmp_path, budget=2)
    seen = []

    async def walk() -> None:
        async for record in conn.collect(Job(ips=[KNOWN, "192.0.2.7", "203.0.113.10"])):
            seen.append(record.query)

    with pytest.raises(BudgetExhausted):
        run(walk())
    assert seen == [KNOWN, "192.0.2.7"]
    assert len(censys_emulator.requests) == 2
    assert conn.credits_spent == 2


def test_second_run_with_the_same_cache_sends_nothing(censys_emulator, tmp_path) -> None:
    job = Job(ips=[KNOWN, MISSING], networks=[NETWORK])
    first = collect(connector(censys_emulator, tmp_path), job)
    sent = len(censys_emulator.requests)

    again = connector(censys_emulator, tmp_path)
    second = collect(again, job)

    assert len(censys_emulator.requests) == sent == 4  # 2 lookups + 2 search pages
    assert again.credits_spent == 0
    assert [r.payload for r in second] == [r.payload for r in first]
    assert [r.fetched_at for r in second] == [r.fetched_at for r in first]


def test_the_token_never_leaks(censys_emulator, tmp_path) -> None:
    key = censys_emulator.key
    records = collect(connector(censys_emulator, tmp_path), Job(ips=[KNOWN], networks=[NETWORK]))
    observations = [o for r in records for o in CensysConnector.normalize(r)]
    errors = []
    for fault in ("bad_key", "no_credits", "500", "garbage"):
        censys_emulator.fail_always(fault)
        with pytest.raises(SourceError) as info:
            collect(connector(censys_emulator, tmp_path / fault), Job(ips=[KNOWN]))
        errors.append(error_texts(info.value))
    censys_emulator.fail_always(None)
    errors.append(str(run(connector(censys_emulator, tmp_path).account())))

    assert records and observations
    assert all(key not in r.model_dump_json() for r in records)
    assert all(key not in o.model_dump_json() for o in observations)
    assert all(key not in text for text in errors)
    cache_files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert cache_files
    assert all(key.encode() not in p.read_bytes() for p in cache_files)
    # The organisation id is not a secret, but it is kept out of cache keys all the same.
    assert all(censys_emulator.org_id.encode() not in p.read_bytes() for p in cache_files)
