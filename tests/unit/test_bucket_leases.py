"""Bucket leases on their own (both backends): who may claim what, when a lease expires,
and the fence that refuses the scan of a worker whose lease was taken over."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel import select

from resywatch.config import load_settings
from resywatch.db.engine import Database
from resywatch.db.leases import this_worker
from resywatch.db.models import DiscoveryBucket, DropEvent, SlotSnapshot
from resywatch.services.curated import HotspotMatcher
from resywatch.services.discovery import buckets, claims
from resywatch.services.discovery.apply import apply_scan, sync_window
from resywatch.services.discovery.fetch import BucketScan, SeenSlot
from resywatch.services.vocabulary import slot_id

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
TTL = timedelta(seconds=30)
WINDOW = [buckets.Bucket(date(2026, 12, 1) + timedelta(days=d), time(19)) for d in range(6)]
IDS = [b.id for b in WINDOW]


def claim(
    db: Database,
    owner: str = "host-a:1",
    *,
    now: datetime = NOW,
    limit: int = 10,
    cycle: int = 7,
    due_only: bool = True,
    candidates: list[str] = IDS,
    dead: list[str] | None = None,
) -> list[claims.BucketLease]:
    return claims.claim(
        db,
        candidates,
        owner=owner,
        now=now,
        ttl=TTL,
        limit=limit,
        cycle=cycle_started(cycle),
        due_only=due_only,
        dead=dead or (),
    )


def cycle_started(number: int, interval_s: float = 30) -> datetime:
    """The start of the `number`th cycle of `interval_s` (on the clock, as in a pass)."""
    return claims.cycle_of(datetime.fromtimestamp(number * interval_s, UTC), interval_s)


def scan_with_one_slot(bucket: buckets.Bucket) -> BucketScan:
    starts = datetime.combine(bucket.day, bucket.anchor)
    seen = SeenSlot(slot_id(1, starts), 1, "Lilia", starts, {2}, {"Dining Room"})
    return BucketScan(bucket, slots={seen.slot_id: seen})


def apply(db: Database, lease: claims.BucketLease, scan: BucketScan) -> bool:
    settings = load_settings(environ={})
    key = buckets.search_key(settings)
    outcome = apply_scan(
        db, scan, key, HotspotMatcher.default(), NOW, lease=lease, settings=settings
    )
    return not outcome.stale


def test_a_claim_takes_free_buckets_in_order_and_bumps_their_epoch(db: Database) -> None:
    sync_window(db, WINDOW, NOW)
    first = claim(db, limit=4)
    assert [lease.bucket_id for lease in first] == IDS[:4]
    assert {lease.epoch for lease in first} == {1}
    second = claim(db, "host-b:1", limit=4)  # only what nobody holds
    assert [lease.bucket_id for lease in second] == IDS[4:]
    assert claim(db, "host-c:1") == []


def test_a_bucket_is_scanned_once_per_cycle(db: Database) -> None:
    sync_window(db, WINDOW, NOW)
    for lease in claim(db, cycle=7):
        assert apply(db, lease, scan_with_one_slot(buckets.parse_bucket_id(lease.bucket_id)))
    assert claim(db, "host-b:1", cycle=7) == []  # done this cycle, whoever asks
    assert len(claim(db, "host-b:1", cycle=7, due_only=False)) == len(IDS)  # `discover scan`


def test_the_next_cycle_makes_every_bucket_due_again(db: Database) -> None:
    sync_window(db, WINDOW, NOW)
    for lease in claim(db, cycle=7):
        apply(db, lease, BucketScan(buckets.parse_bucket_id(lease.bucket_id), error="boom"))
    # A failed scan counts for its cycle too: it is retried next cycle, not in a loop.
    assert claim(db, cycle=7) == []
    assert len(claim(db, cycle=8)) == len(IDS)


def test_an_expired_lease_is_taken_over_and_the_old_holder_can_write_nothing(
    db: Database,
) -> None:
    sync_window(db, WINDOW, NOW)
    (old,) = claim(db, "host-a:1", limit=1)
    assert claim(db, "host-b:1", limit=1, candidates=[old.bucket_id]) == []  # still held
    later = NOW + TTL + timedelta(seconds=1)
    (new,) = claim(db, "host-b:1", now=later, limit=1, candidates=[old.bucket_id])
    assert new.epoch == old.epoch + 1

    bucket = buckets.parse_bucket_id(old.bucket_id)
    assert not apply(db, old, scan_with_one_slot(bucket))  # the paused worker wakes up
    with db.read() as session:
        row = session.get(DiscoveryBucket, old.bucket_id)
        assert row is not None
        assert (row.last_scan_at, row.last_cycle_start, row.lease_owner) == (None, None, "host-b:1")
        assert session.exec(select(SlotSnapshot)).all() == []
    assert claims.renew(db, [old], now=later, ttl=TTL) == [old.bucket_id]  # lost, it learns

    assert apply(db, new, scan_with_one_slot(bucket))  # the new holder's scan lands
    assert not apply(db, new, scan_with_one_slot(bucket))  # once: its lease is spent


def test_a_renewed_lease_outlives_its_first_ttl(db: Database) -> None:
    sync_window(db, WINDOW, NOW)
    (held,) = claim(db, limit=1)
    assert claims.renew(db, [held], now=NOW + timedelta(seconds=20), ttl=TTL) == []
    at_first_expiry = NOW + TTL + timedelta(seconds=1)
    assert claim(db, "host-b:1", now=at_first_expiry, candidates=[held.bucket_id]) == []


def test_released_leases_are_claimable_at_once(db: Database) -> None:
    sync_window(db, WINDOW, NOW)
    held = claim(db, limit=3)
    claims.release(db, held)
    assert [lease.bucket_id for lease in claim(db, "host-b:1", limit=3)] == IDS[:3]


def test_a_holder_killed_on_this_machine_is_not_waited_for(db: Database) -> None:
    sync_window(db, WINDOW, NOW)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = str(replace(this_worker(), pid=int(gone.stdout)))
    claim(db, "elsewhere:1", candidates=[IDS[2]])  # another machine: only its TTL frees it
    claim(db, dead, limit=2)
    dead = claims.dead_holders(db, NOW)
    taken = claim(db, "host-b:1", limit=10, candidates=IDS[:3], dead=dead)
    assert [lease.bucket_id for lease in taken] == IDS[:2]


def test_concurrent_claims_never_share_a_bucket(db: Database) -> None:
    many = [buckets.Bucket(date(2026, 12, 1) + timedelta(days=d), time(h)) for d in range(14)
            for h in (12, 19)]  # fmt: skip
    sync_window(db, many, NOW)
    every = [b.id for b in many]
    taken: dict[str, list[str]] = {}

    def worker(name: str) -> None:
        mine = taken.setdefault(name, [])
        while got := claim(db, name, limit=2, candidates=every):
            mine.extend(lease.bucket_id for lease in got)

    threads = [threading.Thread(target=worker, args=(f"w{i}:1",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    claimed = [bucket for mine in taken.values() for bucket in mine]
    assert sorted(claimed) == sorted(every)  # each exactly once, none left behind


def test_one_drop_for_a_slot_however_many_leases_raced_for_it(db: Database) -> None:
    sync_window(db, WINDOW, NOW)
    bucket = WINDOW[0]
    (baseline,) = claim(db, limit=1, candidates=[bucket.id], cycle=1)
    apply(db, baseline, BucketScan(bucket))
    (old,) = claim(db, "host-a:1", limit=1, candidates=[bucket.id], cycle=2)
    later = NOW + TTL + timedelta(seconds=1)
    (new,) = claim(db, "host-b:1", now=later, limit=1, candidates=[bucket.id], cycle=2)
    assert apply(db, new, scan_with_one_slot(bucket))
    assert not apply(db, old, scan_with_one_slot(bucket))
    with db.read() as session:
        assert len(session.exec(select(DropEvent)).all()) == 1


def test_buckets_a_cycle_never_reached_go_first_in_the_next(db: Database) -> None:
    sync_window(db, WINDOW, NOW)
    for lease in claim(db, cycle=7, limit=4):  # cycle 7 overran: two buckets never scanned
        apply(db, lease, BucketScan(buckets.parse_bucket_id(lease.bucket_id)))
    taken = claim(db, cycle=8, limit=3)
    assert {lease.bucket_id for lease in taken} == {IDS[4], IDS[5], IDS[0]}


def together(*work: Callable[[], object]) -> None:
    """Run the calls in threads released at the same instant; re-raise the first error."""
    start, errors = threading.Barrier(len(work)), []

    def run(call: Callable[[], object]) -> None:
        start.wait()
        try:
            call()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]


def test_workers_adding_the_same_new_day_do_not_fail(db: Database) -> None:
    for day in range(10):  # each round, three workers' passes add the same new buckets
        window = [buckets.Bucket(date(2026, 12, 1) + timedelta(days=day), time(h))
                  for h in (15, 19)]  # fmt: skip
        together(*(lambda w=window: sync_window(db, w, NOW) for _ in range(3)))
    with db.read() as session:
        assert len(session.exec(select(DiscoveryBucket)).all()) == 2


def test_two_buckets_opening_the_same_slot_at_once_make_one_drop(db: Database) -> None:
    day = date(2026, 12, 1)
    afternoon, evening = buckets.Bucket(day, time(15)), buckets.Bucket(day, time(19))
    sync_window(db, [afternoon, evening], NOW)
    for bucket in (afternoon, evening):  # baselines: nothing open
        (held,) = claim(db, candidates=[bucket.id], cycle=1)
        apply(db, held, BucketScan(bucket))
    for round_ in range(20):  # a 17:xx slot is in both windows (anchor ± 2 h)
        starts = datetime.combine(day, time(17, round_))
        seen = SeenSlot(slot_id(round_, starts), round_, f"Venue {round_}", starts, {2}, set())
        scans = [BucketScan(b, slots={seen.slot_id: seen}) for b in (afternoon, evening)]
        leases = [claim(db, candidates=[s.bucket.id], cycle=2 + round_)[0] for s in scans]
        pairs = zip(scans, leases, strict=True)
        together(*(lambda s=s, held=held: apply(db, held, s) for s, held in pairs))
        assert drops_of_slot(db, seen.slot_id) == 1


def drops_of_slot(db: Database, slot: str) -> int:
    with db.read() as session:
        return len(session.exec(select(DropEvent).where(DropEvent.slot_id == slot)).all())
