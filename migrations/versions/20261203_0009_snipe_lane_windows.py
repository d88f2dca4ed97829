"""the snipe lane: each running snipe's window and the share of the lane's budget it holds

A snipe's requests inside its release window draw on a budget of their own
(`resy.snipe_max_rps`), reserved when the snipe prepares and settled when it ends; every
other caller of the host yields while a window is open, across workers.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "snipe_window",
        sa.Column("snipe_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rps", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("snipe_id", name=op.f("pk_snipe_window")),
    )
    with op.batch_alter_table("snipe_window", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_snipe_window_closes_at"), ["closes_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("snipe_window", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_snipe_window_closes_at"))
    op.drop_table("snipe_window")
