"""Add tls_profiles: what TLS enumeration found per endpoint in a run.

Revision ID: 0003
Revises: 0002
Created: 2026-11-23

One row per (run, ip, port): the TlsProfile as JSON text (versions, suites per version in
the server's order, groups, grades, Mozilla verdicts), read by the Ciphers view and the
risk score. Types are spelled out at the database level, as in 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "tls_profiles",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("ip", sa.String(45), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("profile", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "ip", "port", name="pk_tls_profiles"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_tls_profiles_run_id_runs"),
    )


def downgrade() -> None:
    op.drop_table("tls_profiles")
