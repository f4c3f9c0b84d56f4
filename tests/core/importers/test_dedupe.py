from __future__ import annotations

import pytest

from core.importers import dedupe
from core.importers.dedupe import SeenEndpoints
from core.models import Endpoint, Transport


def _ep(n: int, transport: Transport = Transport.TCP) -> Endpoint:
    return Endpoint(ip=f"2001:db8::{n:x}", port=80, transport=transport)


def test_exact_in_memory_and_after_spilling_to_disk() -> None:
    seen = SeenEndpoints(memory_keys=10)
    try:
        assert all(seen.add(_ep(n)) for n in range(25))
        assert seen.spilled
        assert not any(seen.add(_ep(n)) for n in range(25))  # every one remembered
        assert seen.add(_ep(3, Transport.UDP))  # udp is another endpoint
        assert not seen.add(_ep(3, Transport.UDP))
    finally:
        seen.close()


def test_exact_when_the_filter_is_too_small_to_tell_keys_apart() -> None:
    # 64 filter bits for hundreds of keys: nearly every probe says "maybe", so SQLite
    # (and the keys still waiting to be written) must give every answer.
    seen = SeenEndpoints(memory_keys=5, filter_bits=64)
    try:
        first = [seen.add(_ep(n)) for n in range(400)]
        again = [seen.add(_ep(n)) for n in range(400)]
        assert all(first) and not any(again)
        assert seen.add(_ep(1, Transport.UDP)) and not seen.add(_ep(1, Transport.UDP))
    finally:
        seen.close()


def test_keys_are_remembered_across_batched_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dedupe, "FLUSH_KEYS", 7)
    seen = SeenEndpoints(memory_keys=3)
    try:
        order = [n % 50 for n in range(200)]  # each key four times, interleaved
        results = [seen.add(_ep(n)) for n in order]
        assert results == [i < 50 for i in range(200)]
        assert seen.spilled
    finally:
        seen.close()
