"""The Store: every run, raw payload, observation and reconciled service, kept as history.

Each write commits before it returns (batch by batch for the streaming ones), so a run
that is interrupted keeps everything it had already fetched and paid for. Reads of the
large tables stream: memory does not grow with the size of the store.
"""

from __future__ import annotations

import ipaddress
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

import platformdirs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from core.errors import InputError, StoreError
from core.models import (
    Endpoint,
    Observation,
    RawRecord,
    Run,
    RunStatus,
    Service,
    SourceRun,
    utcnow,
)
from core.parallel import relaxed_gc
from core.store import codec, tables
from core.store.bulk import BulkInsert
from core.store.engine import open_engine, shown, sqlite_file
from core.store.shards import ShardRecord
from core.verify.tls.model import TlsProfile, profile_from_json, profile_json

T = TypeVar("T")

BATCH = 5000
"""Services per executemany and per commit: large enough to amortise a commit, small
enough that memory stays flat and an interruption loses at most one batch in flight."""

SORTED_ROWS = 50_000
"""Observations are written in blocks of this many, sorted by endpoint, one transaction a
block. The (ip, port, transport) index is a B-tree the whole history shares: rows in
arrival order (a search's are scattered over it) dirty about one of its pages each, which
every commit writes out again, while a sorted block touches each page once. Measured on a
million Shodan-shaped rows: 8.0 us a row unsorted, 5.0 sorted in these blocks, 3.0 with
no index at all. One commit a block also means fewer turns at the write lock when
several processes store at once."""

_ENDPOINT_OF_ROW = itemgetter(
    *(codec.OBS_COLUMNS.index(name) for name in ("ip", "port", "transport"))
)
_IN_CHUNK = 500  # addresses per `ip IN (...)`: well under every backend's parameter limit
_YIELD_PER = 2000  # rows fetched per round trip while streaming


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _address_chunks(ips: Collection[str] | None) -> Iterable[list[str] | None]:
    """`ips` canonical, deduplicated and sorted, in chunks for `ip IN (...)`; [None] for
    no filter at all. Chunks in sorted order keep a query's output ordered as without one."""
    if ips is None:
        return [None]
    return _batches(sorted({_canonical(ip) for ip in ips}), _IN_CHUNK)


def _canonical(ip: str) -> str:
    try:
        return ipaddress.ip_address(ip.strip()).compressed
    except ValueError as exc:
        raise InputError(f"{ip!r} is not an IP address") from exc


