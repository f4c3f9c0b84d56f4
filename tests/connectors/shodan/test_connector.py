"""ShodanConnector end to end: the real shodan SDK against the Shodan emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.base import Account, Job
from connectors.shodan import ShodanConnector
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
from core.models import RawRecord
from tests.connectors.helpers import make_context, run, small_policy
from tests.emulators.shodan import ShodanEmulator

HOST = "198.51.100.23"
NETWORK = "198.51.100.0/24"


def connector(
    emu: ShodanEmulator,
    tmp_path: Path,
    *,
    key: str | None = None,
    budget: float | None = None,
    timeout: float = 5.0,
    policy: RetryPolicy | None = None,
) -> ShodanConnector:
    ctx = make_context(
        ShodanConnector.spec,
        emu.url,
        credentials=(key if key is not None else emu.key,),
        tmp_path=tmp_path,
        budget=budget,
        timeout=timeout,
        policy=policy,
    )
    return ShodanConnector(ctx)


def gather(conn: ShodanConnector, job: Job, into: list[RawRecord] | None = None) -> list[RawRecord]:
    """Collect every record; records yielded before a failure stay in `into`."""
    out = into if into is not None else []

    async def main() -> None:
        async for record in conn.collect(job):
            out.append(record)

    run(main())
    return out


def test_host_lookup_returns_the_host_and_skips_no_data(
    shodan_emulator: ShodanEmulator, tmp_path: Path
) -> None:
    conn = connector(shodan_emulator, tmp_path)
    records = gather(conn, Job(ips=[HOST, "192.0.2.99"]))
    # 192.0.2.99 is unknown to Shodan (404): no record, no error.
    assert [(r.endpoint_kind, r.query) for r in records] == [("host", HOST)]
    assert records[0].payload["ip_str"] == HOST
    assert len(ShodanConnector.normalize(records[0])) == 6
    assert [c.path for c in shodan_emulator.calls()] == [
        f"/shodan/host/{HOST}",
        "/shodan/host/192.0.2.99",
    ]
    assert conn.requests_sent == 2
    assert conn.credits_spent == 0  # host lookups cost no query credits


def test_search_walks_every_page_and_spends_a_credit_per_page(
    shodan_emulator: ShodanEmulator, tmp_path: Path
) -> None:
    conn = connector(shodan_emulator, tmp_path)
    records = gather(conn, Job(ips=[], networks=[NETWORK]))
    assert shodan_emulator.pages_for(f"net:{NETWORK}") == 2
    assert [r.query for r in records] == [f"net:{NETWORK}"] * 2
    calls = shodan_emulator.calls("/shodan/host/search")
    assert [(c.query["query"], c.query["page"]) for c in calls] == [
        (f"net:{NETWORK}", "1"),
        (f"net:{NETWORK}", "2"),
    ]
    observations = [o for r in records for o in ShodanConnector.normalize(r)]
    assert len(observations) == 155  # 75 hosts x 2 ports + the 5 banners of .23
    assert all(o.endpoint.ip.startswith("198.51.100.") for o in observations)
    assert conn.credits_spent == 2
    assert shodan_emulator.query_credits == 93 - 2


def test_search_stops_at_the_page_cap(shodan_emulator: ShodanEmulator, tmp_path: Path) -> None:
    conn = connector(shodan_emulator, tmp_path)
    conn.ctx.settings["max_pages"] = 1
    records = gather(conn, Job(ips=[], networks=[NETWORK]))
    assert len(records) == 1
    assert len(shodan_emulator.calls("/shodan/host/search")) == 1


def test_search_stops_at_an_empty_page(shodan_emulator: ShodanEmulator, tmp_path: Path) -> None:
    conn = connector(shodan_emulator, tmp_path)
    records = gather(conn, Job(ips=[], networks=["192.0.2.0/28"]))  # nothing in the corpus
    assert records == []
    assert len(shodan_emulator.calls("/shodan/host/search")) == 1


def test_account_reports_plan_and_query_credits(
    shodan_emulator: ShodanEmulator, tmp_path: Path
) -> None:
    conn = connector(shodan_emulator, tmp_path)
    account = run(conn.account())
    assert (account.plan, account.credits_left) == ("dev", 93.0)
    assert "93 query credits" in account.detail
    assert shodan_emulator.calls()[-1].path == "/api-info"


def test_estimate_is_pure_arithmetic(shodan_emulator: ShodanEmulator, tmp_path: Path) -> None:
    conn = connector(shodan_emulator, tmp_path)
    estimate = conn.estimate(Job(ips=[HOST, "192.0.2.7"], networks=[NETWORK, "203.0.113.0/24"]))
    assert (estimate.requests, estimate.credits) == (4, 2.0)
    assert "lower bound" in estimate.note
    assert conn.estimate(Job(ips=[HOST])).note == ""
    assert shodan_emulator.requests == []


def test_429_then_success_is_retried(shodan_emulator: ShodanEmulator, tmp_path: Path) -> None:
    shodan_emulator.retry_after = "0"
    shodan_emulator.fail_next("429")
    conn = connector(shodan_emulator, tmp_path)
    assert len(gather(conn, Job(ips=[HOST]))) == 1
    assert len(shodan_emulator.calls()) == 2
    assert conn.requests_sent == 2


def test_retry_after_is_read_and_a_long_one_is_not_waited_out(
    shodan_emulator: ShodanEmulator, tmp_path: Path
) -> None:
    # A Retry-After above the policy's max_retry_after: give up at once, saying how long.
    shodan_emulator.retry_after = "3600"
    shodan_emulator.fail_next("429")
    conn = connector(shodan_emulator, tmp_path)
    with pytest.raises(RateLimited) as info:
        gather(conn, Job(ips=[HOST]))
    assert info.value.retry_after == 3600
    assert len(shodan_emulator.calls()) == 1


def test_429_forever_fails_after_bounded_tries(
    shodan_emulator: ShodanEmulator, tmp_path: Path
) -> None:
    shodan_emulator.fail_always("429")
    conn = connector(shodan_emulator, tmp_path, policy=small_policy(attempts=3))
    with pytest.raises(RateLimited, match="Request rate limit reached"):
        gather(conn, Job(ips=[HOST]))
    assert len(shodan_emulator.calls()) == 3


@pytest.mark.parametrize("fault", ["500", "502"])
def test_server_error_then_success_is_retried(
    shodan_emulator: ShodanEmulator, tmp_path: Path, fault: str
) -> None:
    shodan_emulator.fail_next(fault)
    conn = connector(shodan_emulator, tmp_path)
    assert len(gather(conn, Job(ips=[HOST]))) == 1
    assert len(shodan_emulator.calls()) == 2


def test_server_error_forever_is_source_unavailable(
    shodan_emulator: ShodanEmulator, tmp_path: Path
) -> None:
    shodan_emulator.fail_always("500")
    conn = connector(shodan_emulator, tmp_path, policy=small_policy(attempts=2))
    with pytest.raises(SourceUnavailable, match="HTTP 500"):
        gather(conn, Job(ips=[HOST]))
    assert len(shodan_emulator.calls()) == 2


def test_wrong_key_is_an_auth_error_after_one_request(
    shodan_emulator: ShodanEmulator, tmp_path: Path
) -> None:
    conn = connector(shodan_emulator, tmp_path, key="not-the-right-key-000000")
    with pytest.raises(AuthError, match="Invalid API key") as info:
        gather(conn, Job(ips=[HOST]))
    assert "SHODAN_API_KEY" in str(info.value)
    assert len(shodan_emulator.calls()) == 1


def test_bad_key_fault_is_not_retried(shodan_emulator: ShodanEmulator, tmp_path: Path) -> None:
    shodan_emulator.fail_next("bad_key")
    conn = connector(shodan_emulator, tmp_path)
    with pytest.raises(AuthError):
        run(conn.account())
    assert len(shodan_emulator.calls()) == 1


def test_missing_key_fails_before_any_request(
    shodan_emulator: ShodanEmulator, tmp_path: Path
) -> None:
    conn = connector(shodan_emulator, tmp_path, key="")
    with pytest.raises(AuthError, match="SHODAN_API_KEY"):
        gather(conn, Job(ips=[HOST]))
    assert shodan_emulator.requests == []


def test_plan_forbidding_search_is_an_auth_error(
    shodan_emulator: ShodanEmulator, tmp_path: Path
) -> None:
    shodan_emulator.fail_next("403")
    conn = connector(shodan_emulator, tmp_path)
    with pytest.raises(AuthError, match="plan"):
        gather(conn, Job(ips=[], networks=[NETWORK]))
    assert len(shodan_emulator.calls()) == 1


def test_no_credits_fault_is_a_quota_error(shodan_emulator: ShodanEmulator, tmp_path: Path) -> None:
    shodan_emulator.fail_next("no_credits")
    conn = connector(shodan_emulator, tmp_path)
    with pytest.raises(QuotaError, match="query credits"):
        gather(conn, Job(ips=[], networks=[NETWORK]))
    assert len(shodan_emulator.calls()) == 1


def test_running_out_of_credits_mid_search_keeps_the_pages_already_fetched(
    shodan_emulator: ShodanEmulator, tmp_path: Path
) -> None:
    shodan_emulator.query_credits = 1
    conn = connector(shodan_emulator, tmp_path)
    records: list[RawRecord] = []
    with pytest.raises(QuotaError):
        gather(conn, Job(ips=[], networks=[NETWORK]), into=records)
    assert len(records) == 1
    assert len(shodan_emulator.calls("/shodan/host/search")) == 2


@pytest.mark.parametrize("fault", ["truncate", "garbage"])
def test_unparseable_body_is_a_schema_error(
    shodan_emulator: ShodanEmulator, tmp_path: Path, fault: str
) -> None:
    shodan_emulator.fail_next(fault)
    conn = connector(shodan_emulator, tmp_path)
    with pytest.raises(SchemaError, match="not valid JSON"):
        gather(conn, Job(ips=[HOST]))
    assert len(shodan_emulator.calls()) == 1  # not retried: the next answer would be the same


def test_slow_server_times_out(shodan_emulator: ShodanEmulator, tmp_path: Path) -> None:
    shodan_emulator.slow_seconds = 1.0
    shodan_emulator.fail_always("slow")
    conn = connector(shodan_emulator, tmp_path, timeout=0.2, policy=small_policy(attempts=2))
    with pytest.raises(SourceUnavailable, match="timed out"):
        gather(conn, Job(ips=[HOST]))
    assert conn.requests_sent == 2


def test_connection_reset_then_success_is_retried(
    shodan_emulator: ShodanEmulator, tmp_path: Path
) -> None:
    shodan_emulator.fail_next("reset")
    conn = connector(shodan_emulator, tmp_path)
    assert len(gather(conn, Job(ips=[HOST]))) == 1
    assert conn.requests_sent == 2


def test_connection_reset_forever_is_source_unavailable(
    shodan_emulator: ShodanEmulator, tmp_path: Path
) -> None:
    shodan_emulator.fail_always("reset")
    conn = connector(shodan_emulator, tmp_path, policy=small_policy(attempts=2))
    with pytest.raises(SourceUnavailable, match="cannot connect"):
        gather(conn, Job(ips=[HOST]))
    assert conn.requests_sent == 2


def test_budget_stops_before_the_request_that_would_exceed_it(
    shodan_emulator: ShodanEmulator, tmp_path: Path
) -> None:
    conn = connector(shodan_emulator, tmp_path, budget=1)
    records: list[RawRecord] = []
    with pytest.raises(BudgetExhausted):
        gather(conn, Job(ips=[], networks=[NETWORK]), into=records)
    assert len(records) == 1  # page 1 was paid for and kept
    assert len(shodan_emulator.calls("/shodan/host/search")) == 1  # page 2 never asked
    assert conn.credits_spent == 1


def test_second_run_with_the_same_cache_sends_nothing(
    shodan_emulator: ShodanEmulator, tmp_path: Path
) -> None:
    job = Job(ips=[HOST, "192.0.2.99"], networks=[NETWORK])
    first = gather(connector(shodan_emulator, tmp_path), job)
    sent = len(shodan_emulator.requests)
    assert sent == 4

    again = connector(shodan_emulator, tmp_path)
    second = gather(again, job)
    assert len(shodan_emulator.requests) == sent
    assert again.requests_sent == 0
    assert again.credits_spent == 0
    assert [r.payload for r in second] == [r.payload for r in first]


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def test_the_key_never_leaks(shodan_emulator: ShodanEmulator, tmp_path: Path) -> None:
    key = shodan_emulator.key
    conn = connector(shodan_emulator, tmp_path, timeout=0.2, policy=small_policy(attempts=1))
    job = Job(ips=[HOST, "2001:db8::25"], networks=[NETWORK])

    async def everything() -> tuple[list[RawRecord], Account]:
        return [r async for r in conn.collect(job)], await conn.account()

    records, account = run(everything())
    assert account.plan == "dev"
    observations = [o for r in records for o in ShodanConnector.normalize(r)]

    errors: list[BaseException] = []
    for fault in ("reset", "slow", "bad_key", "no_credits", "429", "500", "garbage"):
        shodan_emulator.fail_next(fault)
        fresh = connector(shodan_emulator, tmp_path / fault, timeout=0.2, policy=small_policy(1))
        # Only a search can run out of credits; the rest ask for a host, which changes no
        # emulator state even when a "slow" answer lands after the test has moved on.
        job = Job(ips=[], networks=[NETWORK]) if fault == "no_credits" else Job(ips=[HOST])
        with pytest.raises(SourceError) as info:
            gather(fresh, job)
        errors.append(info.value)

    assert key in shodan_emulator.requests[0].query.values()  # it was sent, as Shodan wants
    assert key not in json.dumps([r.model_dump(mode="json") for r in records])
    assert key not in json.dumps([o.model_dump(mode="json") for o in observations])
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
    messages = [repr(e) + str(e) for err in errors for e in _chain(err)]
    assert len(messages) > len(errors)  # causes are kept...
    assert not [m for m in messages if key in m]  # ...and none of them names the key


def test_sdk_is_pointed_at_our_url_with_its_own_sleep_off(
    shodan_emulator: ShodanEmulator, tmp_path: Path
) -> None:
    conn = connector(shodan_emulator, tmp_path, timeout=3.0)
    api: Any
    api, session = conn._client()
    assert api.base_url == shodan_emulator.url
    assert api.api_rate_limit == 0
    assert session.timeout == 3.0
