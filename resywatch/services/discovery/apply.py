"""Recording one bucket scan: what changed since the last one, as drops.

The rule is the seed's: a slot just opened when it is in C − (P ∪ B), where C is this scan,
P the bucket's last successful scan and B its baseline (its first successful scan). Guards
against the seed's faults:

- only a complete scan (every party size, every page) is applied: a failed or partial one
  replaces nothing, so it can neither close open drops nor make them fire again later;
- one slot opening is one drop event, however many buckets see it and however often a scan
  is replayed (a partial unique index backs this up);
- a slot that closes and reopens within the quiet period re-opens its old event instead of
  alerting again;
- a change of search area, window or party sizes re-baselines the bucket.

A bucket's snapshot, its venues, its drop events and their notification rows commit in one
transaction, fenced by the bucket's lease; Resy is never called inside a transaction (the
asking is `fetch`'s).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from resywatch.config import Settings
from resywatch.db.engine import Database, insert_unless_present
from resywatch.db.models import DiscoveryBucket, DropEvent, SlotSnapshot, Venue
from resywatch.redact import redact_text
from resywatch.services import outbox
from resywatch.services.curated import HotspotMatcher, normalize_name
from resywatch.services.discovery import claims
from resywatch.services.discovery.buckets import Bucket, in_window
from resywatch.services.discovery.fetch import BucketScan, SeenSlot
from resywatch.services.venues import SeenVenue, upsert_venues_in

QUIET_PERIOD = timedelta(minutes=30)
LOST = "lease lost: another worker took the bucket over, this scan was not applied"


@dataclass
class BucketOutcome:
    bucket_id: str
    ok: bool
    stale: bool = False  # the lease was lost: nothing was written
    baselined: bool = False
    slots: int = 0
    opened: int = 0
    reopened: int = 0
    closed: int = 0
    error: str | None = None


def sync_window(db: Database, wanted: list[Bucket], now: datetime) -> int:
    """Drop buckets that left the window (their snapshots go with them), create the new
    ones (they baseline on their first scan), and close drops whose date has passed."""
    wanted_ids = {b.id for b in wanted}
    with db.write() as session:
        existing = set(session.exec(select(DiscoveryBucket.id)))
        stale = existing - wanted_ids
        if stale:
            session.execute(delete(SlotSnapshot).where(col(SlotSnapshot.bucket_id).in_(stale)))
            session.execute(delete(DiscoveryBucket).where(col(DiscoveryBucket.id).in_(stale)))
        new = [
            {"id": b.id, "slot_date": b.day, "anchor": f"{b.anchor:%H:%M}", "created_at": now}
            for b in wanted
            if b.id not in existing
        ]
        if new:  # every worker's first pass of a day adds the same buckets
            session.execute(insert_unless_present(session, _BUCKET), new)
        if wanted:
            past = session.exec(
                select(DropEvent).where(
                    col(DropEvent.closed_at).is_(None), DropEvent.slot_date < wanted[0].day
                )
            ).all()
            for event in past:
                _close(event, now)
    return len(stale)


def apply_scan(
    db: Database,
    scan: BucketScan,
    key: str,
    matcher: HotspotMatcher,
    now: datetime,
    *,
    lease: claims.BucketLease | None,
    venues: Iterable[SeenVenue] = (),
    rebaseline: bool = False,
    settings: Settings,
) -> BucketOutcome:
    """Record one bucket scan (the failure, or the venues, the new snapshot and its drops
    with their notifications) in one transaction, if `lease` still stands. Without a lease
    the caller is the database's only writer (a benchmark, a test)."""
    outcome = BucketOutcome(scan.bucket.id, ok=scan.error is None, error=scan.error)
    with db.write() as session:
        if lease is not None and not claims.settle(session, lease):
            session.rollback()  # nothing of a stale scan may land
            return BucketOutcome(scan.bucket.id, ok=False, stale=True, error=LOST)
        bucket = session.get(DiscoveryBucket, scan.bucket.id)
        if bucket is None:  # pruned while we were asking Resy
            return BucketOutcome(scan.bucket.id, ok=False, error="bucket left the window")
        bucket.last_attempt_at = now
        if scan.error is not None:
            bucket.last_error = redact_text(scan.error, settings.secrets())[:500]
            bucket.consecutive_failures += 1
            return outcome
        upsert_venues_in(session, venues, now)
        if rebaseline or bucket.baselined_at is None or bucket.search_key != key:
            _baseline(session, bucket, scan, now)
            bucket.search_key = key
            bucket.baseline_count = len(scan.slots)
            outcome.baselined = True
        else:
            _diff(session, bucket, scan, matcher, now, outcome, settings)
        bucket.last_scan_at = now
        bucket.last_error = None
        bucket.consecutive_failures = 0
        bucket.slot_count = len(scan.slots)
    outcome.slots = len(scan.slots)
    return outcome


