"""The store: SQLAlchemy Core tables with Alembic migrations; SQLite by default, PostgreSQL by URL.

`Store(url)` opens a database and migrates it to the newest schema; see `core.store.store`.
"""

from core.store.store import Store

__all__ = ["Store"]
