"""Shared async HTTP for the connectors: rate limit, bounded retries, status -> error mapping.

Every provider request goes through `SourceHttp.request`, so the rules live in one place:
only transient failures (429, 5xx, timeouts, resets) are retried; a 429's Retry-After is
honoured; tries and total waiting are bounded; 400/401/403 are never retried. httpx errors
are translated into the `core.errors` tree here, keeping the cause.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from core.errors import (
    TRANSIENT,
    AuthError,
    QuotaError,
    RateLimited,
    SchemaError,
    SourceError,
    SourceUnavailable,
)

T = TypeVar("T")

Classifier = Callable[[httpx.Response], SourceError | None]
"""A connector's own reading of an error response; None falls back to the defaults."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    max_total_wait: float = 60.0  # seconds spent waiting across all retries of one call
    max_retry_after: float = 30.0  # a Retry-After longer than this is not waited out
    base_wait: float = 0.5


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def default_classify(source: str, response: httpx.Response) -> SourceError:
    """Map an HTTP error response onto the error tree."""
    status = response.status_code
    detail = _short(response.text) if "json" in response.headers.get("content-type", "") else ""
    suffix = f": {detail}" if detail else ""
    if status == 429:
        return RateLimited(
            source,
            f"rate limited (HTTP 429){suffix}",
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
    if status in (401, 403):
        return AuthError(source, f"key rejected (HTTP {status}){suffix}")
    if status == 402:
        return QuotaError(source, f"out of credits (HTTP 402){suffix}")
    if status >= 500:
        return SourceUnavailable(source, f"server error (HTTP {status})")
    return SourceError(source, f"request failed (HTTP {status}){suffix}")


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return exc.retry_after
        # Exponential backoff with full jitter, capped.
        ceiling = min(policy.max_retry_after, policy.base_wait * 2 ** (state.attempt_number - 1))
        return random.uniform(0, ceiling)

    return wait


async def with_retries(source: str, policy: RetryPolicy, call: Callable[[], Awaitable[T]]) -> T:
    """Run `call`, retrying transient source errors within the policy's bounds."""
    waited = 0.0
    wait_for = _wait(policy)

    def next_wait(state: RetryCallState) -> float:
        nonlocal waited
        delay = wait_for(state)
        exc = state.outcome.exception() if state.outcome else None
        too_long = delay > policy.max_retry_after or waited + delay > policy.max_total_wait
        if too_long and isinstance(exc, BaseException):
            raise exc
        waited += delay
        return delay

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(TRANSIENT),
        stop=stop_after_attempt(policy.attempts),
        wait=next_wait,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover


class SourceHttp:
    """One provider's HTTP access: base URL, auth, rate limit, retries, error mapping."""

    def __init__(
        self,
        source: str,
        client: httpx.AsyncClient,
        limiter: AsyncLimiter,
        policy: RetryPolicy | None = None,
        classify: Classifier | None = None,
    ) -> None:
        self.source = source
        self.client = client
        self.limiter = limiter
        self.policy = policy or RetryPolicy()
        self.classify = classify  # the provider's own reading of error bodies
        self.requests = 0  # sent over the wire, retries included

    async def _once(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json: Any,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        async with self.limiter:
            self.requests += 1
            try:
                response = await self.client.request(
                    method, path, params=params, json=json, headers=headers
                )
            except httpx.TimeoutException as exc:
                raise SourceUnavailable(self.source, f"timed out ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                raise SourceUnavailable(
                    self.source, f"cannot connect ({type(exc).__name__}: {exc})"
                ) from exc
        if response.is_success:
            return response
        error = self.classify(response) if self.classify else None
        raise error or default_classify(self.source, response)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return await with_retries(
            self.source, self.policy, lambda: self._once(method, path, params, json, headers)
        )

    async def get_json(self, path: str, **kwargs: Any) -> Any:
        response = await self.request("GET", path, **kwargs)
        return decode_json(self.source, response)

    async def post_json(self, path: str, **kwargs: Any) -> Any:
        response = await self.request("POST", path, **kwargs)
        return decode_json(self.source, response)


def decode_json(source: str, response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise SchemaError(
            source, f"response from {response.request.url.path} is not valid JSON"
        ) from exc
