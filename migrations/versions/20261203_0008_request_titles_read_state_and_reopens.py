"""notify requests keep a title and a read state; drops count their reopenings

The seed's notify requests had a title (its default: "party - date - window") and its found
results a read state (`read_at`); resywatch now keeps both, so `notify list --unread` and
`notify read` have something to read. A drop that closes and reopens within the quiet period
re-opens its old event: the event now counts those reopenings and keeps the last one, so
`discover explain` can say a slot flickered instead of losing it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notify_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("title", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("read_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("drop_event", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reopen_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("reopened_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("drop_event", schema=None) as batch_op:
        batch_op.drop_column("reopened_at")
        batch_op.drop_column("reopen_count")
    with op.batch_alter_table("notify_request", schema=None) as batch_op:
        batch_op.drop_column("read_at")
        batch_op.drop_column("title")