def apply_release(
    db: Database,
    day: date,
    seen: dict[str, SeenSlot],
    matcher: HotspotMatcher,
    now: datetime,
    *,
    settings: Settings,
) -> BucketOutcome:
    """Record one venue's slots on `day`, seen by a look at its release (`releases.py`), in
    the day's baselined buckets: C − (P ∪ B) restricted to these slots. They join P, so the
    next scan of the bucket finds them there (no second drop) and closes them when gone; a
    bucket not baselined yet takes them as its baseline at its first scan."""
    outcome = BucketOutcome("release", ok=True)
    columns = _SNAPSHOT.c
    with db.write() as session:
        buckets = session.exec(
            select(DiscoveryBucket).where(
                col(DiscoveryBucket.slot_date) == day,
                col(DiscoveryBucket.baselined_at).is_not(None),
            )
        ).all()
        for bucket in buckets:
            rules = Bucket(bucket.slot_date, time.fromisoformat(bucket.anchor))
            inside = {
                k: s for k, s in seen.items()
                if in_window(s.starts_at, rules, settings.discovery_window_hours)
            }  # fmt: skip
            known = set(
                session.execute(
                    select(columns.slot_id).where(
                        columns.bucket_id == bucket.id, columns.slot_id.in_(inside)
                    )
                ).scalars()
            )
            opened = [inside[k] for k in sorted(inside.keys() - known)]
            if not opened:
                continue
            session.execute(
                insert(_SNAPSHOT),
                [_snapshot_row(bucket.id, s, now, in_baseline=False) for s in opened],
            )
            _open_drops(session, bucket, opened, matcher, now, outcome, settings)
            outcome.slots += len(opened)
    return outcome


# The snapshot is read and written with Core statements, not ORM objects: a dense city is
# tens of thousands of slots a pass, and an unchanged scan must cost next to nothing.
_SNAPSHOT = SlotSnapshot.__table__  # type: ignore[attr-defined]
_BUCKET = DiscoveryBucket.__table__  # type: ignore[attr-defined]


def _baseline(session: Session, bucket: DiscoveryBucket, scan: BucketScan, now: datetime) -> None:
    """B = P = C: what is open now is the starting point, not news."""
    session.execute(delete(_SNAPSHOT).where(_SNAPSHOT.c.bucket_id == bucket.id))
    if scan.slots:
        session.execute(
            insert(_SNAPSHOT),
            [_snapshot_row(bucket.id, seen, now, in_baseline=True) for seen in scan.slots.values()],
        )
    bucket.baselined_at = now


def _diff(
    session: Session,
    bucket: DiscoveryBucket,
    scan: BucketScan,
    matcher: HotspotMatcher,
    now: datetime,
    outcome: BucketOutcome,
    settings: Settings,
) -> None:
    """Apply C − (P ∪ B) as drops and P − C as closures; write only the rows that change."""
    columns = _SNAPSHOT.c
    rows = {
        slot: (in_baseline, in_previous, offered)
        for slot, in_baseline, in_previous, offered in session.execute(
            select(
                columns.slot_id, columns.in_baseline, columns.in_previous, columns.offered
            ).where(columns.bucket_id == bucket.id)
        )
    }
    current = scan.slots
    previous = {slot for slot, (_, in_previous, _) in rows.items() if in_previous}
    baseline = {slot for slot, (in_baseline, _, _) in rows.items() if in_baseline}
    opened = current.keys() - (previous | baseline)
    gone = previous - current.keys()

    new_rows, touched = [], []
    for slot, seen in current.items():
        known = rows.get(slot)
        if known is None:
            new_rows.append(_snapshot_row(bucket.id, seen, now, in_baseline=False))
        elif not known[1] or known[2] != seen.offered:
            touched.append({"b_slot": slot, "offered": seen.offered, "changed_at": now})
    if new_rows:
        session.execute(insert(_SNAPSHOT), new_rows)
    if touched:
        session.execute(
            update(_SNAPSHOT)
            .where(columns.bucket_id == bucket.id, columns.slot_id == bindparam("b_slot"))
            .values(
                in_previous=True, offered=bindparam("offered"), changed_at=bindparam("changed_at")
            ),
            touched,
        )
    if gone:
        in_bucket = columns.bucket_id == bucket.id
        session.execute(
            update(_SNAPSHOT)
            .where(in_bucket, columns.slot_id.in_(gone), columns.in_baseline)
            .values(in_previous=False, changed_at=now)
        )
        session.execute(
            delete(_SNAPSHOT).where(in_bucket, columns.slot_id.in_(gone), ~columns.in_baseline)
        )

    if opened:
        slots = [current[s] for s in sorted(opened)]
        _open_drops(session, bucket, slots, matcher, now, outcome, settings)
    if gone:
        for event in session.exec(
            select(DropEvent).where(
                col(DropEvent.slot_id).in_(gone), col(DropEvent.closed_at).is_(None)
            )
        ):
            _close(event, now)
            outcome.closed += 1


