"""Bulk writes that hand plain rows straight to the driver's executemany.

SQLAlchemy's Core executemany builds and type-processes every row in Python, which costs
more than SQLite's own insert. The statements here are compiled once per table, in the
backend's own dialect (so an upsert is SQLite's or PostgreSQL's ON CONFLICT), and run
with `exec_driver_sql`: rows are already in driver form (see codec.TimeCodec), built as
tuples in column order, and go to a positional paramstyle as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from core.errors import StoreError


class BulkInsert:
    """One compiled INSERT (or upsert on the primary key) for executemany of rows given
    as tuples in `columns` order (the table's, without an autoincrement key)."""

    def __init__(self, engine: sa.Engine, table: sa.Table, *, upsert: bool = False) -> None:
        columns = [c.name for c in table.columns if not _is_autoincrement(table, c)]
        stmt: Any = _insert(engine, table).values({name: sa.bindparam(name) for name in columns})
        if upsert:
            keys = [c.name for c in table.primary_key.columns]
            stmt = stmt.on_conflict_do_update(
                index_elements=keys,
                set_={name: stmt.excluded[name] for name in columns if name not in keys},
            )
        compiled = stmt.compile(dialect=engine.dialect)
        self.sql = str(compiled)
        self.columns = tuple(columns)
        names = compiled.positiontup
        assert names is None or len(names) > 1, "itemgetter of one name gives no tuple"
        # Positional paramstyles (SQLite's qmark) take tuples in placeholder order; named
        # ones (PostgreSQL's drivers) take dicts.
        self._positional = names is not None
        # A tuple in `columns` order needs no work when the placeholders are in that order
        # too (they are, for the statements above); otherwise it is reordered.
        self._reorder = (
            None
            if names is None or tuple(names) == self.columns
            else itemgetter(*(self.columns.index(name) for name in names))
        )

    def execute_values(self, connection: sa.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Run for rows given as tuples of values in `columns` order."""
        if not rows:
            return
        params: Any
        if not self._positional:
            columns = self.columns
            params = [dict(zip(columns, row, strict=True)) for row in rows]
        elif self._reorder is None:
            params = rows
        else:
            params = [self._reorder(row) for row in rows]
        connection.exec_driver_sql(self.sql, params)


def _is_autoincrement(table: sa.Table, column: sa.Column[Any]) -> bool:
    return column is table.autoincrement_column


def _insert(engine: sa.Engine, table: sa.Table) -> Any:
    name = engine.dialect.name
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise StoreError(
        f"the store uses {name}, which portintel does not support; use SQLite or PostgreSQL"
    )
