"""A real PostgreSQL for the store tests (and the shard tests), started once per session.

The server runs inside its own network namespace (tests/lab: initdb, then postgres in
the foreground) on that namespace's loopback. The tests reach it through its Unix
socket, which lives in the filesystem and so is reachable from the host's namespace
too: no TCP port of the host is opened. Over the socket PostgreSQL authenticates by peer
(the OS user), so a `root` role is made first over TCP, from inside the namespace.
Each test gets a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from tests.lab.daemons import (
    LAB_PASSWORD,
    DaemonMissing,
    scratch_dir,
    start_postgresql,
    stop_services,
)
from tests.lab.netns import lab_unavailable, netns


@dataclass(frozen=True)
class PgServer:
    socket_dir: str
    port: int
    database: str = "portintel_tests"

    def url(self, schema: str | None = None) -> str:
        url = f"postgresql+psycopg://root@/{self.database}?host={self.socket_dir}&port={self.port}"
        # A schema per test instead of a database per test: as isolated for the store
        # (it sees only its search_path), and milliseconds instead of a CREATE DATABASE.
        return url if schema is None else f"{url}&options=-csearch_path%3D{schema}"

    def admin(self, database: str | None = None) -> Any:
        import psycopg

        return psycopg.connect(
            host=self.socket_dir,
            port=self.port,
            user="root",
            dbname=database or self.database,
            autocommit=True,
        )

    def create_schema(self) -> str:
        """A URL whose connections see only a fresh, empty schema."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        with self.admin() as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return self.url(name)

    def drop_schema(self, url: str) -> None:
        name = url.rsplit("%3D", 1)[1]
        with self.admin() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server; skips locally and fails under CI=true when it cannot start."""
    try:
        import psycopg
    except ImportError:
        lab_unavailable("psycopg is not installed: pip install -e '.[dev]'")
        raise
    with ExitStack() as stack:
        ns = stack.enter_context(netns())
        workdir = scratch_dir()
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        try:
            service = start_postgresql(ns, workdir)
        except DaemonMissing as exc:
            lab_unavailable(str(exc))
            raise
        stack.callback(stop_services, [service])
        port = service.port("postgresql")

        def make_root() -> None:
            tcp = f"postgresql://postgres:{LAB_PASSWORD}@127.0.0.1:{port}/postgres"
            with psycopg.connect(tcp, autocommit=True) as conn:
                conn.execute("CREATE ROLE root SUPERUSER LOGIN")

        ns.call(make_root, timeout=30)
        server = PgServer(socket_dir=service.facts["socket_dir"], port=port)
        with server.admin("postgres") as conn:
            conn.execute(f'CREATE DATABASE "{server.database}"')
        yield server


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A store URL on the session's PostgreSQL that starts empty (a schema of its own)."""
    url = pg_server.create_schema()
    yield url
    pg_server.drop_schema(url)
