"""Remembering which endpoints a file already claimed, in bounded memory.

Duplicates are dropped and counted, which needs every endpoint seen so far. A set is
fastest, but a 1 GB file can name tens of millions of endpoints: past `MEMORY_KEYS` the
keys move to a temporary SQLite file (deleted on close), so memory stays flat while the
lookups stay exact. SQLite is in the standard library; no server is involved.

Once spilled, most keys are new (duplicates are a few percent of a download), and asking
SQLite about each one cost more than the rest of the import line. So a Bloom filter of
fixed size answers "certainly new" for almost all of them without SQLite, and new keys
reach the file in batches; SQLite is asked only when the filter says "maybe", and its
answer is the exact one. The filter only ever skips a lookup whose answer is "not there".
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from core.models import Endpoint, Transport

MEMORY_KEYS = 200_000

FILTER_BITS = 1 << 26
"""8 MiB of filter, allocated on spilling and never grown. Two probes per key: with 1M keys
spilled, 1 new key in 1,000 is looked up for nothing; with 10M, 1 in 15."""

FLUSH_KEYS = 10_000
"""New keys held in memory before they are written to the file in one go, sorted: the
B-tree takes them faster in key order (a million keys, 800,000 of them spilled: 3.4 ->
2.6 us a key, all of `add` counted)."""

CACHE_KIB = 16 << 10
"""SQLite's page cache for the file, fixed: at the default 2 MiB a million keys already
miss it on most inserts."""

_TRANSPORT = {t: t.value for t in Transport}


class SeenEndpoints:
    """`add(endpoint)` is True the first time an endpoint is added, False after."""

    def __init__(self, memory_keys: int = MEMORY_KEYS, *, filter_bits: int = FILTER_BITS) -> None:
        self._memory: set[str] | None = set()
        self._limit = memory_keys
        self._filter_bits = filter_bits
        self._filter = bytearray()
        self._pending: set[str] = set()  # added since the last write to the file
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._db: sqlite3.Connection | None = None

    @staticmethod
    def key(endpoint: Endpoint) -> str:
        return f"{endpoint.ip} {endpoint.port} {_TRANSPORT[endpoint.transport]}"

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
        if key in self._pending:
            return False
        if self._probe(key) and self._stored(key):
            return False
        self._pending.add(key)
        if len(self._pending) >= FLUSH_KEYS:
            self._flush()
        return True

    def _probe(self, key: str) -> bool:
        """Set the key's two filter bits; True if both were set already (maybe seen)."""
        digest = hash(key) & 0xFFFF_FFFF_FFFF_FFFF  # str hashes are stable within a process
        seen = True
        for position in (digest % self._filter_bits, (digest >> 32) % self._filter_bits):
            byte, bit = position >> 3, 1 << (position & 7)
            if not self._filter[byte] & bit:
                seen = False
                self._filter[byte] |= bit
        return seen

    def _stored(self, key: str) -> bool:
        assert self._db is not None
        return self._db.execute("SELECT 1 FROM seen WHERE key = ?", (key,)).fetchone() is not None

    def _flush(self) -> None:
        assert self._db is not None
        rows = ((key,) for key in sorted(self._pending))
        self._db.executemany("INSERT INTO seen(key) VALUES (?)", rows)
        self._pending.clear()

    def _spill(self) -> None:
        assert self._memory is not None
        self._dir = tempfile.TemporaryDirectory(prefix="portintel-import-")
        db = sqlite3.connect(Path(self._dir.name) / "seen.db", isolation_level=None)
        # A scratch index: durability is worthless here, speed is not.
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        db.execute("CREATE TABLE seen(key TEXT PRIMARY KEY) WITHOUT ROWID")
        db.execute("BEGIN")
        db.executemany("INSERT INTO seen(key) VALUES (?)", ((k,) for k in sorted(self._memory)))
        self._filter = bytearray(self._filter_bits // 8 + 1)
        for key in self._memory:
            self._probe(key)
        self._memory = None
        self._db = db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
        self._filter = bytearray()
        self._pending.clear()
