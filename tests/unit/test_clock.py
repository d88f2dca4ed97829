"""The clock protocol's two implementations every service may be handed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from resywatch.clock import Clock, ManualClock, SystemClock


def test_a_manual_clock_moves_only_by_its_sleepers_and_advance() -> None:
    clock: Clock = ManualClock(datetime(2026, 3, 2, 21, 0))
    start = clock.now()
    assert start.tzinfo is UTC and clock.now() == start
    asyncio.run(clock.sleep(90))
    asyncio.run(clock.sleep(-5))  # a deadline already past: no time goes back
    assert clock.now() - start == timedelta(seconds=90)
    assert isinstance(clock, ManualClock)
    clock.advance(30)
    assert clock.now() - start == timedelta(minutes=2)


def test_the_system_clock_is_aware_and_sleeps_for_real() -> None:
    clock = SystemClock()
    before = clock.now()
    asyncio.run(clock.sleep(0.02))
    assert before.tzinfo is UTC and clock.now() - before >= timedelta(seconds=0.02)
