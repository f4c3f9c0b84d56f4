"""ConnectorContext.cached: a re-run is free, and its records keep the real fetch time."""

from __future__ import annotations

import asyncio
from pathlib import Path

from connectors.base import ConnectorSpec
from tests.connectors.helpers import make_context

SPEC = ConnectorSpec(name="demo", default_url="http://127.0.0.1:9", url_env="X")


def test_a_cache_hit_keeps_the_first_fetch_time_and_sends_nothing(tmp_path: Path) -> None:
    calls: list[int] = []

    async def fetch() -> dict[str, int] | None:
        calls.append(1)
        return None if len(calls) > 1 else {"ports": 3}

    async def twice() -> tuple[object, object]:
        ctx = make_context(SPEC, SPEC.default_url, credentials=(), tmp_path=tmp_path)
        first = await ctx.cached("host", {"ip": "192.0.2.1"}, fetch)
        await asyncio.sleep(0.01)
        again = await ctx.cached("host", {"ip": "192.0.2.1"}, fetch)
        await ctx.http.client.aclose()
        return first, again

    first, again = asyncio.run(twice())
    assert calls == [1]
    assert again.cached and not first.cached  # type: ignore[attr-defined]
    assert again.fetched_at == first.fetched_at  # type: ignore[attr-defined]
    record = again.record("demo", "host", "192.0.2.1")  # type: ignore[attr-defined]
    assert record.payload == {"ports": 3}
    assert record.fetched_at == first.fetched_at  # type: ignore[attr-defined]


def test_no_data_is_cached_too(tmp_path: Path) -> None:
    calls: list[int] = []

    async def fetch() -> None:
        calls.append(1)

    async def twice() -> None:
        ctx = make_context(SPEC, SPEC.default_url, credentials=(), tmp_path=tmp_path)
        for _ in range(2):
            assert (await ctx.cached("host", {"ip": "192.0.2.2"}, fetch)).value is None
        await ctx.http.client.aclose()

    asyncio.run(twice())
    assert calls == [1]
