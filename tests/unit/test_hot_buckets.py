"""Where drops happen, look more often (issue 16): a near bucket with a recent drop is due at
every part of the discovery cycle, a quiet one once a cycle; the scans stay C − (P ∪ B);
`discover buckets` (the bucket states) shows each bucket's interval. Both backends."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from resywatch.clock import ManualClock
from resywatch.config import Settings, load_settings
from resywatch.db.engine import Database
from resywatch.db.leases import WorkerId
from resywatch.resy.search_page import SearchHit, parse_search_page
from resywatch.resy.transport import CallLog
from resywatch.runtime import Runtime
from resywatch.scheduler.jobs import CLAIMED, HOT, JOBS, JobContext
from resywatch.scheduler.supervisor import JITTER, Supervisor
from resywatch.services.discovery import claims, hot
from resywatch.services.discovery.scan import PassSummary, run_pass
from resywatch.services.discovery.states import bucket_states

NOW = datetime(2026, 12, 1, 15, tzinfo=UTC)  # 10:00 in New York; a cycle starts here
TODAY, TOMORROW, AFTER = date(2026, 12, 1), date(2026, 12, 2), date(2026, 12, 3)
WORKER = WorkerId("elsewhere", 4242, "0ddba11")


class OffersResy:
    """One venue offering, each day, the evening times in `offers`."""

    def __init__(self) -> None:
        self.calls: list[Any] = CallLog()  # counts what it holds, as the client's does
        self.offers: dict[date, set[str]] = {}

    def ranked(self, priority: float) -> Any:
        return self  # one caller at a time: nothing queues

    async def search_all(self, *, day: date, time_filter: str, **_: Any) -> list[SearchHit]:
        self.calls.append((day, time_filter))
        slots = [
            {"date": {"start": f"{day} {hhmm}:00"}, "config": {"type": "Bar", "token": hhmm}}
            for hhmm in sorted(self.offers.get(day, set()))
        ]
        hit = {"id": 77, "name": "Lilia", "neighborhood": "Soho", "availability": {"slots": slots}}
        return parse_search_page(json.dumps({"search": {"hits": [hit]}}).encode(), 1).hits


def settings_with(**values: str) -> Settings:
    environ = {"RESYWATCH_DISCOVERY_DAYS": "3", "RESYWATCH_DISCOVERY_PARTY_SIZES": "2"}
    return load_settings(environ=environ | values)


def scan_at(db: Database, resy: OffersResy, settings: Settings, at: datetime) -> PassSummary:
    rt = Runtime(settings, db, resy, ManualClock(at), worker=WORKER)  # type: ignore[arg-type]
    return asyncio.run(run_pass(rt, due_only=True))


def test_parts_cut_a_cycle_evenly_from_its_start() -> None:
    start = datetime(2026, 12, 1, 15, 0, 30, tzinfo=UTC)
    assert claims.cycle_of(start + timedelta(seconds=9.9), 30, 3) == start
    assert claims.cycle_of(start + timedelta(seconds=10), 30, 3) == start + timedelta(seconds=10)
    assert claims.cycle_of(start + timedelta(seconds=29.9), 30, 3) == start + timedelta(seconds=20)
    # A cycle's start is a part's start even when the parts are not whole seconds.
    for offset in (0.0, 3.3, 3.34, 9.99):
        moment = start + timedelta(seconds=offset)
        assert claims.cycle_of(moment, 10, 3) >= claims.cycle_of(moment, 10)
    assert claims.cycle_of(start, 10, 3) == claims.cycle_of(start, 10)


def test_the_supervisor_runs_discovery_at_every_part_of_its_cycle() -> None:
    job = JOBS["discovery"]
    at = NOW + timedelta(seconds=5)
    assert job.next_pass_at(at, settings_with()) == NOW + timedelta(seconds=10)
    assert job.next_pass_at(NOW + timedelta(seconds=25), settings_with()) == NOW + timedelta(
        seconds=30
    )
    off = settings_with(RESYWATCH_DISCOVERY_HOT_FACTOR="1")
    assert job.next_pass_at(at, off) == job.next_run_at(at, off) == NOW + timedelta(seconds=30)
    # Only while its passes report hot buckets: a quiet window costs no extra passes.
    ctx = JobContext(None, None, settings_with(), ManualClock(at))  # type: ignore[arg-type]
    supervisor = Supervisor(ctx, [job], "test:1", lambda result: None)
    assert 5 <= supervisor._delay(job, 0, at, hot=True) <= 5 + 10 * JITTER
    assert 25 <= supervisor._delay(job, 0, at, hot=False) <= 25 + 30 * JITTER


def test_a_near_bucket_with_a_recent_drop_is_scanned_at_every_part(db: Database) -> None:
    settings, resy = settings_with(), OffersResy()
    resy.offers = {TOMORROW: {"19:30"}}
    assert scan_at(db, resy, settings, NOW).buckets_baselined == 6  # 3 days x 2 anchors

    resy.offers = {TOMORROW: {"19:30", "20:00"}, AFTER: {"20:00"}}
    second = scan_at(db, resy, settings, NOW + timedelta(seconds=30))  # the next cycle
    assert (second.buckets_claimed, second.drops_opened) == (6, 2)

    # A third of the way into that cycle only tomorrow's evening is due again: the day
    # after had a drop too, but is beyond the 2 near days.
    calls = len(resy.calls)
    third = scan_at(db, resy, settings, NOW + timedelta(seconds=40))
    assert (third.buckets_claimed, third.drops_opened) == (1, 0)  # still in P: no drop
    assert third.buckets_hot == 1  # the job reports it (HOT): the supervisor comes back
    assert {day for day, _ in resy.calls[calls:]} == {TOMORROW}

    resy.offers[TOMORROW].add("20:30")
    fourth = scan_at(db, resy, settings, NOW + timedelta(seconds=50))
    assert (fourth.buckets_claimed, fourth.drops_opened) == (1, 1)  # exactly the new slot
    ctx = JobContext(db, resy, settings, ManualClock(NOW + timedelta(seconds=55)))  # type: ignore[arg-type]
    counts = asyncio.run(JOBS["discovery"].run(ctx))  # the job, as the supervisor runs it
    assert (counts[CLAIMED], counts[HOT]) == (0, 1)  # nothing due yet; one hot bucket
    assert scan_at(db, resy, settings, NOW + timedelta(seconds=60)).buckets_claimed == 6

    with db.read() as session:
        states = {s.id: s for s in bucket_states(session, NOW + timedelta(seconds=60), settings)}
    hot_one = states["2026-12-02_19:00"]
    assert (hot_one.hot, hot_one.recent_drops, hot_one.interval_s) == (True, 2, 10.0)
    assert {s.interval_s for i, s in states.items() if i != hot_one.id} == {30.0}
    assert not states["2026-12-03_19:00"].hot


@pytest.mark.parametrize(
    ("values", "later"),
    [
        ({"RESYWATCH_DISCOVERY_HOT_FACTOR": "1"}, timedelta(seconds=40)),  # turned off
        ({}, timedelta(hours=7, seconds=10)),  # the drop is older than the 6 hours
    ],
)
def test_without_recent_drops_or_with_the_factor_at_1_every_bucket_waits_its_cycle(
    db: Database, values: dict[str, str], later: timedelta
) -> None:
    settings, resy = settings_with(**values), OffersResy()
    scan_at(db, resy, settings, NOW)
    resy.offers = {TODAY: {"19:30"}}
    assert scan_at(db, resy, settings, NOW + timedelta(seconds=30)).drops_opened == 1
    if later > timedelta(hours=1):  # a new cycle first: everything is due then
        assert scan_at(db, resy, settings, NOW + later - timedelta(seconds=10)).buckets_claimed
    assert scan_at(db, resy, settings, NOW + later).buckets_claimed == 0
    with db.read() as session:
        assert hot.recent_drops(session, ["2026-12-01_19:00"], settings, NOW + later) == {}
