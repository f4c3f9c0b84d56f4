"""Bulk inserts and upserts, for positional (SQLite's qmark) and named paramstyles."""

from __future__ import annotations

from collections.abc import Iterator
from operator import itemgetter
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.errors import StoreError
from core.store import tables
from core.store.bulk import BulkInsert


@pytest.fixture(params=["qmark", "named"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    # PostgreSQL's drivers take named parameters: SQLite in "named" style walks that path.
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'b.db'}", paramstyle=request.param)
    tables.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            tables.runs.insert().values(
                id=1, started_at=sa.func.now(), command="x", targets=[], status="running"
            )
        )
    yield engine
    engine.dispose()


def _row(port: int, state: str) -> tuple[object, ...]:
    """A service_sources row, in the table's column order."""
    return (
        1,  # run_id
        "192.0.2.1",
        port,
        "tcp",
        "shodan",
        "2026-01-01 00:00:00.000000",  # first_seen
        "2026-01-02 00:00:00.000000",  # last_seen
        state,
    )


def test_an_upsert_inserts_new_keys_and_replaces_existing_ones(engine: sa.Engine) -> None:
    upsert = BulkInsert(engine, tables.service_sources, upsert=True)
    with engine.begin() as conn:
        upsert.execute_values(conn, [_row(22, "open"), _row(80, "open")])
        upsert.execute_values(conn, [_row(80, "closed"), _row(443, "open")])
        upsert.execute_values(conn, [])  # nothing to do is fine
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(tables.service_sources.c.port, tables.service_sources.c.state).order_by(
                tables.service_sources.c.port
            )
        ).all()
    assert [tuple(r) for r in rows] == [(22, "open"), (80, "closed"), (443, "open")]


def test_a_plain_insert_skips_the_autoincrement_key(engine: sa.Engine) -> None:
    insert = BulkInsert(engine, tables.raw_records)
    row = {
        "run_id": 1,
        "source": "shodan",
        "endpoint_kind": "host",
        "query": "192.0.2.1",
        "fetched_at": "2026-01-01 00:00:00.000000",
        "payload": "null",
    }
    with engine.begin() as conn:
        rows = [row, dict(row, query="192.0.2.2")]
        insert.execute_values(conn, [tuple(r[name] for name in insert.columns) for r in rows])
    with engine.connect() as conn:
        ids = conn.execute(sa.select(tables.raw_records.c.id)).scalars().all()
    assert sorted(ids) == [1, 2]


def test_rows_in_column_order_are_stored_as_given(engine: sa.Engine) -> None:
    upsert = BulkInsert(engine, tables.service_sources, upsert=True)
    assert upsert.columns == tuple(c.name for c in tables.service_sources.columns)
    with engine.begin() as conn:
        upsert.execute_values(conn, [_row(22, "open"), _row(80, "open")])
        upsert.execute_values(conn, [_row(80, "closed")])
        upsert.execute_values(conn, [])
    with engine.connect() as conn:
        # As stored: the driver's own values, no type processing on the way out.
        rows = conn.exec_driver_sql("SELECT * FROM service_sources ORDER BY port").all()
    assert [tuple(r) for r in rows] == [
        _row(22, "open"),
        _row(80, "closed"),
    ]


def test_tuple_rows_follow_the_columns_whatever_the_placeholder_order(
    engine: sa.Engine,
) -> None:
    insert = BulkInsert(engine, tables.service_sources)
    if insert._positional:
        # Pretend the placeholders came out in another order than the columns.
        names = list(reversed(insert.columns))
        insert.sql = insert.sql.replace(f"({', '.join(insert.columns)})", f"({', '.join(names)})")
        insert._reorder = itemgetter(*(insert.columns.index(n) for n in names))
    with engine.begin() as conn:
        insert.execute_values(conn, [_row(443, "open")])
    with engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT * FROM service_sources").one()
    assert tuple(row) == _row(443, "open")


def test_an_unsupported_backend_is_refused(tmp_path: Path) -> None:
    class Fake(sa.engine.default.DefaultDialect):
        name = "fakedb"

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    engine.dialect = Fake()
    with pytest.raises(StoreError, match=r"fakedb.*SQLite or PostgreSQL"):
        BulkInsert(engine, tables.services)
    engine.dispose()
