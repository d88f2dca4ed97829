"""`run-forever --clock-speed`: a day of passes in minutes (bench/soak.py), and only against
a Resy on this machine."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from sqlmodel import select

from resywatch.clock import ScaledClock
from resywatch.db.engine import Database
from resywatch.db.models import JobHeartbeat, JobRun

ORIGIN = datetime(2026, 12, 1, 12, tzinfo=UTC)


def test_a_scaled_clock_runs_speed_times_the_wall_clock_from_its_origin() -> None:
    wall = [ORIGIN.timestamp()]
    clock = ScaledClock(60, ORIGIN, wall=lambda: wall[0])
    assert clock.now() == ORIGIN  # at its origin it reads the wall time
    wall[0] += 10
    assert clock.now() == ORIGIN + timedelta(minutes=10)
    # Made later, with the same origin: the same time (a sandbox sped up alike agrees).
    assert ScaledClock(60, ORIGIN, wall=lambda: wall[0]).now() == clock.now()
    with pytest.raises(ValueError):
        ScaledClock(0)


def test_a_scaled_clock_sleeps_its_seconds_in_a_fraction_of_the_time() -> None:
    clock = ScaledClock(1000)
    started, before = time.monotonic(), clock.now()
    asyncio.run(clock.sleep(50))  # 50 ms of real time
    assert time.monotonic() - started < 2.0
    assert clock.now() - before >= timedelta(seconds=50)


def environment(database_url: str, resy: str = "http://127.0.0.1:9") -> dict[str, str]:
    return {"RESYWATCH_DATABASE_URL": database_url, "RESYWATCH_RESY_BASE_URL": resy}


def test_run_forever_on_a_fast_clock_lives_its_intervals_in_a_fraction_of_the_time(
    database_url: str, cli: Any
) -> None:
    """Four snipes passes (nothing due: no Resy call) an interval (5 s) of the clock apart,
    in well under the 15 s they span: the supervisor waits on its clock, not on the wall
    clock (where each wait would last 5 real seconds: 100 s of this clock)."""
    started = time.monotonic()
    result = cli(
        "run-forever", "--job", "snipes", "--max-passes", "4", "--json-logs",
        "--clock-speed", "20", env=environment(database_url),
    )  # fmt: skip
    elapsed = time.monotonic() - started
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert [line["status"] for line in lines] == ["ok"] * 4
    assert elapsed < 10  # 15 s of the clock: 0.75 s of real time
    db = Database(database_url)
    try:
        with db.read() as session:
            runs = sorted(row.started_at for row in session.exec(select(JobRun)))
    finally:
        db.dispose()
    # Started an interval apart on the clock, plus its jitter (10 %) and slack for a loaded
    # machine: not 100 s of it.
    gaps = [(b - a).total_seconds() for a, b in pairwise(runs)]
    assert len(runs) == 4 and all(4.99 <= gap <= 30 for gap in gaps), gaps


@pytest.mark.parametrize(
    ("options", "resy", "message"),
    [
        (["--clock-speed", "100"], "https://api.resy.com", "only against a Resy on this machine"),
        (["--clock-speed", "0"], "http://127.0.0.1:9", "must be above 0"),
        (["--clock-speed", "100", "--clock-origin", "noon"], "http://localhost:9", "ISO-8601"),
        (["--clock-origin", "2026-12-01T12:00:00Z"], "http://127.0.0.1:9", "goes with"),
    ],
)
def test_a_fast_clock_that_cannot_be_is_refused_and_nothing_runs(
    database_url: str, cli: Any, options: list[str], resy: str, message: str
) -> None:
    result = cli("run-forever", *options, expect=2, env=environment(database_url, resy))
    assert message in result.stderr
    db = Database(database_url)
    try:
        with db.read() as session:
            assert session.exec(select(JobHeartbeat)).all() == []
            assert session.exec(select(JobRun)).all() == []
    finally:
        db.dispose()
