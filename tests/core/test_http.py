"""SourceHttp: what is retried, how long we wait, and how statuses map onto errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from aiolimiter import AsyncLimiter

from core.errors import (
    AuthError,
    QuotaError,
    RateLimited,
    SchemaError,
    SourceError,
    SourceUnavailable,
)
from core.http import RetryPolicy, SourceHttp, parse_retry_after

FAST = RetryPolicy(attempts=4, max_total_wait=2.0, max_retry_after=1.0, base_wait=0.01)


def client_for(replies: list[httpx.Response | Exception]) -> tuple[SourceHttp, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        reply = replies[min(len(seen) - 1, len(replies) - 1)]
        if isinstance(reply, Exception):
            raise reply
        return reply

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://127.0.0.1")
    return SourceHttp("demo", client, AsyncLimiter(1000, 1), FAST), seen


def run(http: SourceHttp, call: Callable[[SourceHttp], object]) -> object:
    async def go() -> object:
        async with http.client:
            return await call(http)  # type: ignore[misc]

    return asyncio.run(go())


def test_429_with_retry_after_is_retried_then_succeeds() -> None:
    http, seen = client_for(
        [httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(200, json={"ok": 1})]
    )
    assert run(http, lambda h: h.get_json("/x")) == {"ok": 1}
    assert len(seen) == 2
    assert http.requests == 2


def test_retry_after_longer_than_the_policy_allows_fails_at_once() -> None:
    http, seen = client_for([httpx.Response(429, headers={"Retry-After": "3600"})])
    with pytest.raises(RateLimited) as caught:
        run(http, lambda h: h.get_json("/x"))
    assert caught.value.retry_after == 3600
    assert len(seen) == 1


def test_429_storm_gives_up_after_the_bounded_tries() -> None:
    http, seen = client_for([httpx.Response(429, headers={"Retry-After": "0"})])
    with pytest.raises(RateLimited):
        run(http, lambda h: h.get_json("/x"))
    assert len(seen) == FAST.attempts


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, SourceError), (401, AuthError), (403, AuthError), (402, QuotaError), (404, SourceError)],
)
def test_client_errors_are_never_retried(status: int, error: type[SourceError]) -> None:
    http, seen = client_for([httpx.Response(status, json={"error": "no"})])
    with pytest.raises(error) as caught:
        run(http, lambda h: h.get_json("/x"))
    assert len(seen) == 1
    assert str(caught.value).startswith("demo: ")
    assert not isinstance(caught.value, (RateLimited, SourceUnavailable))


def test_5xx_and_connection_errors_are_retried() -> None:
    http, seen = client_for(
        [httpx.Response(502), httpx.ConnectError("refused"), httpx.Response(200, json=[1])]
    )
    assert run(http, lambda h: h.get_json("/x")) == [1]
    assert len(seen) == 3


def test_timeouts_become_source_unavailable_keeping_the_cause() -> None:
    http, _ = client_for([httpx.ReadTimeout("slow")])
    with pytest.raises(SourceUnavailable, match="timed out") as caught:
        run(http, lambda h: h.get_json("/x"))
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


def test_non_json_body_is_a_schema_error() -> None:
    http, _ = client_for([httpx.Response(200, text='{"truncated": ')])
    with pytest.raises(SchemaError, match="not valid JSON"):
        run(http, lambda h: h.get_json("/x"))


def test_a_connector_classifier_wins_over_the_defaults() -> None:
    http, seen = client_for([httpx.Response(400, json={"detail": "API key not found"})])
    http.classify = lambda r: AuthError("demo", "key not found") if r.status_code == 400 else None
    with pytest.raises(AuthError):
        run(http, lambda h: h.get_json("/x"))
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("header", "expected"), [(None, None), ("", None), ("2", 2.0), ("-5", 0.0), ("soon", None)]
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date_in_the_past_is_zero() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
