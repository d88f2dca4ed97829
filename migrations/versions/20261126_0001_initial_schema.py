"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 10:03:16.828353
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "api_call_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("endpoint", sa.String(length=128), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("error_kind", sa.String(length=32), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_call_log")),
    )
    with op.batch_alter_table("api_call_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_call_log_at"), ["at"], unique=False)

    op.create_table(
        "booking_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("claim_key", sa.String(length=128), nullable=True),
        sa.Column("venue_id", sa.Integer(), nullable=False),
        sa.Column("venue_name", sa.String(), nullable=True),
        sa.Column("slot_date", sa.Date(), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=True),
        sa.Column("party_size", sa.Integer(), nullable=False),
        sa.Column("seating_type", sa.String(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("resy_status", sa.Integer(), nullable=True),
        sa.Column("message", sa.String(), nullable=True),
        sa.Column("reservation_id", sa.BigInteger(), nullable=True),
        sa.Column("latency_ms", sa.JSON(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_attempt")),
        sa.UniqueConstraint("claim_key", name=op.f("uq_booking_attempt_claim_key")),
    )
    with op.batch_alter_table("booking_attempt", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_booking_attempt_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "discovery_bucket",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("slot_date", sa.Date(), nullable=False),
        sa.Column("anchor", sa.String(length=5), nullable=False),
        sa.Column("search_key", sa.String(length=64), nullable=True),
        sa.Column("baselined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_scan_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("baseline_count", sa.Integer(), nullable=False),
        sa.Column("slot_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discovery_bucket")),
    )
    with op.batch_alter_table("discovery_bucket", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_discovery_bucket_slot_date"), ["slot_date"], unique=False
        )

    op.create_table(
        "drop_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slot_id", sa.String(length=32), nullable=False),
        sa.Column("bucket_id", sa.String(length=32), nullable=False),
        sa.Column("venue_id", sa.Integer(), nullable=False),
        sa.Column("venue_name", sa.String(), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("slot_date", sa.Date(), nullable=False),
        sa.Column("party_sizes", sa.JSON(), nullable=False),
        sa.Column("seating_types", sa.JSON(), nullable=False),
        sa.Column("is_hotspot", sa.Boolean(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drop_event")),
    )
    with op.batch_alter_table("drop_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_drop_event_opened_at"), ["opened_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_drop_event_slot_date"), ["slot_date"], unique=False)
        batch_op.create_index("ix_drop_event_venue_opened", ["venue_id", "opened_at"], unique=False)
        batch_op.create_index(
            "uq_drop_event_open_slot",
            ["slot_id"],
            unique=True,
            sqlite_where=sa.text("closed_at IS NULL"),
            postgresql_where=sa.text("closed_at IS NULL"),
        )

    op.create_table(
        "job_heartbeat",
        sa.Column("job_name", sa.String(length=64), nullable=False),
        sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.String(length=16), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("running_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("owner", sa.String(length=128), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job_name", name=op.f("pk_job_heartbeat")),
    )
    op.create_table(
        "job_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_name", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_run")),
    )
    with op.batch_alter_table("job_run", schema=None) as batch_op:
        batch_op.create_index("ix_job_run_job_started", ["job_name", "started_at"], unique=False)

    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("body", sa.String(), nullable=False),
        sa.Column("url", sa.String(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_notification_dedupe_key")),
    )
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            "ix_notification_status_next", ["status", "next_attempt_at"], unique=False
        )

    op.create_table(
        "notify_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("venue_id", sa.Integer(), nullable=False),
        sa.Column("venue_name", sa.String(), nullable=False),
        sa.Column("date_from", sa.Date(), nullable=False),
        sa.Column("date_to", sa.Date(), nullable=False),
        sa.Column("party_size", sa.Integer(), nullable=False),
        sa.Column("time_from", sa.Time(), nullable=True),
        sa.Column("time_to", sa.Time(), nullable=True),
        sa.Column("auto_book", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("satisfied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_request")),
    )
    with op.batch_alter_table("notify_request", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notify_request_status"), ["status"], unique=False)

    op.create_table(
        "venue",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("url_slug", sa.String(), nullable=True),
        sa.Column("location_slug", sa.String(), nullable=True),
        sa.Column("neighborhood", sa.String(), nullable=True),
        sa.Column("cuisine", sa.String(), nullable=True),
        sa.Column("price_range", sa.Integer(), nullable=True),
        sa.Column("rating", sa.Float(), nullable=True),
        sa.Column("rating_count", sa.Integer(), nullable=True),
        sa.Column("time_zone", sa.String(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("lead_time_days", sa.Integer(), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_venue")),
    )
    with op.batch_alter_table("venue", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_venue_name"), ["name"], unique=False)

    op.create_table(
        "venue_search_snapshot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("criteria_key", sa.String(length=64), nullable=False),
        sa.Column("venue_names", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_venue_search_snapshot")),
        sa.UniqueConstraint("criteria_key", name=op.f("uq_venue_search_snapshot_criteria_key")),
    )
    op.create_table(
        "watch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("venue_ids", sa.JSON(), nullable=False),
        sa.Column("query", sa.String(), nullable=True),
        sa.Column("cuisine", sa.String(), nullable=True),
        sa.Column("neighborhood", sa.String(), nullable=True),
        sa.Column("date_from", sa.Date(), nullable=False),
        sa.Column("date_to", sa.Date(), nullable=False),
        sa.Column("party_size", sa.Integer(), nullable=False),
        sa.Column("time_from", sa.Time(), nullable=True),
        sa.Column("time_to", sa.Time(), nullable=True),
        sa.Column("seating_types", sa.JSON(), nullable=False),
        sa.Column("interval_s", sa.Integer(), nullable=False),
        sa.Column("auto_book", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watch")),
    )
    with op.batch_alter_table("watch", schema=None) as batch_op:
        batch_op.create_index(
            "ix_watch_status_next_check", ["status", "next_check_at"], unique=False
        )

    op.create_table(
        "slot_snapshot",
        sa.Column("bucket_id", sa.String(length=32), nullable=False),
        sa.Column("slot_id", sa.String(length=32), nullable=False),
        sa.Column("venue_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("offered", sa.String(length=255), nullable=False),
        sa.Column("in_baseline", sa.Boolean(), nullable=False),
        sa.Column("in_previous", sa.Boolean(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["bucket_id"],
            ["discovery_bucket.id"],
            name=op.f("fk_slot_snapshot_bucket_id_discovery_bucket"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("bucket_id", "slot_id", name=op.f("pk_slot_snapshot")),
    )
    with op.batch_alter_table("slot_snapshot", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_slot_snapshot_venue_id"), ["venue_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("slot_snapshot", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_slot_snapshot_venue_id"))

    op.drop_table("slot_snapshot")
    with op.batch_alter_table("watch", schema=None) as batch_op:
        batch_op.drop_index("ix_watch_status_next_check")

    op.drop_table("watch")
    op.drop_table("venue_search_snapshot")
    with op.batch_alter_table("venue", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_venue_name"))

    op.drop_table("venue")
    with op.batch_alter_table("notify_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notify_request_status"))

    op.drop_table("notify_request")
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_status_next")
        batch_op.drop_index(batch_op.f("ix_notification_created_at"))

    op.drop_table("notification")
    with op.batch_alter_table("job_run", schema=None) as batch_op:
        batch_op.drop_index("ix_job_run_job_started")

    op.drop_table("job_run")
    op.drop_table("job_heartbeat")
    with op.batch_alter_table("drop_event", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_drop_event_open_slot",
            sqlite_where=sa.text("closed_at IS NULL"),
            postgresql_where=sa.text("closed_at IS NULL"),
        )
        batch_op.drop_index("ix_drop_event_venue_opened")
        batch_op.drop_index(batch_op.f("ix_drop_event_slot_date"))
        batch_op.drop_index(batch_op.f("ix_drop_event_opened_at"))

    op.drop_table("drop_event")
    with op.batch_alter_table("discovery_bucket", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_discovery_bucket_slot_date"))

    op.drop_table("discovery_bucket")
    with op.batch_alter_table("booking_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_booking_attempt_created_at"))

    op.drop_table("booking_attempt")
    with op.batch_alter_table("api_call_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_call_log_at"))

    op.drop_table("api_call_log")
