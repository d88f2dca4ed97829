"""The snipe lane against the sandbox (its clock 20 times real time): snipes that share an
instant run in one pass, each on its own part of the lane, and all book; a lane too small
for them slows the late comers, which still book and say they could not keep their
interval; windows are settled when the snipes end."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time

import pytest
from booking_support import SandboxTime, unreleased
from sqlmodel import select

from resywatch.config import Settings, load_settings
from resywatch.db.engine import Database
from resywatch.db.models import SnipeWindow
from resywatch.db.models.booking import Outcome
from resywatch.resy.client import client_from_settings
from resywatch.runtime import Runtime
from resywatch.sandbox import DEMO_API_KEY, DEMO_AUTH_TOKEN, SandboxConfig, SandboxHandle
from resywatch.services.booking import runs as snipe_runs
from resywatch.services.booking import schedule
from resywatch.services.booking.attempts import list_attempts
from resywatch.services.booking.plan import BookingRequest
from resywatch.services.booking.sniper import FIND_FANOUT

START = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(seed=42, speed=20.0, start=START, cancellations=False)


def settings_for(sandbox: SandboxHandle, database_url: str, lane_rps: float) -> Settings:
    return load_settings(
        environ={
            "RESYWATCH_DATABASE_URL": database_url,
            "RESYWATCH_RESY_BASE_URL": sandbox.base_url,
            "RESYWATCH_RESY_API_KEY": DEMO_API_KEY,
            "RESYWATCH_RESY_AUTH_TOKEN": DEMO_AUTH_TOKEN,
            "RESYWATCH_RESY_SNIPE_MAX_RPS": str(lane_rps),
        }
    )


def four_at_once(
    sandbox: SandboxHandle, db: Database, settings: Settings
) -> list[snipe_runs.SnipeRun]:
    instant = sandbox.state.clock.now() + 20
    targets = [unreleased(sandbox, skip=n) for n in range(4)]
    for venue, day in targets:
        sandbox.state.force_release(venue, day, instant)
    clock = SandboxTime(sandbox.state)

    async def go() -> list[snipe_runs.SnipeRun]:
        async with client_from_settings(settings) as resy:
            rt = Runtime(settings, db, resy, clock)
            for venue, day in targets:
                await schedule.schedule_snipe(
                    rt,
                    schedule.SnipeSpec(
                        BookingRequest(venue=str(venue.id), day=day, party_size=2,
                                       window=(time(18), time(21))),
                        schedule.Release(at=datetime.fromtimestamp(instant, UTC)),
                        schedule.Pacing(),
                    ),
                )  # fmt: skip
            return await snipe_runs.run_due_snipes(rt)

    return asyncio.run(go())


def test_snipes_sharing_an_instant_all_book_each_on_its_part_of_the_lane(
    sandbox: SandboxHandle, database_url: str, db: Database
) -> None:
    settings = settings_for(sandbox, database_url, 70.0)  # the default
    runs = four_at_once(sandbox, db, settings)
    assert len(runs) == 4
    results = [r.result for r in runs]
    assert all(r is not None and r.outcome is Outcome.BOOKED for r in results), results
    wanted = FIND_FANOUT / settings.book_poll_interval_s + 1
    assert [r.latency_ms["lane_rps"] for r in results if r] == [pytest.approx(wanted)] * 4
    with db.read() as session:
        assert session.exec(select(SnipeWindow)).all() == []  # every window settled
    attempts = list_attempts(db)
    assert all("effective_interval_ms" in a.latency_ms for a in attempts)


def test_a_lane_too_small_slows_the_late_comers_who_book_and_say_so(
    sandbox: SandboxHandle, database_url: str, db: Database
) -> None:
    wanted = FIND_FANOUT / 0.2 + 1
    settings = settings_for(sandbox, database_url, wanted + 1)  # one snipe at full pace
    runs = four_at_once(sandbox, db, settings)
    results = [r.result for r in runs if r.result is not None]
    assert [r.outcome for r in results] == [Outcome.BOOKED] * 4
    slowed = [r for r in results if r.latency_ms["lane_rps"] < wanted]
    assert len(slowed) == 3
    for result in slowed:
        (warning,) = result.warnings
        assert "could not keep its 200 ms interval" in warning
        assert "resy.snipe_max_rps" in warning
