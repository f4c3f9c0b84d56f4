"""Remembering which endpoints a file already claimed, in bounded memory.

Duplicates are dropped and counted, which needs every endpoint seen so far. A set is
fastest, but a 1 GB file can name tens of millions of endpoints: past `MEMORY_KEYS` the
keys move to a temporary SQLite file (deleted on close), so memory stays flat while the
lookups stay exact. SQLite is in the standard library; no server is involved.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from core.models import Endpoint

MEMORY_KEYS = 200_000


class SeenEndpoints:
    """`add(endpoint)` is True the first time an endpoint is added, False after."""

    def __init__(self, memory_keys: int = MEMORY_KEYS) -> None:
        self._memory: set[str] | None = set()
        self._limit = memory_keys
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._db: sqlite3.Connection | None = None

    @staticmethod
    def key(endpoint: Endpoint) -> str:
        return f"{endpoint.ip} {endpoint.port} {endpoint.transport.value}"

    @property
    def spilled(self) -> bool:
        return self._db is not None

    def add(self, endpoint: Endpoint) -> bool:
        key = self.key(endpoint)
        if self._memory is not None:
            if key in self._memory:
                return False
            self._memory.add(key)
            if len(self._memory) > self._limit:
                self._spill()
            return True
        assert self._db is not None
        cursor = self._db.execute("INSERT OR IGNORE INTO seen(key) VALUES (?)", (key,))
        return cursor.rowcount == 1

    def _spill(self) -> None:
        assert self._memory is not None
        self._dir = tempfile.TemporaryDirectory(prefix="portintel-import-")
        db = sqlite3.connect(Path(self._dir.name) / "seen.db", isolation_level=None)
        # A scratch index: durability is worthless here, speed is not.
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("CREATE TABLE seen(key TEXT PRIMARY KEY) WITHOUT ROWID")
        db.execute("BEGIN")
        db.executemany("INSERT INTO seen(key) VALUES (?)", ((k,) for k in self._memory))
        self._memory = None
        self._db = db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
