"""Retention: delete what is no longer needed, in small batches that never stall a scan.

What goes: closed drop events, delivered (or given-up) notifications, API call log rows and
job runs older than the settings say. What stays, whatever its age: open drops and the
notifications that still stand in for a dedupe key (a watch or notify hit for a day that has
not passed: deleting it would let the same slot be announced again).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, delete, select
from sqlmodel import col

from resywatch.config import Settings
from resywatch.db.engine import Database
from resywatch.db.models import (
    ApiCallLog,
    DropEvent,
    JobRun,
    Notification,
    NotificationKind,
    NotificationStatus,
)
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
            keep=Spare(
                (col(Notification.kind), _watch_hit_payload()),
                lambda row: outbox.still_dedupes(row, today),
            ),
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


@dataclass(frozen=True)
class Spare:
    """Expired rows that stay all the same: those `spares` says, from the row's id and
    these `columns` alone (a batch of whole messages, loaded as objects with their
    title, body and payload, took 30 MB for a moment in a process meant to stay small)."""

    columns: tuple[Any, ...]  # columns or expressions, labelled as `spares` reads them
    spares: Callable[[Any], bool]  # a row of (id, *columns), read by name


def _watch_hit_payload() -> ColumnElement[Any]:
    """A message's payload when `still_dedupes` reads it (a watch hit's), else NULL."""
    kind = col(Notification.kind)
    return case((kind == NotificationKind.WATCH_HIT, col(Notification.payload))).label("payload")


def _in_batches(
    db: Database,
    stop: threading.Event,
    model: type[DropEvent] | type[Notification] | type[ApiCallLog] | type[JobRun],
    expired: ColumnElement[bool],
    keep: Spare | None = None,
) -> int:
    """Delete the expired rows (but those `keep` spares), at most BATCH a transaction."""
    deleted, spared = 0, set[int]()
    identity = col(model.id)
    while not stop.is_set():
        with db.write() as session:
            query = select(identity, *(keep.columns if keep else ())).where(expired)
            if spared:
                query = query.where(identity.not_in(spared))
            rows = session.execute(query.order_by(identity).limit(BATCH)).all()
            doomed: list[int] = []
            for row in rows:
                if keep is not None and keep.spares(row):
                    spared.add(row.id)
                else:
                    doomed.append(row.id)
            if doomed:
                session.execute(delete(model).where(identity.in_(doomed)))
            deleted += len(doomed)
        if len(rows) < BATCH:
            break
        stop.wait(BATCH_PAUSE_S)
    return deleted
