"""Create the store: runs, source runs, raw records, observations, services.

Revision ID: 0001
Revises:
Created: 2024-06-01

Types are spelled out at the database level (a time is `DateTime(timezone=True)`) rather
than imported from `core.store.tables`, so this revision keeps meaning what it meant when
tables.py later changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("targets", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_table(
        "source_runs",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("observations", sa.Integer, nullable=False),
        sa.Column("credits_spent", sa.Float, nullable=False),
        sa.Column("errors", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "source", name="pk_source_runs"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_source_runs_run_id_runs"),
    )
    op.create_table(
        "raw_records",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("endpoint_kind", sa.String(64), nullable=False),
        sa.Column("query", sa.Text, nullable=False),
        sa.Column("fetched_at", _TIME, nullable=False),
        sa.Column("payload", sa.JSON),
        sa.PrimaryKeyConstraint("id", name="pk_raw_records"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_raw_records_run_id_runs"),
    )
    op.create_index("ix_raw_records_run_id", "raw_records", ["run_id"])
    op.create_table(
        "observations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("raw_id", sa.Integer),
        sa.Column("ip", sa.String(45), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("transport", sa.String(3), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("evidence", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("observed_at", _TIME),
        sa.Column("fetched_at", _TIME, nullable=False),
        sa.Column("service", sa.String(255)),
        sa.Column("product", sa.String(255)),
        sa.Column("version", sa.String(255)),
        sa.Column("extra", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_observations"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_observations_run_id_runs"),
        sa.ForeignKeyConstraint(
            ["raw_id"], ["raw_records.id"], name="fk_observations_raw_id_raw_records"
        ),
    )
    op.create_index(
        "ix_observations_ip_port_transport", "observations", ["ip", "port", "transport"]
    )
    op.create_table(
        "services",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("ip", sa.String(45), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("transport", sa.String(3), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("service", sa.String(255)),
        sa.Column("product", sa.String(255)),
        sa.Column("version", sa.String(255)),
        sa.Column("chosen_from", sa.String(64)),
        sa.Column("first_seen", _TIME, nullable=False),
        sa.Column("last_seen", _TIME, nullable=False),
        sa.Column("colour", sa.String(8)),
        sa.Column("data", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "ip", "port", "transport", name="pk_services"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_services_run_id_runs"),
    )
    op.create_table(
        "service_sources",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("ip", sa.String(45), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("transport", sa.String(3), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("first_seen", _TIME, nullable=False),
        sa.Column("last_seen", _TIME, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint(
            "run_id", "ip", "port", "transport", "source", name="pk_service_sources"
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_service_sources_run_id_runs"),
    )
    op.create_index("ix_service_sources_run_id_source", "service_sources", ["run_id", "source"])


def downgrade() -> None:
    for table in ("service_sources", "services", "observations", "raw_records", "source_runs"):
        op.drop_table(table)
    op.drop_table("runs")
