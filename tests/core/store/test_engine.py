"""Opening a store: migrations to head, SQLite's settings, and actionable StoreErrors."""

from __future__ import annotations

from pathlib import Path

import platformdirs
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.errors import StoreError
from core.store import Store, tables
from core.store.engine import create_engine
from tests.core.store.factories import observation

HEAD = "0003"  # the newest migration (0002 shard_results, 0003 tls_profiles)


def _revision(url: str) -> str | None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def test_a_fresh_file_is_created_with_its_directory_and_migrated_to_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a' / 'b' / 'portintel.db'}"
    Store(url).close()

    assert (tmp_path / "a" / "b" / "portintel.db").is_file()
    assert _revision(url) == HEAD
    engine = sa.create_engine(url)
    try:
        names = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert names >= {
        "runs",
        "source_runs",
        "raw_records",
        "observations",
        "services",
        "shard_results",
    }


def test_the_migrations_build_exactly_the_tables_module(db_url: str) -> None:
    # A migration that drifted from tables.py would show up as an autogenerate diff.
    Store(db_url).close()
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), tables.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_reopening_is_idempotent_and_keeps_the_data(db_url: str) -> None:
    with Store(db_url) as store:
        run_id = store.start_run("enrich", [])
        store.add_observations(run_id, [observation()])
    with Store(db_url) as again:
        assert again.latest_run_id() == run_id
        assert sum(len(group) for _, group in again.iter_endpoint_observations()) == 1
    assert _revision(db_url) == HEAD


def test_sqlite_runs_in_wal_mode_with_foreign_keys(db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's pragmas only")
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys")
            }
    finally:
        engine.dispose()
    assert pragma == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1}  # 1 = NORMAL


def test_a_foreign_key_violation_is_a_store_error(store: Store) -> None:
    with pytest.raises(StoreError, match=r"(?i)storing observations failed.*foreign key"):
        store.add_observations(424242, [observation()])


def test_the_default_store_lives_in_the_user_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data" / "portintel"
    monkeypatch.setattr(platformdirs, "user_data_dir", lambda app: str(data))
    assert Store.default_url() == f"sqlite:///{data / 'portintel.db'}"
    assert not data.exists()  # asking for the URL creates nothing

    with Store() as store:
        assert store.url == Store.default_url()
    assert (data / "portintel.db").is_file()


@pytest.mark.parametrize(
    ("make_url", "message"),
    [
        (lambda tmp: "not a url", "not a database URL"),
        (lambda tmp: "nosuchdb://somewhere/x", "cannot open the store"),
        (lambda tmp: f"sqlite:///{tmp / 'file' / 'sub' / 'x.db'}", "cannot create"),
        (lambda tmp: f"sqlite:///{tmp / 'garbage.db'}", "not a database"),
        (lambda tmp: f"sqlite:///{tmp}", "unable to open"),
    ],
    ids=["not-a-url", "unknown-dialect", "parent-is-a-file", "not-sqlite", "a-directory"],
)
def test_a_store_that_cannot_be_opened_is_one_actionable_store_error(
    tmp_path: Path, make_url: object, message: str
) -> None:
    (tmp_path / "file").write_text("a regular file where a directory is needed")
    (tmp_path / "garbage.db").write_bytes(b"this is not an SQLite database at all" * 200)
    url = make_url(tmp_path)  # type: ignore[operator]

    with pytest.raises(StoreError, match=message) as caught:
        Store(url)

    text = str(caught.value)
    assert "\n" not in text
    assert "PORTINTEL_DB" in text or "use sqlite:///" in text or "portintel" in text


def test_a_password_in_the_url_never_reaches_the_message() -> None:
    # Only loopback, and port 1: nothing listens there; without a driver it fails earlier.
    with pytest.raises(StoreError) as caught:
        Store("postgresql+psycopg://scott:hunter2@127.0.0.1:1/portintel")
    assert "hunter2" not in str(caught.value)
    assert "scott" in str(caught.value)


def test_a_store_from_a_newer_portintel_says_to_upgrade(db_url: str) -> None:
    # Given a store whose schema revision this code does not know
    Store(db_url).close()
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'f00dfeed'")
    engine.dispose()

    # When it is opened, the message says why and what to do
    with pytest.raises(StoreError, match="newer portintel: upgrade portintel"):
        Store(db_url)


def test_workers_opening_a_fresh_postgresql_store_at_once_all_succeed(pg_url: str) -> None:
    # Celery workers started together all migrate the shared store on open: one must
    # migrate while the others wait. Separate fresh processes, as real workers are.
    import subprocess
    import sys
    import time

    # Each process imports first, then waits for the same instant to open the store.
    code = (
        "import sys, time; from core.store import Store; "
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); Store(sys.argv[1]).close()"
    )
    at = str(time.time() + 3.0)  # after every import, even on a busy machine
    root = Path(__file__).resolve().parents[3]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, pg_url, at], cwd=root, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    errors = [proc.communicate(timeout=120)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0], errors
    assert _revision(pg_url) == HEAD
