from __future__ import annotations

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
