"""priority times and recurring snipes

A scheduled snipe, a watch and a notify request keep a ranked `--time` list
(`preferred_times`, HH:MM strings, best first; for a watch or request, what --auto-book
books first), and a recurring one (`book schedule add --repeat`) its rule, how many days ahead
each occurrence's day is released, its series (the first occurrence's id) and the venue's
zone (so the next occurrence's release instant needs no Resy call). One row per (series,
day): a crash or a second worker can never add the same next occurrence twice.

Every new column is nullable: the snipes already saved stay one-off snipes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("scheduled_snipe", "watch", "notify_request"):
        op.add_column(table, sa.Column("preferred_times", sa.JSON(), nullable=True))
    op.add_column("scheduled_snipe", sa.Column("repeat", sa.String(length=64), nullable=True))
    op.add_column("scheduled_snipe", sa.Column("days_ahead", sa.Integer(), nullable=True))
    op.add_column("scheduled_snipe", sa.Column("series_id", sa.Integer(), nullable=True))
    op.add_column("scheduled_snipe", sa.Column("release_zone", sa.String(length=64), nullable=True))
    op.create_index(
        "uq_scheduled_snipe_series_day",
        "scheduled_snipe",
        ["series_id", "slot_date"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_scheduled_snipe_series_day", table_name="scheduled_snipe")
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild would lose the table's AUTOINCREMENT.
    for column in ("release_zone", "series_id", "days_ahead", "repeat", "preferred_times"):
        op.drop_column("scheduled_snipe", column)
    for table in ("watch", "notify_request"):
        op.drop_column(table, "preferred_times")
