"""Helpers for tests that drive the sandbox: control routes and a slot to open and close."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from resywatch.config import Settings
from resywatch.sandbox import SandboxConfig, SandboxHandle
from resywatch.services.vocabulary import slot_id


def control(sandbox: SandboxHandle, path: str, body: dict[str, Any]) -> Any:
    response = httpx.post(f"{sandbox.base_url}/__sandbox{path}", json=body, timeout=5)
    response.raise_for_status()
    return response.json()


def advance(sandbox: SandboxHandle, seconds: float) -> None:
    control(sandbox, "/time", {"advance": seconds})


class ClosedSlot:
    """A sold-out slot in the 19:00 bucket's window that a test can open and close."""

    def __init__(
        self,
        sandbox: SandboxHandle,
        day: date,
        settings: Settings,
        skip: frozenset[int] = frozenset(),
    ) -> None:
        world, now = sandbox.state.world, sandbox.state.clock.now()
        south, west, north, east = settings.discovery_bounding_box
        for venue in world.venues:
            if venue.id in skip or not (south <= venue.lat <= north and west <= venue.lng <= east):
                continue
            if not world.is_released(venue, day, now):
                continue
            snapshot = world.snapshot(venue, day, now)
            for index, slot in enumerate(snapshot.slots):
                fits = slot.seating.min_size <= 2 <= slot.seating.max_size
                if fits and snapshot.avail[index] == 0 and 18 * 60 <= slot.minute <= 20 * 60:
                    self.venue, self.slot, self.day, self.sandbox = venue, slot, day, sandbox
                    starts = datetime.combine(day, datetime.min.time()) + timedelta(
                        minutes=slot.minute
                    )
                    self.slot_id = slot_id(venue.id, starts)
                    return
        raise AssertionError(f"no sold-out slot to open on {day}")

    def change(self, delta: int) -> None:
        control(
            self.sandbox,
            "/slots",
            {
                "venue_id": self.venue.id,
                "day": self.day.isoformat(),
                "time": self.slot.time,
                "seating": self.slot.seating.name,
                "delta": delta,
            },
        )


class SoldOutVenue:
    """A released, open venue with no free table for a party of 2 in 18:00-21:00 on `day`,
    and one of its slots there that a test can open."""

    def __init__(self, sandbox: SandboxHandle, day: date, settings: Settings) -> None:
        world, now = sandbox.state.world, sandbox.state.clock.now()
        south, west, north, east = settings.discovery_bounding_box
        for venue in world.venues:
            inside = south <= venue.lat <= north and west <= venue.lng <= east
            if not inside or not world.is_released(venue, day, now):
                continue
            snapshot = world.snapshot(venue, day, now)
            evening = [
                (i, s)
                for i, s in enumerate(snapshot.slots)
                if 18 * 60 <= s.minute <= 21 * 60 and s.seating.min_size <= 2 <= s.seating.max_size
            ]
            if evening and all(snapshot.avail[i] == 0 for i, _ in evening):
                self.venue, self.day, self.sandbox = venue, day, sandbox
                self.slot = evening[len(evening) // 2][1]
                return
        raise AssertionError(f"no sold-out venue on {day}")

    def open_one(self) -> None:
        control(
            self.sandbox,
            "/slots",
            {
                "venue_id": self.venue.id,
                "day": self.day.isoformat(),
                "time": self.slot.time,
                "seating": self.slot.seating.name,
                "delta": 1,
            },
        )


def live_config(**overrides: Any) -> SandboxConfig:
    """A sandbox frozen at the real current time (commands run on the real clock), with no
    background cancellations: what a test opens is all that opens."""
    values: dict[str, Any] = {"seed": 42, "speed": 0.0, "start": datetime.now(UTC)}
    values.update(overrides)
    return SandboxConfig(cancellations=False, **values)


def run_json(cli: Any, *args: str, env: dict[str, str], expect: int = 0) -> Any:
    """A command's --json document."""
    return json.loads(cli(*args, "--json", env=env, expect=expect).stdout)
