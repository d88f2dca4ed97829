"""Helpers for the booking tests (no tests here: the `test_` name only keeps it among the
booking test files): venues and slots to book in the sandbox, its counters, its clock."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from resywatch.config import load_settings
from resywatch.sandbox import SandboxHandle, SandboxState
from resywatch.sandbox.venues import Venue
from resywatch.services.vocabulary import local_today


def soon(env: dict[str, str], days: int = 2) -> date:
    """A day `days` ahead in the zone the command environment `env` configures."""
    return local_today(datetime.now(UTC), load_settings(environ=env).timezone) + timedelta(days)


@dataclass(frozen=True)
class Bookable:
    """A released, open day at a venue with free tables for a party of 2 in 18:00-21:00."""

    venue: Venue
    day: date
    times: list[str]  # HH:MM of the open slots in the window


def bookable(
    sandbox: SandboxHandle,
    day: date,
    *,
    payment_required: bool = False,
    popularity: str | None = None,
    skip: int = 0,
) -> Bookable:
    world, now = sandbox.state.world, sandbox.state.clock.now()
    found = 0
    for venue in world.venues:
        if venue.payment_required != payment_required or venue.cannot_take_payment:
            continue
        if popularity is not None and venue.popularity != popularity:
            continue
        if not world.is_open_day(venue, day) or not world.is_released(venue, day, now):
            continue
        snapshot = world.snapshot(venue, day, now)
        times = sorted(
            {
                snapshot.slots[i].time[:5]
                for i in snapshot.open_for(2)
                if 18 * 60 <= snapshot.slots[i].minute <= 21 * 60
            }
        )
        if times:
            if found == skip:
                return Bookable(venue, day, times)
            found += 1
    raise AssertionError(f"no bookable venue on {day}")


def unreleased(
    sandbox: SandboxHandle, *, payment_required: bool = False, skip: int = 0
) -> tuple[Venue, date]:
    """A quiet venue's next day to be released, whose same weekday a week earlier has open
    evening tables for two (the slots its tokens are predicted from)."""
    world, now = sandbox.state.world, sandbox.state.clock.now()
    found = 0
    for venue in world.venues:
        if venue.payment_required != payment_required or venue.cannot_take_payment:
            continue
        if venue.popularity != "warm":
            continue
        day = world.local_today(venue, now) + timedelta(days=venue.lead_time_days + 1)
        if not world.is_open_day(venue, day) or world.is_released(venue, day, now):
            continue
        earlier = world.snapshot(venue, day - timedelta(days=7), now)
        if any(18 * 60 <= earlier.slots[i].minute <= 21 * 60 for i in earlier.open_for(2)):
            if found == skip:
                return venue, day
            found += 1
    raise AssertionError("no venue with a day about to be released")


def book_requests(sandbox: SandboxHandle) -> int:
    return int(sandbox.state.traffic.snapshot()["counters"].get("/3/book", 0))


def held(sandbox: SandboxHandle, venue_id: int) -> list[Any]:
    """The sandbox user's live reservations at the venue."""
    state = sandbox.state
    return [
        r
        for r in state.world.user_reservations(state.user.uid)
        if r.venue_id == venue_id and r.cancelled_at is None
    ]


def fault(sandbox: SandboxHandle, route: str, **rule: Any) -> None:
    response = httpx.post(
        f"{sandbox.base_url}/__sandbox/faults", json={"route": route, **rule}, timeout=5
    )
    response.raise_for_status()


class SandboxTime:
    """The sandbox's time, which may run faster than real time, as a `resywatch.clock.Clock`
    (`now`, `sleep`): what a test's Runtime or JobContext runs snipes on."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.state.clock.now(), UTC)

    async def sleep(self, seconds: float) -> None:
        speed = self.state.clock.speed or 1.0
        await asyncio.sleep(max(0.0, seconds) / speed)
