"""worker leases and shared politeness

Several workers on one database: buckets carry a lease with a fencing epoch and the cycle
of their last scan, job leases carry an epoch, and `resy_host` holds the request budget,
the Retry-After pause and the circuit breaker that every worker obeys.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 12:08:34.532798
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "resy_host",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("next_free_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("open_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("probe_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("host", name=op.f("pk_resy_host")),
    )
    with op.batch_alter_table("discovery_bucket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("lease_epoch", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("last_cycle", sa.BigInteger(), nullable=True))

    with op.batch_alter_table("job_heartbeat", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lease_epoch", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("job_heartbeat", schema=None) as batch_op:
        batch_op.drop_column("lease_epoch")

    with op.batch_alter_table("discovery_bucket", schema=None) as batch_op:
        batch_op.drop_column("last_cycle")
        batch_op.drop_column("lease_epoch")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("lease_owner")

    op.drop_table("resy_host")
