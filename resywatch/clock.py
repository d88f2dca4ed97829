"""Time, as every service reads it: one protocol, so a test or the sandbox's sped-up clock
can stand in for the wall clock anywhere (discovery cycles, snipe ticks, lease expiry)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The time now, aware (UTC)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time (0 or less: only yield)."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when told to, or by what its sleepers wait: tests and
    simulations of hours of cycles in no time."""

    def __init__(self, start: datetime) -> None:
        self.at = start if start.tzinfo else start.replace(tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


class ScaledClock:
    """The wall clock sped up `speed` times from the wall instant `origin` (at which it read
    the wall time): for benchmarks and tests that live a day of cycles in minutes beside a
    sandbox sped up alike (`run-forever --clock-speed`). It is measured on the wall clock
    (not a monotonic one), so two processes given the same origin and speed agree."""

    def __init__(
        self,
        speed: float,
        origin: datetime | None = None,
        *,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if speed <= 0:
            raise ValueError("a clock's speed must be above 0")
        self.speed = speed
        self._wall = wall
        self._origin = wall() if origin is None else origin.timestamp()

    def now(self) -> datetime:
        elapsed = self._wall() - self._origin
        return datetime.fromtimestamp(self._origin + elapsed * self.speed, UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


SYSTEM_CLOCK = SystemClock()
