"""Opening a database: the engine, SQLite's pragmas, and migration to the newest schema.

Everything that can go wrong while opening (a bad URL, a missing driver, a directory that
cannot be written, a file that is not a database, a schema newer than this code) becomes
one `StoreError` line that names the database and says what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.util import CommandError

from core.errors import StoreError

SUPPORTED = ("sqlite", "postgresql")

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

_HINT = "point `db` in the config file (or PORTINTEL_DB) at a database you can write"
_MIGRATION_LOCK = 0x706F7274  # PostgreSQL advisory lock key held while migrating ("port")


def shown(url: sa.URL) -> str:
    """The URL as it may appear in a message or log: never with its password."""
    return url.render_as_string(hide_password=True)


def sqlite_file(url: sa.URL) -> Path | None:
    """The file behind a SQLite URL; None for in-memory or URI-style databases."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    return Path(database).expanduser()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets reports read while a run writes; NORMAL is durable across a process crash
    # in WAL mode (only a power cut can lose the last commits); SQLite leaves foreign keys
    # off unless asked; the busy timeout makes concurrent writers queue, not fail.
    cursor = dbapi_connection.cursor()
    try:
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=10000",
        ):
            cursor.execute(pragma)
    finally:
        cursor.close()


def create_engine(url: str) -> sa.Engine:
    """An engine for `url`, with SQLite configured; creates a SQLite file's directory."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"cannot open the store: {url!r} is not a database URL; {_HINT}") from exc
    path = sqlite_file(parsed)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot open the store {shown(parsed)}: cannot create {path.parent} "
                f"({exc.strerror or exc}); {_HINT}"
            ) from exc
    try:
        engine = sa.create_engine(parsed)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise StoreError(
            f"cannot open the store {shown(parsed)}: {exc}; use sqlite:///PATH, or "
            "postgresql+psycopg://... with the psycopg driver installed"
        ) from exc
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED:
        engine.dispose()
        raise StoreError(
            f"cannot open the store {shown(parsed)}: {backend} is not supported; "
            "use sqlite:///PATH or postgresql+psycopg://..."
        )
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to the newest revision; a no-op when it is already there."""
    config = Config()
    # ConfigParser interpolates '%': a path holding one must be escaped.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Several workers opening a fresh shared store at once: one migrates, the
                # others wait here (until its commit) and then find the schema at head.
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except CommandError as exc:
        # Typically "Can't locate revision": the file was written by a newer portintel.
        raise StoreError(
            f"cannot migrate the store {shown(engine.url)}: {exc}; it may have been "
            "written by a newer portintel: upgrade portintel, or use another database"
        ) from exc
    except sa.exc.SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise StoreError(f"cannot open the store {shown(engine.url)}: {reason}; {_HINT}") from exc


def open_engine(url: str) -> sa.Engine:
    """An engine for `url` whose schema is at the newest revision."""
    engine = create_engine(url)
    try:
        migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine
