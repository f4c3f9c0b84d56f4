"""The store's schema as SQLAlchemy Core tables: the single description migrations follow.

Types are kept portable between SQLite and PostgreSQL. Times are `UtcDateTime`: SQLite has
no zone-aware timestamp and drops tzinfo, so every time is stored as UTC and given UTC back
on read. Bulky or nested parts of a model (the rest of an Observation, a whole Service)
are kept as the JSON text pydantic writes: they are read back whole, never queried into,
and serialising them in pydantic's core is far cheaper than per-row JSON in Python.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = [
    "UtcDateTime",
    "metadata",
    "observations",
    "raw_records",
    "runs",
    "service_sources",
    "services",
    "shard_results",
    "source_runs",
    "tls_profiles",
]

# Stable constraint names, so later migrations (and SQLite batch mode) can refer to them.
metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A zone-aware timestamp that is always UTC on the way in and on the way out."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            # A naive time has no meaning we could trust: models only ever carry aware ones.
            raise ValueError(f"naive datetime {value!r} cannot be stored; give it a zone")
        return value if value.tzinfo is UTC else value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # SQLite: stored as UTC wall-clock time
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


_IP = sa.String(45)  # the longest textual IPv6 address
_SOURCE = sa.String(64)
_ENUM = sa.String(16)  # StrEnum values; kept as text so new members need no migration
_NAME = sa.String(255)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime),
    sa.Column("command", sa.Text, nullable=False),
    sa.Column("targets", sa.JSON, nullable=False),
    sa.Column("status", _ENUM, nullable=False),
)

source_runs = sa.Table(
    "source_runs",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("source", _SOURCE, primary_key=True),
    sa.Column("status", _ENUM, nullable=False),
    sa.Column("requests", sa.Integer, nullable=False),
    sa.Column("records", sa.Integer, nullable=False),
    sa.Column("observations", sa.Integer, nullable=False),
    sa.Column("credits_spent", sa.Float, nullable=False),
    sa.Column("errors", sa.JSON, nullable=False),
)

raw_records = sa.Table(
    "raw_records",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("source", _SOURCE, nullable=False),
    sa.Column("endpoint_kind", sa.String(64), nullable=False),
    sa.Column("query", sa.Text, nullable=False),
    sa.Column("fetched_at", UtcDateTime, nullable=False),
    sa.Column("payload", sa.JSON),
)

observations = sa.Table(
    "observations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("raw_id", sa.Integer, sa.ForeignKey("raw_records.id")),
    sa.Column("ip", _IP, nullable=False),
    sa.Column("port", sa.Integer, nullable=False),
    sa.Column("transport", sa.String(3), nullable=False),
    sa.Column("source", _SOURCE, nullable=False),
    sa.Column("kind", _ENUM, nullable=False),
    sa.Column("evidence", _ENUM, nullable=False),
    sa.Column("state", _ENUM, nullable=False),
    sa.Column("observed_at", UtcDateTime),
    sa.Column("fetched_at", UtcDateTime, nullable=False),
    sa.Column("service", _NAME),
    sa.Column("product", _NAME),
    sa.Column("version", _NAME),
    # The remaining Observation fields (banner, TLS, vulns, ...), as JSON text; NULL when
    # every one of them is at its default, which is most passive claims.
    sa.Column("extra", sa.Text),
    sa.Index(None, "ip", "port", "transport"),
)

services = sa.Table(
    "services",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("ip", _IP, primary_key=True),
    sa.Column("port", sa.Integer, primary_key=True),
    sa.Column("transport", sa.String(3), primary_key=True),
    sa.Column("state", _ENUM, nullable=False),
    sa.Column("status", _ENUM, nullable=False),
    sa.Column("service", _NAME),
    sa.Column("product", _NAME),
    sa.Column("version", _NAME),
    sa.Column("chosen_from", _SOURCE),
    sa.Column("first_seen", UtcDateTime, nullable=False),
    sa.Column("last_seen", UtcDateTime, nullable=False),
    sa.Column("colour", sa.String(8)),
    sa.Column("data", sa.Text, nullable=False),  # the whole Service as JSON
)

service_sources = sa.Table(
    "service_sources",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("ip", _IP, primary_key=True),
    sa.Column("port", sa.Integer, primary_key=True),
    sa.Column("transport", sa.String(3), primary_key=True),
    sa.Column("source", _SOURCE, primary_key=True),
    sa.Column("first_seen", UtcDateTime, nullable=False),
    sa.Column("last_seen", UtcDateTime, nullable=False),
    sa.Column("state", _ENUM, nullable=False),
    # Reports filter by source ("what did shodan claim"), within a run.
    sa.Index(None, "run_id", "source"),
)

# One row per verification shard whose observations are stored (the celery executor,
# core.distributed). Written in the same transaction as the shard's observations, so a
# shard that Celery delivers twice is stored once: its key already being here makes the
# second write a no-op.
shard_results = sa.Table(
    "shard_results",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("shard_id", sa.String(64), primary_key=True),
    sa.Column("worker", _NAME, nullable=False),  # the Celery node that stored it
    sa.Column("vantage", _NAME, nullable=False),  # host/source address it probed from
    sa.Column("observations", sa.Integer, nullable=False),
    sa.Column("open_ports", sa.Integer, nullable=False),
    sa.Column("walls", sa.JSON, nullable=False),  # hosts that answered on every port
    sa.Column("finished_at", UtcDateTime, nullable=False),
)

# What TLS enumeration found on one endpoint of a run (core.verify.tls.TlsProfile as JSON):
# the Ciphers view and the risk score read it.
tls_profiles = sa.Table(
    "tls_profiles",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("ip", _IP, primary_key=True),
    sa.Column("port", sa.Integer, primary_key=True),
    sa.Column("profile", sa.Text, nullable=False),
)
