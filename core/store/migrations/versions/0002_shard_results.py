"""Add shard_results: which verification shards of a run are stored (scale-out).

Revision ID: 0002
Revises: 0001
Created: 2026-07-01

A Celery worker writes a shard's observations and its row here in one transaction; the
primary key (run_id, shard_id) is what makes a redelivered shard a no-op. Types are
spelled out at the database level, as in 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "shard_results",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("shard_id", sa.String(64), nullable=False),
        sa.Column("worker", sa.String(255), nullable=False),
        sa.Column("vantage", sa.String(255), nullable=False),
        sa.Column("observations", sa.Integer, nullable=False),
        sa.Column("open_ports", sa.Integer, nullable=False),
        sa.Column("walls", sa.JSON, nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "shard_id", name="pk_shard_results"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_shard_results_run_id_runs"),
    )


def downgrade() -> None:
    op.drop_table("shard_results")
