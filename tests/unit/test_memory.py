"""The supervisor keeps its resident size flat: malloc's arenas capped, freed memory handed
back after its passes (bench/soak.py found it creeping over a day of passes)."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from resywatch.clock import ScaledClock
from resywatch.config import load_settings
from resywatch.db.engine import Database
from resywatch.resy.client import ResyClient
from resywatch.scheduler.jobs import Job, JobContext
from resywatch.scheduler.memory import Allocator
from resywatch.scheduler.supervisor import Supervisor


class CountingLibrary:
    """malloc's two knobs, counted."""

    def __init__(self) -> None:
        self.mallopt_calls: list[tuple[int, int]] = []
        self.trims = 0

    def mallopt(self, parameter: int, value: int) -> int:
        self.mallopt_calls.append((parameter, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.trims += 1
        return 1


def test_the_supervisor_caps_the_arenas_and_trims_after_its_passes(db: Database) -> None:
    library, now = CountingLibrary(), [0.0]
    allocator = Allocator(library, monotonic=lambda: now[0])  # type: ignore[arg-type]

    async def tick(ctx: JobContext) -> dict[str, int]:
        now[0] += 0.6  # a pass of 0.6 s: trimmed after every other pass at most
        return {}

    async def main() -> None:
        async with ResyClient(base_url="http://127.0.0.1:1", api_key=None) as resy:
            ctx = JobContext(db, resy, load_settings(environ={}), ScaledClock(1000))
            job = Job("tick", tick, lambda settings: timedelta(seconds=1))
            supervisor = Supervisor(
                ctx, [job], "test:1", lambda result: None, max_passes=6, allocator=allocator
            )
            assert await supervisor.run() == 0

    asyncio.run(main())
    assert library.mallopt_calls == [(-8, 2)]  # M_ARENA_MAX, once, before the passes
    assert library.trims == allocator.trims == 3  # 6 passes of 0.6 s, at most once a second


def test_an_allocator_without_knobs_does_nothing() -> None:
    allocator = Allocator(None)
    assert (allocator.limit_arenas(), allocator.release(), allocator.trims) == (False, False, 0)


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_trimming_hands_freed_memory_back_on_this_machine() -> None:
    allocator = Allocator.of_this_process()
    if allocator.library is None:
        pytest.skip("not glibc")
    blocks: list[Any] = [bytearray(4000) for _ in range(25_000)]  # 100 MB, through malloc
    kept = blocks[::8]  # holes everywhere: free() alone cannot shrink the heap
    del blocks
    before = rss_kb()
    assert allocator.release()
    assert rss_kb() < before - 40_000  # most of the 87 MB freed is back with the system
    assert len(kept) == 3125
