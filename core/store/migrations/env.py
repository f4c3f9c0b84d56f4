"""Alembic environment for the portintel store.

At runtime `core.store.engine.migrate` hands over an open connection in
`config.attributes["connection"]`: no alembic.ini is needed and the migration runs in the
caller's transaction. A developer running the alembic CLI can instead set
`sqlalchemy.url` in a Config of their own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from core.store.tables import metadata


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    if context.is_offline_mode():
        context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = sa.create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()


_main()