def _open_drops(
    session: Session,
    bucket: DiscoveryBucket,
    slots: list[SeenSlot],
    matcher: HotspotMatcher,
    now: datetime,
    outcome: BucketOutcome,
    settings: Settings,
) -> None:
    ids = [s.slot_id for s in slots]
    already_open = set(
        session.exec(
            select(DropEvent.slot_id).where(
                col(DropEvent.slot_id).in_(ids), col(DropEvent.closed_at).is_(None)
            )
        )
    )
    recently_closed: dict[str, DropEvent] = {}
    for event in session.exec(
        select(DropEvent)
        .where(col(DropEvent.slot_id).in_(ids), col(DropEvent.closed_at) >= now - QUIET_PERIOD)
        .order_by(col(DropEvent.closed_at))
    ):
        recently_closed[event.slot_id] = event  # the latest wins
    venues = {
        v.id: v
        for v in session.exec(select(Venue).where(col(Venue.id).in_({s.venue_id for s in slots})))
    }
    for seen in slots:
        if seen.slot_id in already_open:  # another bucket saw it first
            continue
        if (flickered := recently_closed.get(seen.slot_id)) is not None:
            flickered.closed_at, flickered.duration_s = None, None  # a flicker, not news
            flickered.reopen_count += 1
            flickered.reopened_at = now
            outcome.reopened += 1
            continue
        event = DropEvent(
            slot_id=seen.slot_id,
            bucket_id=bucket.id,
            venue_id=seen.venue_id,
            venue_name=seen.venue_name,
            starts_at=seen.starts_at,
            slot_date=seen.starts_at.date(),
            party_sizes=sorted(seen.party_sizes),
            seating_types=sorted(seen.seating_types),
            is_hotspot=matcher.matches(seen.venue_name),
            opened_at=now,
        )
        try:
            with session.begin_nested():  # the event's id names its notification
                session.add(event)
        except IntegrityError:  # another worker's bucket opened it a moment ago
            continue
        if wants_notification(event, settings):
            session.add(outbox.drop_opened(event, venues.get(seen.venue_id)))
        outcome.opened += 1


def wants_notification(event: DropEvent, settings: Settings) -> bool:
    """Whether this drop passes the configured filter (`[notify] drops`, `drop_venues`,
    `drop_party_sizes`, `drop_window`)."""
    if settings.notify_drops == "none" or (
        settings.notify_drops == "hotspots" and not event.is_hotspot
    ):
        return False
    if settings.notify_drop_venues and not any(
        normalize_name(v) in normalize_name(event.venue_name) for v in settings.notify_drop_venues
    ):
        return False
    if settings.notify_drop_party_sizes and not set(event.party_sizes) & set(
        settings.notify_drop_party_sizes
    ):
        return False
    if settings.notify_drop_window:
        start, end = settings.notify_drop_window.split("-")
        return start <= f"{event.starts_at:%H:%M}" <= end
    return True


def _close(event: DropEvent, now: datetime) -> None:
    event.closed_at = now
    event.duration_s = max(0, int((now - event.opened_at).total_seconds()))


def _snapshot_row(
    bucket_id: str, seen: SeenSlot, now: datetime, *, in_baseline: bool
) -> dict[str, Any]:
    return {
        "bucket_id": bucket_id,
        "slot_id": seen.slot_id,
        "venue_id": seen.venue_id,
        "starts_at": seen.starts_at,
        "offered": seen.offered,
        "in_baseline": in_baseline,
        "in_previous": True,
        "first_seen_at": now,
        "changed_at": now,
    }
