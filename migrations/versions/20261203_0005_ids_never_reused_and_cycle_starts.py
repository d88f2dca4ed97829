"""ids never reused, and buckets record when their cycle started

SQLite hands the id of the newest row out again once that row is deleted, and ids are named
by other rows and by dedupe keys (`drop:<id>`, `notify:<id>`, `watch:<id>:...`): every table
with a generated id is rebuilt with AUTOINCREMENT, and its counter starts past every id that
a key or another row still names (a database that already reused one recovers). PostgreSQL's
sequences never go back: nothing to do there.

A bucket recorded its last cycle as a number (start // interval), which compares old units
with new ones once the interval changes (raised, no bucket was ever due again). It now
records the cycle's start time; the old numbers cannot be converted (their interval is not
known), so every bucket is due once at the next pass, as at any new cycle.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 08:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every table with a generated integer id.
TABLES = (
    "api_call_log",
    "booking_attempt",
    "drop_event",
    "job_run",
    "notification",
    "notification_delivery",
    "notify_request",
    "scheduled_snipe",
    "venue_search_snapshot",
    "watch",
)

# Where a table's ids are named elsewhere: (dedupe key prefixes of `notification`, and
# queries giving integer references from other rows).
KEY_PREFIXES = {
    "drop_event": ("drop:",),
    "notify_request": ("notify:",),
    "watch": ("watch:", "new-venue:"),
    "booking_attempt": ("booking:",),
    "scheduled_snipe": ("snipe-missed:",),
}
REFERENCES = {
    "notify_request": ("SELECT max(source_id) FROM booking_attempt WHERE source = 'notify'",),
    "watch": ("SELECT max(source_id) FROM booking_attempt WHERE source = 'watch'",),
    "booking_attempt": ("SELECT max(attempt_id) FROM scheduled_snipe",),
    "notification": ("SELECT max(notification_id) FROM notification_delivery",),
}
SNIPE_CLAIMS = "SELECT claim_key FROM booking_attempt WHERE claim_key LIKE 'snipe:%'"


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        # The caller runs this with foreign keys off (db.write_connection), so dropping the
        # old copy of a table cascades into nothing.
        for table in TABLES:
            with op.batch_alter_table(
                table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
            ):
                pass
        for table in TABLES:
            _start_counter_past_references(table)

    with op.batch_alter_table("discovery_bucket", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_cycle_start", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.drop_column("last_cycle")


def downgrade() -> None:
    with op.batch_alter_table("discovery_bucket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_cycle", sa.BigInteger(), nullable=True))
        batch_op.drop_column("last_cycle_start")

    if op.get_bind().dialect.name == "sqlite":
        for table in TABLES:
            with op.batch_alter_table(
                table, recreate="always", table_kwargs={"sqlite_autoincrement": False}
            ):
                pass


def _start_counter_past_references(table: str) -> None:
    """Make the next id of `table` exceed every id of it that is named anywhere."""
    bind = op.get_bind()
    named = [0]
    for prefix in KEY_PREFIXES.get(table, ()):
        keys = bind.execute(
            sa.text("SELECT dedupe_key FROM notification WHERE dedupe_key LIKE :p"),
            {"p": prefix + "%"},
        ).scalars()
        named += [_id_after(key, prefix) for key in keys]
    for query in REFERENCES.get(table, ()):
        named.append(bind.execute(sa.text(query)).scalar() or 0)
    if table == "scheduled_snipe":  # claim keys `snipe:<id>:<run>`
        named += [_id_after(key, "snipe:") for key in bind.execute(sa.text(SNIPE_CLAIMS)).scalars()]
    highest = max(named)
    if not highest:
        return
    # sqlite_sequence holds the largest id ever handed out (a row per table once it has one).
    current = bind.execute(
        sa.text("SELECT seq FROM sqlite_sequence WHERE name = :t"), {"t": table}
    ).scalar()
    if current is None:
        bind.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :n)"),
            {"t": table, "n": highest},
        )
    elif current < highest:
        bind.execute(
            sa.text("UPDATE sqlite_sequence SET seq = :n WHERE name = :t"),
            {"t": table, "n": highest},
        )


def _id_after(key: str, prefix: str) -> int:
    """The id in `<prefix><id>[:...]`; 0 when there is none."""
    text = key[len(prefix) :].split(":", 1)[0]
    return int(text) if text.isdigit() else 0