class Store:
    """The database of runs, observations and services (SQLite file or PostgreSQL)."""

    def __init__(self, url: str | None = None) -> None:
        """Open the database at `url` (default: `default_url()`) and migrate it to head.

        Raises StoreError, with what to do, when it cannot be opened or migrated.
        """
        self.url = url or self.default_url()
        self._engine = open_engine(self.url)
        self._time = codec.TimeCodec(text=self._engine.dialect.name == "sqlite")
        self._insert_observations = BulkInsert(self._engine, tables.observations)
        self._upsert_services = BulkInsert(self._engine, tables.services, upsert=True)
        self._upsert_service_sources = BulkInsert(self._engine, tables.service_sources, upsert=True)
        self._upsert_source_run = self._upsert(tables.source_runs)

    @staticmethod
    def default_url() -> str:
        """A SQLite file in the user's data directory; the directory is made on open."""
        path = Path(platformdirs.user_data_dir("portintel")) / "portintel.db"
        return f"sqlite:///{path}"

    def close(self) -> None:
        self._engine.dispose()

    @property
    def shareable(self) -> bool:
        """Can another process open this database? (Not an in-memory SQLite one.)"""
        return self._engine.dialect.name != "sqlite" or sqlite_file(self._engine.url) is not None

    def release(self) -> None:
        """Close the idle connections (the Store stays usable: it opens new ones)."""
        self._engine.dispose()

    def reopen(self) -> Store:
        """Another Store on the same database, with connections of its own: what a forked
        worker process uses (a connection must not cross a fork)."""
        return Store(self.url)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------

    def _upsert(self, table: sa.Table) -> Any:
        """A Core upsert on the primary key (with SQLAlchemy's type processing, for JSON)."""
        stmt: Any = (
            sqlite.insert(table)
            if self._engine.dialect.name == "sqlite"
            else postgresql.insert(table)
        )
        keys = [column.name for column in table.primary_key.columns]
        updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
        return stmt.on_conflict_do_update(index_elements=keys, set_=updates)

    @contextmanager
    def _write(self, what: str) -> Iterator[sa.Connection]:
        """A transaction that commits on exit; database errors become StoreError."""
        try:
            with self._engine.begin() as connection:
                yield connection
        except sa.exc.SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            raise StoreError(f"store {shown(self._engine.url)}: {what} failed: {reason}") from exc

    @contextmanager
    def _read(self, what: str) -> Iterator[sa.Connection]:
        try:
            with self._engine.connect() as connection:
                yield connection
        except sa.exc.SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            raise StoreError(f"store {shown(self._engine.url)}: {what} failed: {reason}") from exc

    # -- runs ----------------------------------------------------------------------------

    def start_run(self, command: str, targets: Sequence[str]) -> int:
        """Record a new run as RUNNING; returns its id."""
        with self._write("starting a run") as conn:
            result = conn.execute(
                tables.runs.insert().values(
                    started_at=utcnow(),
                    command=command,
                    targets=list(targets),
                    status=RunStatus.RUNNING.value,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def finish_run(self, run_id: int, status: RunStatus) -> None:
        """Stamp the run's end time and final status."""
        with self._write("finishing a run") as conn:
            conn.execute(
                tables.runs.update()
                .where(tables.runs.c.id == run_id)
                .values(finished_at=utcnow(), status=status.value)
            )

    def save_source_run(self, run_id: int, source_run: SourceRun) -> None:
        """Insert or replace what one source did in a run; call it as the source progresses."""
        row = {
            "run_id": run_id,
            **source_run.model_dump(mode="json"),
        }
        with self._write(f"saving {source_run.source}'s progress") as conn:
            conn.execute(self._upsert_source_run, row)

    def runs(self) -> list[Run]:
        """Every run, oldest first, with its sources."""
        with self._read("listing runs") as conn:
            run_rows = conn.execute(sa.select(tables.runs).order_by(tables.runs.c.id)).all()
            source_rows = conn.execute(
                sa.select(tables.source_runs).order_by(
                    tables.source_runs.c.run_id, tables.source_runs.c.source
                )
            ).all()
        sources: dict[int, list[SourceRun]] = {}
        for row in source_rows:
            sources.setdefault(row.run_id, []).append(_source_run(row._mapping))
        return [_run(row._mapping, sources.get(row.id, [])) for row in run_rows]

    def run(self, run_id: int) -> Run:
        """One run with its sources; InputError when there is no such run."""
        with self._read("reading a run") as conn:
            row = conn.execute(
                sa.select(tables.runs).where(tables.runs.c.id == run_id)
            ).one_or_none()
            source_rows = conn.execute(
                sa.select(tables.source_runs)
                .where(tables.source_runs.c.run_id == run_id)
                .order_by(tables.source_runs.c.source)
            ).all()
        if row is None:
            latest = self.latest_run_id()
            hint = f"the latest is {latest}" if latest is not None else "the store has none yet"
            raise InputError(f"there is no run {run_id} in the store; {hint}")
        return _run(row._mapping, [_source_run(r._mapping) for r in source_rows])

    def latest_run_id(self) -> int | None:
        with self._read("finding the latest run") as conn:
            value = conn.execute(sa.select(sa.func.max(tables.runs.c.id))).scalar()
        return int(value) if value is not None else None

    # -- raw records and observations ----------------------------------------------------

    def add_raw(self, run_id: int, raw: RawRecord) -> int:
        """Store a provider payload as received; returns its id for the observations."""
        with self._write(f"storing a {raw.source} payload") as conn:
            result = conn.execute(
                tables.raw_records.insert().values(
                    run_id=run_id,
                    source=raw.source,
                    endpoint_kind=raw.endpoint_kind,
                    query=raw.query,
                    fetched_at=raw.fetched_at,
                    payload=raw.payload,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def iter_raw(self, run_id: int | None = None) -> Iterator[tuple[int, RawRecord]]:
        """Stored payloads with their ids, oldest first (one run's, or all): a better
        normalizer re-runs over these without spending a credit."""
        raw = tables.raw_records.c
        query = sa.select(tables.raw_records).order_by(raw.id)
        if run_id is not None:
            query = query.where(raw.run_id == run_id)
        with self._read("reading raw records") as conn:
            result = conn.execution_options(yield_per=_YIELD_PER).execute(query)
            for row in result.mappings():
                yield (
                    row["id"],
                    RawRecord(
                        source=row["source"],
                        endpoint_kind=row["endpoint_kind"],
                        query=row["query"],
                        fetched_at=row["fetched_at"],
                        payload=row["payload"],
                    ),
                )

    def add_observations(self, run_id: int, observations: Iterable[Observation]) -> int:
        """Append observations to the history; returns the count.

        `observations` is consumed lazily, so a generator of any length is fine: it is
        written in sorted blocks of SORTED_ROWS, a transaction each. When the generator
        fails or is interrupted, what it had already given is written before the
        exception goes on.
        """
        values, time = codec.observation_values, self._time
        count = 0
        rows: list[tuple[Any, ...]] = []
        with relaxed_gc():  # a bulk loop (and the caller's generator feeding it)
            try:
                for obs in observations:
                    rows.append(values(run_id, obs, time))
                    if len(rows) == SORTED_ROWS:
                        block, rows = rows, []
                        count += self._insert_sorted(block)
            except BaseException:
                if rows:  # the input failed (a failed write left none): keep what it gave
                    self._insert_sorted(rows)
                raise
            return count + self._insert_sorted(rows)

    def _insert_sorted(self, rows: list[tuple[Any, ...]]) -> int:
        if not rows:
            return 0
        # Stable: an endpoint's rows keep their order, and so their ids do.
        rows.sort(key=_ENDPOINT_OF_ROW)
        with self._write("storing observations") as conn:
            self._insert_observations.execute_values(conn, rows)
        return len(rows)

    def iter_endpoint_observations(
        self, ips: Collection[str] | None = None
    ) -> Iterator[tuple[Endpoint, list[Observation]]]:
        """Every observation ever stored, one list per endpoint, in (ip, port, transport) order.

        Across all runs: reconciliation folds the whole history. Rows are streamed from the
        database, so memory holds one endpoint's observations, not the table. `ips`
        restricts the result to those addresses.
        """
        for chunk in _address_chunks(ips):
            yield from self._endpoint_groups(chunk)

    def address_shares(self, ips: Collection[str] | None, observations: int) -> Iterator[list[str]]:
        """The stored addresses (all, or those of `ips`) in order, cut into runs that hold
        about `observations` observations each (an address is never split): shares of
        the work for processes that reconcile side by side. Streamed."""
        obs = tables.observations.c
        query = sa.select(obs.ip, sa.func.count()).group_by(obs.ip).order_by(obs.ip)
        share: list[str] = []
        held = 0
        with self._read("sharing out addresses") as conn:
            for chunk in _address_chunks(ips):
                chosen = query if chunk is None else query.where(obs.ip.in_(chunk))
                for ip, count in conn.execution_options(yield_per=_YIELD_PER).execute(chosen):
                    share.append(ip)
                    held += count
                    if held >= observations:
                        yield share
                        share, held = [], 0
        if share:
            yield share

    def _endpoint_groups(
        self, ips: list[str] | None
    ) -> Iterator[tuple[Endpoint, list[Observation]]]:
        obs = tables.observations.c
        # Times come back as the driver gives them (codec.TimeCodec.decode reads both).
        fields = [
            sa.type_coerce(obs[name], sa.String) if name.endswith("_at") else obs[name]
            for name in codec.OBS_FIELDS
        ]
        query = sa.select(obs.ip, obs.port, obs.transport, *fields, obs.extra).order_by(
            obs.ip, obs.port, obs.transport, obs.id
        )
        if ips is not None:
            query = query.where(obs.ip.in_(ips))
        with self._read("reading observations") as conn:
            if self._engine.dialect.name == "sqlite":
                yield from codec.group_observations(self._sqlite_rows(conn, query))
                return
            result = conn.execution_options(yield_per=_YIELD_PER).execute(query)
            yield from codec.group_observations(result)

    def _sqlite_rows(self, conn: sa.Connection, query: sa.Select[Any]) -> Iterator[Any]:
        """The query's rows through sqlite3's own cursor, a block at a time.

        For the largest read of a run (every observation in scope): SQLAlchemy's result
        rows cost about 0.8 us more each than the driver's tuples, as much again as
        SQLite takes to read one. The statement is still SQLAlchemy's, compiled here.
        """
        compiled = query.compile(
            dialect=self._engine.dialect, compile_kwargs={"render_postcompile": True}
        )
        params = [compiled.params[name] for name in compiled.positiontup or ()]
        driver = conn.connection.driver_connection
        assert driver is not None, "an open connection has its driver's"
        cursor = driver.cursor()
        try:
            cursor.execute(str(compiled), params)
            while rows := cursor.fetchmany(_YIELD_PER):
                yield from rows
        except sqlite3.Error as exc:
            raise StoreError(
                f"store {shown(self._engine.url)}: reading observations failed: {exc}"
            ) from exc
        finally:
            cursor.close()

    # -- services ------------------------------------------------------------------------

    def save_services(self, run_id: int, services: Iterable[Service]) -> int:
        """Insert or replace run `run_id`'s services, committing every BATCH; returns the count.

        Re-saving an endpoint (reconcile runs again after verification) replaces it.
        """
        time = self._time
        count = 0
        for batch in _batches(services, BATCH):
            rows, source_rows = [], []
            for service in batch:
                row, sources = codec.service_rows(run_id, service, time)
                rows.append(row)
                source_rows.extend(sources)
            with self._write("storing services") as conn:
                self._upsert_services.execute_values(conn, rows)
                self._upsert_service_sources.execute_values(conn, source_rows)
            count += len(rows)
        return count

    # -- verification shards (core.distributed) -----------------------------------------

    def add_shard(
        self,
        run_id: int,
        record: ShardRecord,
        observations: Sequence[Observation],
        tls_profiles: Sequence[TlsProfile] = (),
    ) -> bool:
        """Store one shard's observations, TLS profiles and record in one transaction.

        Returns False, storing nothing, when the shard is already stored: a shard Celery
        delivers twice (a worker died before acknowledging it) is counted once. On
        PostgreSQL a concurrent second writer waits on the key, then finds it taken.
        """
        dialect = sqlite if self._engine.dialect.name == "sqlite" else postgresql
        claim = (
            dialect.insert(tables.shard_results)
            .values(record.row(run_id))
            .on_conflict_do_nothing(index_elements=["run_id", "shard_id"])
            # RETURNING, not rowcount: drivers may report -1 for an upsert's rowcount.
            .returning(tables.shard_results.c.shard_id)
        )
        rows = [codec.observation_values(run_id, obs, self._time) for obs in observations]
        profiles = [self._tls_row(run_id, profile) for profile in tls_profiles]
        with self._write(f"storing shard {record.shard_id}") as conn:
            if conn.execute(claim).first() is None:
                return False
            self._insert_observations.execute_values(conn, rows)
            if profiles:
                conn.execute(self._upsert(tables.tls_profiles), profiles)
        return True

    def shard_results(self, run_id: int, shard_id: str | None = None) -> dict[str, ShardRecord]:
        """The stored shards of run `run_id` (or just `shard_id`, if stored), by shard id."""
        table = tables.shard_results
        query = sa.select(table).where(table.c.run_id == run_id)
        if shard_id is not None:
            query = query.where(table.c.shard_id == shard_id)
        with self._read("reading shard results") as conn:
            found = conn.execute(query).mappings()
            return {row["shard_id"]: ShardRecord.from_row(row) for row in found}

    # -- TLS profiles (core.verify.tls) -------------------------------------------------

    @staticmethod
    def _tls_row(run_id: int, profile: TlsProfile) -> dict[str, Any]:
        return {
            "run_id": run_id,
            "ip": _canonical(profile.ip),
            "port": profile.port,
            "profile": profile_json(profile),
        }

    def save_tls_profile(self, run_id: int, profile: TlsProfile) -> None:
        """Store (or replace) what TLS enumeration found on one endpoint in run `run_id`."""
        with self._write("storing a TLS profile") as conn:
            conn.execute(self._upsert(tables.tls_profiles), [self._tls_row(run_id, profile)])

    def tls_profiles(self, run_id: int) -> Iterator[TlsProfile]:
        """Run `run_id`'s TLS profiles, in (ip, port) order."""
        table = tables.tls_profiles.c
        query = (
            sa.select(table.profile).where(table.run_id == run_id).order_by(table.ip, table.port)
        )
        with self._read("reading TLS profiles") as conn:
            for (text,) in conn.execute(query):
                yield profile_from_json(text)

    def services(self, run_id: int) -> Iterator[Service]:
        """Run `run_id`'s services in (ip, port, transport) order, streamed."""
        svc = tables.services.c
        query = (
            sa.select(svc.data)
            .where(svc.run_id == run_id)
            .order_by(svc.ip, svc.port, svc.transport)
        )
        with self._read("reading services") as conn:
            result = conn.execution_options(yield_per=_YIELD_PER).execute(query)
            for data in result.scalars():
                yield codec.service(data)


def _source_run(row: Any) -> SourceRun:
    return SourceRun(
        source=row["source"],
        status=row["status"],
        requests=row["requests"],
        records=row["records"],
        observations=row["observations"],
        credits_spent=row["credits_spent"],
        errors=tuple(row["errors"]),
    )


def _run(row: Any, sources: list[SourceRun]) -> Run:
    return Run(
        id=row["id"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        command=row["command"],
        targets=tuple(row["targets"]),
        status=row["status"],
        sources=tuple(sources),
    )
