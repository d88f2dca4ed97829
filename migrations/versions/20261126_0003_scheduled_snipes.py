"""scheduled snipes

Snipes persisted by `resywatch book schedule add`, run at their release instant by
`resywatch run snipes` or `run-forever` (a lease keeps two workers off the same one).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 10:19:18.575197
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scheduled_snipe",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("venue_id", sa.Integer(), nullable=False),
        sa.Column("venue_name", sa.String(), nullable=False),
        sa.Column("slot_date", sa.Date(), nullable=False),
        sa.Column("party_size", sa.Integer(), nullable=False),
        sa.Column("time_from", sa.Time(), nullable=True),
        sa.Column("time_to", sa.Time(), nullable=True),
        sa.Column("preferred_time", sa.Time(), nullable=True),
        sa.Column("seating_types", sa.JSON(), nullable=False),
        sa.Column("release_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("release_source", sa.String(length=16), nullable=False),
        sa.Column("payment_method_id", sa.BigInteger(), nullable=True),
        sa.Column("max_total", sa.Float(), nullable=False),
        sa.Column("max_cancel_fee", sa.Float(), nullable=False),
        sa.Column("lead_s", sa.Float(), nullable=False),
        sa.Column("poll_interval_s", sa.Float(), nullable=False),
        sa.Column("deadline_s", sa.Float(), nullable=False),
        sa.Column("late_s", sa.Float(), nullable=False),
        sa.Column("request_budget", sa.Integer(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("message", sa.String(), nullable=True),
        sa.Column("attempt_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_snipe")),
    )
    with op.batch_alter_table("scheduled_snipe", schema=None) as batch_op:
        batch_op.create_index(
            "ix_scheduled_snipe_status_release", ["status", "release_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("scheduled_snipe", schema=None) as batch_op:
        batch_op.drop_index("ix_scheduled_snipe_status_release")

    op.drop_table("scheduled_snipe")
