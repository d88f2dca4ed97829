"""Where drops happen, look more often (issue 16).

A bucket is hot when its date is within the next `discovery_hot_days` days and a drop opened
in it within the last `discovery_hot_hours` hours: cancellations cluster in the next 48 h,
and where one slot came back others tend to follow. A hot bucket is due every
`discovery_interval_s / discovery_hot_factor` instead of every interval. Only *when* a
bucket is scanned changes: every scan still reports `C − (P ∪ B)`.

The cycle is cut into `factor` equal parts (`claims.cycle_of(..., parts=factor)`); every
scan records the part it ran in, so a quiet bucket is due once its cycle is over and a hot
one once its part is. The extra load is bounded: at most `hot_days` × anchors buckets can
be hot (4 with the defaults), each scanned `factor` times a cycle instead of once, so a
30 s cycle makes at most 28 + 4 × 2 = 36 bucket scans instead of 28, all through the
shared per-host rate limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import Session

from resywatch.config import Settings
from resywatch.db.plain import drop_event
from resywatch.services.discovery.buckets import Bucket, parse_bucket_id
from resywatch.services.vocabulary import local_today


def recent_drops(
    session: Session, buckets: Iterable[Bucket | str], settings: Settings, now: datetime
) -> dict[str, int]:
    """The hot ones among `buckets` (or bucket ids): bucket id -> drops opened in it within
    the hot window. Empty when the factor is 1 (every bucket on the one interval)."""
    if settings.discovery_hot_factor <= 1 or settings.discovery_hot_days <= 0:
        return {}
    horizon = local_today(now, settings.timezone) + timedelta(days=settings.discovery_hot_days)
    near = [
        b.id
        for b in (parse_bucket_id(b) if isinstance(b, str) else b for b in buckets)
        if b.day < horizon
    ]
    if not near:
        return {}
    since = now - timedelta(hours=settings.discovery_hot_hours)
    d = drop_event.c
    query = (
        select(d.bucket_id, func.count())
        .where(d.bucket_id.in_(near), d.opened_at >= since)
        .group_by(d.bucket_id)
    )
    return {bucket_id: count for bucket_id, count in session.execute(query)}


def interval_s(settings: Settings, *, hot: bool) -> float:
    """How often a bucket is due: the discovery interval, or its part when hot."""
    interval = settings.discovery_interval_s
    return interval / settings.discovery_hot_factor if hot else interval
