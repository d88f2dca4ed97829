"""A bucket scan is all or nothing: a crash at any statement of its transaction leaves the
previous state whole, with no orphan drop event, notification or snapshot row.

The crash is an exception raised before the Nth statement the scan sends (N drawn at
random, 100 runs per backend): the transaction is rolled back exactly as it is when the
process dies mid-way, since nothing is committed before its end.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import event
from sqlmodel import select

from resywatch.config import load_settings
from resywatch.db.engine import Database
from resywatch.db.models import DiscoveryBucket, DropEvent, Notification, SlotSnapshot
from resywatch.services.curated import HotspotMatcher
from resywatch.services.discovery import buckets, claims
from resywatch.services.discovery.apply import apply_scan, sync_window
from resywatch.services.discovery.fetch import BucketScan, SeenSlot
from resywatch.services.vocabulary import slot_id

RUNS = 100


class Crash(Exception):
    """Stands in for the process dying before a statement reaches the database."""


@contextmanager
def crash_before_statement(db: Database, number: int) -> Iterator[list[int]]:
    """Raise before the `number`-th statement (counting from 0); yields the count seen."""
    seen = [0]

    def before(*_: Any) -> None:
        if seen[0] == number:
            raise Crash(f"crash before statement {number}")
        seen[0] += 1

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


def scan_of(bucket: buckets.Bucket, slots: set[int]) -> BucketScan:
    scan = BucketScan(bucket)
    for minute in slots:
        starts = datetime.combine(bucket.day, bucket.anchor) + timedelta(minutes=minute)
        venue = 100 + minute % 7
        key = slot_id(venue, starts)
        scan.slots[key] = SeenSlot(key, venue, f"Venue {venue}", starts, {2}, {"Dining Room"})
    return scan


def state(db: Database, bucket_id: str) -> tuple[object, ...]:
    with db.read() as session:
        previous = sorted(
            r.slot_id
            for r in session.exec(select(SlotSnapshot).where(SlotSnapshot.bucket_id == bucket_id))
            if r.in_previous
        )
        bucket = session.get(DiscoveryBucket, bucket_id)
        assert bucket is not None
        events = session.exec(select(DropEvent)).all()
        notes = session.exec(select(Notification).where(Notification.kind == "drop")).all()
        announced = [n.payload["drop_event_id"] for n in notes]
        # No orphans either way: one notification per drop event, none without one.
        assert sorted(announced) == sorted(e.id for e in events)
        open_slots = {e.slot_id for e in events if e.closed_at is None}
        assert open_slots <= set(previous)  # an open drop's slot is in the snapshot
    return tuple(previous), bucket.last_scan_at, len(events)


def lease(db: Database, bucket: buckets.Bucket, now: datetime) -> claims.BucketLease:
    (held,) = claims.claim(
        db,
        [bucket.id],
        owner="test:1",
        now=now,
        ttl=timedelta(seconds=10),
        limit=1,
        cycle=claims.cycle_of(now, 30),
        due_only=False,
    )
    return held


def test_a_crash_anywhere_in_a_scan_leaves_all_or_nothing(db: Database) -> None:
    rng = random.Random(20261126)
    settings = load_settings(environ={})
    bucket = buckets.Bucket(date(2026, 12, 1), time(19))
    key, matcher = buckets.search_key(settings), HotspotMatcher.default()
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    sync_window(db, [bucket], now)
    current = set(rng.sample(range(-120, 121, 15), 8))
    baseline = scan_of(bucket, current)
    apply_scan(db, baseline, key, matcher, now, lease=lease(db, bucket, now), settings=settings)

    crashed = completed = 0
    for run in range(RUNS):
        now += timedelta(seconds=30)
        changed = set(current)
        for minute in rng.sample(range(-120, 121, 5), rng.randint(1, 6)):
            changed ^= {minute}  # some slots open, some close
        before = state(db, bucket.id)
        died = False
        held = lease(db, bucket, now)  # a crashed apply leaves it to expire, as kill -9 would
        with crash_before_statement(db, rng.randint(0, 40)):
            try:
                scan = scan_of(bucket, changed)
                apply_scan(db, scan, key, matcher, now, lease=held, settings=settings)
            except Crash:
                died = True
        after = state(db, bucket.id)
        if died:
            crashed += 1
            assert after == before, f"run {run}: part of a crashed scan was kept"
        else:
            completed += 1
            assert after[1] == now, f"run {run}: a complete scan was not recorded"
            current = changed
    assert crashed >= 25 and completed >= 25, (crashed, completed)  # both paths, many times
