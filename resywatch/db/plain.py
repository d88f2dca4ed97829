"""Plain SQLAlchemy Core views of the columns that short commands read (`run due` when
nothing is due, `health`), so they need not define the SQLModel table classes: building
those costs such a command more than all of its queries.

Each view names a table of `resywatch.db.models` and some of its columns, with the same
types (timestamps read back as aware UTC, JSON decoded); tests/unit/test_plain_views.py
holds them to the tables. Writes still go through the models.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, ColumnClause, Date, Integer, column, select, table
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

if TYPE_CHECKING:
    from resywatch.db.engine import Database


def _at(name: str) -> ColumnClause[datetime]:
    """A timestamp column: aware UTC on both backends, as the models read it."""
    return column(name, UTCDateTime())


job_heartbeat = table(
    "job_heartbeat",
    column("job_name", AutoString()),
    _at("last_started_at"),
    _at("last_finished_at"),
    column("last_status", AutoString()),
    column("last_error", AutoString()),
    _at("next_run_at"),
)
job_run = table(
    "job_run",
    column("job_name", AutoString()),
    _at("started_at"),
    _at("finished_at"),
    column("status", AutoString()),
    column("counts", JSON()),
)
discovery_bucket = table(
    "discovery_bucket",
    column("id", AutoString()),
    column("slot_date", Date()),
    column("anchor", AutoString()),
    _at("baselined_at"),
    _at("last_scan_at"),
    _at("last_attempt_at"),
    column("last_error", AutoString()),
    column("consecutive_failures", Integer()),
    column("baseline_count", Integer()),
    column("slot_count", Integer()),
    _at("lease_until"),
    _at("created_at"),
)
drop_event = table("drop_event", column("bucket_id", AutoString()), _at("opened_at"))
notification = table(
    "notification",
    column("status", AutoString()),
    _at("next_attempt_at"),
    _at("created_at"),
    _at("claimed_until"),
)
booking_attempt = table("booking_attempt", column("outcome", AutoString()), _at("created_at"))
api_call_log = table(
    "api_call_log",
    _at("at"),
    column("endpoint", AutoString()),
    column("status", Integer()),
)
resy_host = table(
    "resy_host",
    column("host", AutoString()),
    _at("next_free_at"),
    _at("paused_until"),
    column("consecutive_failures", Integer()),
    _at("opened_at"),
    _at("open_until"),
    _at("probe_until"),
    column("last_error", AutoString()),
    _at("updated_at"),
)
watch = table(
    "watch",
    column("status", AutoString()),
    column("interval_s", Integer()),
    _at("last_checked_at"),
    _at("created_at"),
    _at("updated_at"),
)
notify_request = table(
    "notify_request",
    column("status", AutoString()),
    _at("last_checked_at"),
    _at("created_at"),
)
scheduled_snipe = table(
    "scheduled_snipe",
    column("status", AutoString()),
    _at("release_at"),
    _at("created_at"),
)

VIEWS = (
    job_heartbeat,
    job_run,
    discovery_bucket,
    drop_event,
    notification,
    booking_attempt,
    api_call_log,
    resy_host,
    watch,
    notify_request,
    scheduled_snipe,
)

# `resy_host.last_error` is kept (and shown) at most this long.
LAST_ERROR_CHARS = 500


@dataclass(frozen=True)
class HostState:
    """One Resy host's shared politeness state (a `resy_host` row), as read."""

    host: str
    next_free_at: datetime | None = None
    paused_until: datetime | None = None
    consecutive_failures: int = 0
    opened_at: datetime | None = None
    open_until: datetime | None = None
    probe_until: datetime | None = None
    last_error: str | None = None
    updated_at: datetime | None = None


def host_states(db: Database) -> list[HostState]:
    """Every host's shared state, by host (for health, and the tests' eyes)."""
    with db.read() as session:
        rows = session.execute(select(resy_host).order_by(resy_host.c.host))
        return [HostState(**row._mapping) for row in rows]
