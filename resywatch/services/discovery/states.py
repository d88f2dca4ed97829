"""Each discovery bucket's state (health, `discover status`, `admin db-info`), read with
plain SQL (`db/plain.py`): `health` reads it without defining the table classes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session

from resywatch.config import Settings
from resywatch.db.plain import discovery_bucket
from resywatch.services.discovery import hot

STALE_AFTER = timedelta(hours=4)  # the seed's rule: a bucket older than this is not trusted


@dataclass(frozen=True)
class BucketState:
    id: str
    date: date
    anchor: str
    baselined: bool
    baseline_size: int
    slot_count: int
    last_scan_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    age_s: float | None
    stale: bool
    # How often the bucket is scanned now: the interval, or its part while the bucket is
    # hot (drops opened in it lately: `recent_drops`). None when no settings were given.
    interval_s: float | None = None
    hot: bool = False
    recent_drops: int = 0


def bucket_states(
    session: Session, now: datetime, settings: Settings | None = None
) -> list[BucketState]:
    b = discovery_bucket
    rows = session.execute(select(b).order_by(b.c.slot_date, b.c.anchor)).all()
    drops = hot.recent_drops(session, [r.id for r in rows], settings, now) if settings else {}
    return [
        BucketState(
            id=row.id,
            date=row.slot_date,
            anchor=row.anchor,
            baselined=row.baselined_at is not None,
            baseline_size=row.baseline_count,
            slot_count=row.slot_count,
            last_scan_at=row.last_scan_at,
            last_attempt_at=row.last_attempt_at,
            last_error=row.last_error,
            consecutive_failures=row.consecutive_failures,
            age_s=(now - row.last_scan_at).total_seconds() if row.last_scan_at else None,
            stale=row.last_scan_at is None or now - row.last_scan_at > STALE_AFTER,
            interval_s=hot.interval_s(settings, hot=row.id in drops) if settings else None,
            hot=row.id in drops,
            recent_drops=drops.get(row.id, 0),
        )
        for row in rows
    ]
