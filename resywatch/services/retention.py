"""Retention: delete what is no longer needed, in small batches that never stall a scan.

What goes: closed drop events, delivered (or given-up) notifications, API call log rows and
job runs older than the settings say. What stays, whatever its age: open drops and the
notifications that still stand in for a dedupe key (a watch or notify hit for a day that has
not passed: deleting it would let the same slot be announced again).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, select
from sqlmodel import col

from resywatch.config import Settings
from resywatch.db.engine import Database
from resywatch.db.models import ApiCallLog, DropEvent, JobRun, Notification, NotificationStatus
from resywatch.services import outbox

BATCH = 5_000
# Between batches: on SQLite a writer waiting for the lock retries on its own schedule (up
# to 100 ms apart) and would lose every race to back-to-back batches; this gap lets a
# scan's write in (Solid Queue sleeps 0.3 s between its batches for the same reason).
BATCH_PAUSE_S = 0.1


def prune(
    db: Database, settings: Settings, now: datetime, *, stop: threading.Event | None = None
) -> dict[str, int]:
    """Delete expired rows in batches of at most BATCH, one short transaction each. When
    `stop` is set, the batch in hand is finished and the rest left for the next pass.

    `now` (the caller's clock, read once) is the instant every cutoff is measured from, so
    one pass judges every table alike; the pauses between batches are wall time on purpose
    (they let a waiting SQLite writer in), so a Clock here would add nothing."""
    today = now.date()
    days = timedelta(days=1)
    stop = stop or threading.Event()
    return {
        "drop_events": _in_batches(
            db,
            stop,
            DropEvent,
            col(DropEvent.closed_at).is_not(None)
            & (col(DropEvent.closed_at) < now - settings.retention_drop_events_days * days),
        ),
        "notifications": _in_batches(
            db,
            stop,
            Notification,
            col(Notification.status).in_([NotificationStatus.SENT, NotificationStatus.FAILED])
            & (col(Notification.created_at) < now - settings.retention_notifications_days * days),
            keep=lambda row: outbox.still_dedupes(row, today),
        ),
        "api_calls": _in_batches(
            db,
            stop,
            ApiCallLog,
            col(ApiCallLog.at) < now - settings.retention_api_calls_days * days,
        ),
        "job_runs": _in_batches(
            db,
            stop,
            JobRun,
            col(JobRun.started_at) < now - settings.retention_job_runs_days * days,
        ),
    }


def _in_batches(
    db: Database,
    stop: threading.Event,
    model: type[DropEvent] | type[Notification] | type[ApiCallLog] | type[JobRun],
    expired: ColumnElement[bool],
    keep: Callable[[Notification], bool] | None = None,
) -> int:
    """Delete the expired rows (but those `keep` spares), at most BATCH a transaction."""
    deleted, spared = 0, set[int]()
    identity = col(model.id)
    while not stop.is_set():
        with db.write() as session:
            query = select(model if keep else identity).where(expired)
            if spared:
                query = query.where(identity.not_in(spared))
            rows: list[Any] = list(session.scalars(query.order_by(identity).limit(BATCH)))
            doomed: list[int] = []
            for row in rows:
                if isinstance(row, Notification) and keep is not None and keep(row):
                    spared.add(row.id or 0)
                else:
                    doomed.append(row if isinstance(row, int) else row.id or 0)
            if doomed:
                session.execute(delete(model).where(identity.in_(doomed)))
            deleted += len(doomed)
        if len(rows) < BATCH:
            break
        stop.wait(BATCH_PAUSE_S)
    return deleted
