"""Recurring snipes and priority times against the sandbox with its clock running 20 times
faster than real time and moved a week on between occurrences: a weekly series books three
weeks in a row, each booking adding the next occurrence; a snipe's ranked `--time` list books
its first listed time that drops, not the open time nearest to it."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from booking_support import SandboxTime, held, unreleased

from resywatch.config import Settings, load_settings
from resywatch.db.engine import Database
from resywatch.db.models.booking import Outcome
from resywatch.resy.client import client_from_settings
from resywatch.runtime import Runtime
from resywatch.sandbox import DEMO_API_KEY, DEMO_AUTH_TOKEN, SandboxConfig, SandboxHandle
from resywatch.sandbox.venues import Venue
from resywatch.services.booking import runs as snipe_runs
from resywatch.services.booking import schedule
from resywatch.services.booking.attempts import list_attempts
from resywatch.services.booking.plan import BookingRequest

SPEED = 20.0
#: A Monday 16:00 in New York: no natural release for hours.
START = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)
WINDOW = (time(18), time(21))


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(seed=42, speed=SPEED, start=START, cancellations=False)


@pytest.fixture
def settings(sandbox: SandboxHandle, database_url: str) -> Settings:
    return load_settings(
        environ={
            "RESYWATCH_DATABASE_URL": database_url,
            "RESYWATCH_RESY_BASE_URL": sandbox.base_url,
            "RESYWATCH_RESY_API_KEY": DEMO_API_KEY,
            "RESYWATCH_RESY_AUTH_TOKEN": DEMO_AUTH_TOKEN,
            "RESYWATCH_RESY_MAX_RPS": "10000",  # sandbox seconds go by 20 times faster
        }
    )


def first_release(sandbox: SandboxHandle, venue: Venue, day: date) -> tuple[int, time]:
    """(days ahead, release time) that release `day` two minutes from now, on a whole
    minute in the venue's zone (a release time is HH:MM)."""
    local = (sandbox.state.clock.now_datetime() + timedelta(minutes=2)).astimezone(
        ZoneInfo(venue.time_zone)
    )
    return (day - local.date()).days, local.time().replace(second=0, microsecond=0)


def test_a_weekly_series_books_three_weeks_in_a_row(
    sandbox: SandboxHandle, settings: Settings, db: Database
) -> None:
    venue, day = unreleased(sandbox)
    days_ahead, release_time = first_release(sandbox, venue, day)
    spec = schedule.SnipeSpec(
        BookingRequest(venue=str(venue.id), day=day, party_size=2, window=WINDOW),
        schedule.Release(time_of_day=release_time),
        recurrence=schedule.Recurrence(f"weekly:{day:%a}".lower(), days_ahead),
    )
    clock = SandboxTime(sandbox.state)

    async def go() -> list[tuple[schedule.SnipeView, list[snipe_runs.SnipeRun]]]:
        weeks = []
        async with client_from_settings(settings) as resy:
            rt = Runtime(settings, db, resy, clock)
            added = await schedule.schedule_snipe(rt, spec)
            assert (added.series_id, added.repeat, added.next_run) == (
                added.id, f"weekly:{day:%a}".lower(), added.release_at,
            )  # fmt: skip
            for _ in range(3):
                (coming,) = schedule.list_snipes(db)  # one occurrence to come at a time
                instant = coming.release_at.timestamp()
                sandbox.state.clock.set(instant - 20)  # a week on, just before its release
                sandbox.state.force_release(venue, coming.day, instant)
                weeks.append((coming, await snipe_runs.run_due_snipes(rt)))
        return weeks

    weeks = asyncio.run(go())
    days = [day + timedelta(days=7 * n) for n in range(3)]
    assert [coming.day for coming, _ in weeks] == days
    for coming, (run,) in weeks:
        assert run.result is not None and run.result.outcome is Outcome.BOOKED, run.result
        assert run.result.day == coming.day and run.snipe_id == coming.id
        local = coming.release_at.astimezone(ZoneInfo(venue.time_zone))
        assert (local.date(), local.time()) == (coming.day - timedelta(days_ahead), release_time)
    assert sorted(r.day for r in held(sandbox, venue.id)) == days
    # Every occurrence is kept, booked; the fourth week is next, and only it.
    every = schedule.list_snipes(db, include_finished=True)
    assert [(s.day, s.status, s.outcome) for s in every] == [
        *((d, "done", "booked") for d in days),
        (day + timedelta(days=21), "scheduled", None),
    ]
    assert {s.series_id for s in every} == {weeks[0][0].id}
    assert [a.outcome for a in list_attempts(db)] == ["booked"] * 3


def test_a_snipe_books_its_first_listed_time_that_drops(
    sandbox: SandboxHandle, settings: Settings, db: Database
) -> None:
    """The list is a time that does not open, then the open time furthest from it: that one
    is booked, although others open nearer to the first listed time."""
    venue, day = unreleased(sandbox)
    now = sandbox.state.clock.now()
    instant = now + 20
    sandbox.state.force_release(venue, day, instant)
    opened = open_evening_times(sandbox, venue, day, instant)
    assert len(opened) >= 2, opened
    minutes = (datetime.combine(day, time(18)) + timedelta(minutes=m) for m in range(0, 180, 5))
    missing = next(t.time() for t in minutes if f"{t:%H:%M}" not in opened)
    furthest = max(opened, key=lambda t: abs(minute_of(t) - minute_of(f"{missing:%H:%M}")))
    wanted = (missing, time.fromisoformat(furthest))
    spec = schedule.SnipeSpec(
        BookingRequest(venue=str(venue.id), day=day, party_size=2, times=wanted, window=WINDOW),
        schedule.Release(at=datetime.fromtimestamp(instant, UTC)),
    )
    clock = SandboxTime(sandbox.state)

    async def go() -> list[snipe_runs.SnipeRun]:
        async with client_from_settings(settings) as resy:
            rt = Runtime(settings, db, resy, clock)
            saved = await schedule.schedule_snipe(rt, spec)
            assert saved.preferred_times == [f"{missing:%H:%M}", furthest]
            return await snipe_runs.run_due_snipes(rt)

    (run,) = asyncio.run(go())
    assert run.result is not None and run.result.outcome is Outcome.BOOKED, run.result
    assert run.result.starts_at is not None
    assert f"{run.result.starts_at:%H:%M}" == furthest


def minute_of(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:5])


def open_evening_times(sandbox: SandboxHandle, venue: Venue, day: date, at: float) -> list[str]:
    """HH:MM of the slots open for two in 18:00-21:00 on `day` once released at `at`."""
    snapshot = sandbox.state.world.snapshot(venue, day, at + 1)
    return sorted(
        {
            snapshot.slots[i].time[:5]
            for i in snapshot.open_for(2)
            if 18 * 60 <= snapshot.slots[i].minute <= 21 * 60
        }
    )
