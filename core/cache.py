"""The response cache: a re-run within the TTL asks no provider and spends no credit.

Keys are digests of (source, call, query parameters): callers pass no secrets, and the
digest means a careless caller still cannot leak one into the cache's file names.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import diskcache


def cache_key(source: str, call: str, params: dict[str, Any]) -> str:
    blob = json.dumps([source, call, params], sort_keys=True, default=str)
    return f"{source}:{hashlib.sha256(blob.encode()).hexdigest()}"


class ResponseCache:
    """diskcache-backed store of decoded provider responses, with a TTL per source."""

    def __init__(self, directory: Path, *, refresh: bool = False) -> None:
        self._cache = diskcache.Cache(str(directory))
        self.refresh = refresh  # --refresh: never read, still write
        self.hits = 0

    def get(self, key: str) -> Any | None:
        if self.refresh:
            return None
        value = self._cache.get(key)
        if value is not None:
            self.hits += 1
        return value

    def set(self, key: str, value: Any, ttl: float) -> None:
        self._cache.set(key, value, expire=ttl)

    def close(self) -> None:
        self._cache.close()
