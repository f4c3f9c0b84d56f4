"""Shared helpers for connector tests: a real `ConnectorContext` pointed at an emulator.

Every connector test builds its context the way the pipeline does (httpx client, limiter,
retry policy, budget, diskcache in tmp_path), only with small bounds so faults stay fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import TypeVar

import httpx
from aiolimiter import AsyncLimiter

from connectors.base import Connector, ConnectorContext, ConnectorSpec, Job
from core.cache import ResponseCache
from core.credits import Budget
from core.http import RetryPolicy, SourceHttp
from core.models import RawRecord

T = TypeVar("T")


def small_policy(attempts: int = 3) -> RetryPolicy:
    """Few tries and tiny waits: a fault test must fail (or recover) in well under a second."""
    return RetryPolicy(attempts=attempts, max_total_wait=5.0, max_retry_after=2.0, base_wait=0.0)


def make_context(
    spec: ConnectorSpec,
    base_url: str,
    *,
    credentials: tuple[str, ...],
    tmp_path: Path,
    budget: float | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
    policy: RetryPolicy | None = None,
) -> ConnectorContext:
    """A context like the pipeline builds, aimed at `base_url` (an emulator on 127.0.0.1).

    The cache lives in `tmp_path / "cache"`, so two contexts built with the same tmp_path
    share it (a "second run"). Keep-alive is off so the client can be driven by several
    `asyncio.run` calls; `trust_env=False` so no proxy from the environment is ever used.
    """
    client = httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout),
        headers=headers or {},
        limits=httpx.Limits(max_keepalive_connections=0),
        trust_env=False,
        follow_redirects=False,
    )
    return ConnectorContext(
        spec=spec,
        http=SourceHttp(
            spec.name, client, AsyncLimiter(1000, 1), policy or small_policy(), classify=None
        ),
        budget=Budget(spec.name, budget),
        base_url=base_url,
        credentials=credentials,
        cache=ResponseCache(tmp_path / "cache"),
        settings={"timeout": timeout},
    )


def run(awaitable: Awaitable[T]) -> T:
    """Drive one coroutine to completion (no pytest-asyncio here)."""

    async def main() -> T:
        return await awaitable

    return asyncio.run(main())


async def drain(records: AsyncIterator[RawRecord]) -> list[RawRecord]:
    return [record async for record in records]


def collect(connector: Connector, job: Job) -> list[RawRecord]:
    """Every raw record `connector.collect(job)` yields."""
    return run(drain(connector.collect(job)))
