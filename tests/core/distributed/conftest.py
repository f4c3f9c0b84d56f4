"""Fixtures for the shard tests: a store on SQLite and on PostgreSQL, and scopes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.store import Store
from core.targets import Entry, Scope, build_scope


def scope_of(*targets: str, exclude: tuple[str, ...] = ()) -> Scope:
    return asyncio.run(build_scope([Entry(t) for t in targets], [Entry(x) for x in exclude]))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'portintel.db'}"
        return
    yield request.getfixturevalue("pg_url")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store(db_url) as opened:
        yield opened
