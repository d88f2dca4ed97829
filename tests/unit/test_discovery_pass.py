"""A discovery pass works for the Runtime it is handed (both backends): its buckets are
leased in the name of `rt.worker` and timed by `rt.clock`, not by this process's name or
the wall clock; the venues its scans saw are saved by the venues service; and the
scheduler's discovery job hands the pass its own clock."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlmodel import col, select

from resywatch.clock import ManualClock
from resywatch.config import load_settings
from resywatch.db.engine import Database
from resywatch.db.leases import WorkerId
from resywatch.db.models import DiscoveryBucket, Venue
from resywatch.resy.search_page import SearchHit, parse_search_page
from resywatch.resy.transport import CallLog
from resywatch.runtime import Runtime
from resywatch.scheduler.jobs import CLAIMED, JOBS, JobContext
from resywatch.services.discovery import buckets, claims
from resywatch.services.discovery.scan import run_pass

NOW = datetime(2026, 12, 1, 15, tzinfo=UTC)  # nowhere near the wall clock
WORKER = WorkerId("elsewhere", 4242, "0ddba11")


def aware(moment: datetime | None) -> datetime | None:
    """SQLite keeps no zone: its timestamps are UTC."""
    return moment.replace(tzinfo=UTC) if moment and not moment.tzinfo else moment


class StubResy:
    """Resy with one venue offering one slot at the time asked; at every search it notes
    who holds which bucket and until when."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.calls: list[Any] = CallLog()  # counts what it holds, as the client's does
        self.holders: dict[str, tuple[str | None, datetime | None]] = {}

    def ranked(self, priority: float) -> Any:
        return self  # one caller at a time: nothing queues

    async def search_all(self, *, day: date, time_filter: str, **_: Any) -> list[SearchHit]:
        self.calls.append(day)
        with self.db.read() as session:
            held = select(DiscoveryBucket).where(col(DiscoveryBucket.lease_owner).is_not(None))
            for bucket in session.exec(held):
                self.holders[bucket.id] = (bucket.lease_owner, aware(bucket.lease_until))
        await asyncio.sleep(0)  # let the other scans of the wave be claimed and asked too
        slot = {
            "date": {"start": f"{day} {time_filter}:00"},
            "config": {"type": "Bar", "token": "t"},
        }
        hit = {"id": 77, "name": "Lilia", "neighborhood": "Soho", "availability": {"slots": [slot]}}
        return parse_search_page(json.dumps({"search": {"hits": [hit]}}).encode(), 1).hits


def test_a_pass_leases_as_the_runtimes_worker_and_reads_the_runtimes_clock(
    db: Database,
) -> None:
    settings = load_settings(environ={"RESYWATCH_DISCOVERY_DAYS": "2"})
    resy = StubResy(db)
    rt = Runtime(settings, db, resy, ManualClock(NOW), worker=WORKER)  # type: ignore[arg-type]

    summary = asyncio.run(run_pass(rt))

    window = [b.id for b in buckets.window(settings, NOW)]
    assert summary.buckets_scanned == summary.buckets_claimed == len(window)
    assert summary.duration_s == 0.0  # the manual clock did not move
    assert summary.requests == len(resy.calls) > 0
    assert summary.slots_seen > 0
    ttl = timedelta(seconds=settings.jobs_lease_ttl_s)
    assert resy.holders == {bucket: (str(WORKER), NOW + ttl) for bucket in window}
    with db.read() as session:
        rows = session.exec(select(DiscoveryBucket)).all()
        venue = session.get(Venue, 77)
    assert {r.id for r in rows} == set(window)
    for row in rows:
        assert aware(row.last_scan_at) == aware(row.baselined_at) == NOW
        assert aware(row.last_cycle_start) == claims.cycle_of(NOW, settings.discovery_interval_s)
        assert row.lease_owner is None  # settled by the apply
    assert venue is not None and venue.name == "Lilia" and venue.neighborhood == "Soho"
    assert aware(venue.first_seen_at) == NOW


def test_the_discovery_job_runs_the_pass_on_its_contexts_clock(db: Database) -> None:
    settings = load_settings(environ={"RESYWATCH_DISCOVERY_DAYS": "1"})
    resy = StubResy(db)
    ctx = JobContext(db, resy, settings, ManualClock(NOW))  # type: ignore[arg-type]

    counts = asyncio.run(JOBS["discovery"].run(ctx))

    window = buckets.window(settings, NOW)
    assert counts[CLAIMED] == counts["buckets"] == len(window)
    assert {owner for owner, _ in resy.holders.values()} == {str(ctx.runtime().worker)}
    with db.read() as session:
        scanned = {aware(row.last_scan_at) for row in session.exec(select(DiscoveryBucket))}
    assert scanned == {NOW}


def test_a_pass_collects_garbage_rarely_and_puts_the_threshold_back(db: Database) -> None:
    """A pass keeps the objects it builds until it ends: the collector waits for
    PASS_GC_THRESHOLD allocations, not the default 700, while any pass runs (two at once
    share the hold), and the process's threshold is what it was once the last one ends."""
    import gc

    from resywatch.services.discovery.scan import PASS_GC_THRESHOLD

    settings = load_settings(environ={"RESYWATCH_DISCOVERY_DAYS": "1"})
    before = gc.get_threshold()
    during: list[int] = []

    def runtime(worker: WorkerId) -> Runtime:
        return Runtime(settings, db, StubResy(db), ManualClock(NOW), worker=worker)  # type: ignore[arg-type]

    async def two_passes() -> None:
        second = WorkerId("elsewhere", 4243, "0ddba12")
        await asyncio.gather(
            run_pass(runtime(WORKER), on_bucket=lambda _: during.append(gc.get_threshold()[0])),
            run_pass(runtime(second), on_bucket=lambda _: during.append(gc.get_threshold()[0])),
        )
        during.append(gc.get_threshold()[0])

    gc.set_threshold(700, *before[1:])
    try:
        asyncio.run(two_passes())
        assert during[:-1] and set(during[:-1]) == {PASS_GC_THRESHOLD}
        assert during[-1] == 700 == gc.get_threshold()[0]
    finally:
        gc.set_threshold(*before)
