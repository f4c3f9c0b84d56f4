"""Fixtures for the store tests: a fresh store per test, on SQLite and on PostgreSQL.

Every test that takes `db_url` (or `store`) runs twice: on a SQLite file, and on a fresh
database of a real PostgreSQL server (tests/core/conftest.py starts it; a missing server
skips the PostgreSQL half locally and fails it under CI=true).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.store import Store


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'portintel.db'}"
        return
    yield request.getfixturevalue("pg_url")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store(db_url) as opened:
        yield opened
