"""The snipe lane (services/booking/lane.py) on SQLite and PostgreSQL, with a virtual clock:
reservations shared by overlapping windows, every other caller yielding while one is open,
no database round trip on a snipe's requests, the grid of finds and the pacing warning."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest

from resywatch.config import load_settings
from resywatch.db.engine import Database
from resywatch.db.plain import host_states
from resywatch.resy import errors
from resywatch.resy.client import ResyClient
from resywatch.runtime import Runtime
from resywatch.services.booking import sniper as sniping
from resywatch.services.booking.lane import (
    MIN_RPS,
    Grant,
    SnipeLane,
    pacing_warning,
    window_for,
)
from resywatch.services.politeness import SharedPoliteness
from tests.unit.test_politeness import HOST, SECRET, VirtualTime, policy


@pytest.fixture
def time_() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
def lane_for(database_url: str, time_: VirtualTime) -> Iterator[Callable[..., SnipeLane]]:
    """`lane_for(rate)`: one more process's lane over the same database, its client answering
    every request with `answer` (200 by default)."""
    opened: list[Database] = []

    def make(rate: float = 30.0, answer: int = 200) -> SnipeLane:
        db = Database(database_url)
        opened.append(db)
        settings = load_settings(environ={"RESYWATCH_RESY_SNIPE_MAX_RPS": str(rate)})
        resy = ResyClient(
            base_url=f"https://{HOST}",
            api_key=SECRET,
            auth_token="eyJ0ZXN0LXRva2VuLWFiY2RlZg",
            transport=httpx.MockTransport(lambda r: httpx.Response(answer, json={})),
            sleep=time_.sleep,
            clock=time_.monotonic,
            max_rps=1.0,  # the shared budget: slow, and never what a lane request waits on
            gate=SharedPoliteness(db, policy(rate=1.0, burst=1), clock=time_),
        )
        return SnipeLane(Runtime(settings, db, resy, time_))

    yield make
    for db in opened:
        db.dispose()


def window(time_: VirtualTime, start_s: float, length_s: float = 16.0) -> tuple[datetime, datetime]:
    opens = time_.now() + timedelta(seconds=start_s)
    return opens, opens + timedelta(seconds=length_s)


def test_overlapping_windows_share_the_lane_and_the_late_comers_are_slowed(
    lane_for: Callable[..., SnipeLane], time_: VirtualTime
) -> None:
    first, other_worker = lane_for(30.0), lane_for(30.0)
    at_nine = window(time_, 60)
    assert first.reserve(1, *at_nine, 11.0) == Grant(11.0, 11.0)
    assert other_worker.reserve(2, *at_nine, 11.0) == Grant(11.0, 11.0)
    third = first.reserve(3, *window(time_, 65), 11.0)  # overlaps both
    assert third.rps == pytest.approx(8.0) and third.stretch == pytest.approx(11 / 8)
    assert other_worker.reserve(4, *at_nine, 11.0) == Grant(11.0, MIN_RPS)  # the lane is full
    assert first.reserve(5, *window(time_, 3600), 11.0) == Grant(11.0, 11.0)  # an hour later
    first.settle(1)
    left = 30.0 - 11.0 - 8.0 - MIN_RPS  # snipes 2, 3 and 4 still hold theirs
    assert other_worker.reserve(6, *at_nine, 11.0).rps == pytest.approx(left)
    # Reserving again (a snipe taken over after a crash) replaces its own reservation.
    assert first.reserve(6, *at_nine, 11.0).rps == pytest.approx(left)


def test_a_window_that_closed_no_longer_counts(
    lane_for: Callable[..., SnipeLane], time_: VirtualTime
) -> None:
    lane = lane_for(12.0)
    lane.reserve(1, *window(time_, 0, 10), 11.0)  # its runner died: never settled
    time_.advance(11)
    assert lane.reserve(2, *window(time_, 0), 11.0) == Grant(11.0, 11.0)


def test_every_other_caller_waits_while_a_window_is_open(
    lane_for: Callable[..., SnipeLane], time_: VirtualTime
) -> None:
    lane = lane_for()
    background = lane.rt.resy.gate
    assert isinstance(background, SharedPoliteness)
    opens, closes = window(time_, 30, 16)
    lane.reserve(1, opens, closes, 11.0)
    asyncio.run(background.before_call(HOST))
    assert time_.slept == []  # before the window: nothing changes
    time_.advance(31)
    asyncio.run(background.before_call(HOST))
    assert time_.now() >= closes  # waited the window out
    assert sum(time_.slept) == pytest.approx((closes - opens).total_seconds() - 1, abs=1.01)

    time_.slept.clear()
    opens, closes = window(time_, 0, 16)
    lane.reserve(2, opens, closes, 11.0)
    time_.advance(2)
    lane.settle(2)  # the snipe booked: the others go on at once
    asyncio.run(background.before_call(HOST))
    assert sum(time_.slept) <= 1.0


def test_a_snipes_requests_make_no_database_round_trip_but_failures_reach_the_breaker(
    lane_for: Callable[..., SnipeLane], time_: VirtualTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    lane = lane_for(30.0)
    used: list[str] = []
    for name in ("read", "write"):
        real = getattr(lane.rt.db, name)
        monkeypatch.setattr(
            lane.rt.db, name, lambda real=real, name=name: used.append(name) or real()
        )
    client = lane.client(lane.rt.resy)
    for _ in range(12):
        asyncio.run(client.user())
    assert used == []  # not one transaction for 12 requests
    assert len(client.calls) == 12
    assert host_states(lane.rt.db) == []  # the shared budget never saw them

    failing = lane_for(30.0, answer=503)
    with pytest.raises(errors.ResyError):
        asyncio.run(failing.client(failing.rt.resy).user())
    [state] = host_states(failing.rt.db)
    assert state.consecutive_failures >= 1  # the breaker heard of it


def test_the_lane_limiter_paces_every_snipe_of_the_process_together(
    lane_for: Callable[..., SnipeLane], time_: VirtualTime
) -> None:
    lane = lane_for(5.0)
    one, two = lane.client(lane.rt.resy), lane.client(lane.rt.resy)

    async def both() -> None:
        await asyncio.gather(*(c.user() for c in (one, two) for _ in range(6)))

    started = time_.monotonic()
    asyncio.run(both())
    burst = 1  # int(5 / 5)
    assert time_.monotonic() - started >= (12 - burst) / 5.0 - 1e-6
    assert one.budget_wait_s > 0 and two.budget_wait_s > 0  # each view counts its own waits
    assert lane.rt.resy.budget_wait_s == 0  # the runtime's client is untouched


def sniper_at(phase: float, stretch: float = 1.0, interval: float = 0.2) -> sniping.Sniper:
    release = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    row = SimpleNamespace(
        id=1, release_at=release, lead_s=0.1, poll_interval_s=interval, deadline_s=60.0,
        late_s=120.0, request_budget=900,
    )  # fmt: skip
    rt = Runtime(load_settings(environ={}), None, None)  # type: ignore[arg-type]
    lane = SimpleNamespace(client=lambda resy: None, rate=50.0)
    plan = SimpleNamespace(payment_method_id=None)
    sniper = sniping.Sniper(rt, row, plan, lane, phase)  # type: ignore[arg-type]
    sniper.grant = Grant(10.0, 10.0 / stretch)
    return sniper


def grid(sniper: sniping.Sniper, from_s: float, count: int) -> list[float]:
    at = sniper.release + timedelta(seconds=from_s)
    out = []
    for _ in range(count):
        at = sniper._next_look(at)
        out.append(round((at - sniper.release).total_seconds(), 3))
    return out


def test_a_longer_lead_makes_the_dense_part_longer() -> None:
    sniper = sniper_at(0.0)
    sniper.lead = timedelta(seconds=1.5)
    looks = grid(sniper, -4.0, 80)
    assert looks[0] == -1.5  # the early look is not needed: the dense part starts first
    dense = [x for x in looks if x < 1.5]
    assert len(dense) == 45 and dense[-1] == round(1.5 - 0.2 / sniping.FIND_FANOUT, 3)
    assert looks[len(dense)] == 1.5 and looks[len(dense) + 1] == 1.7  # then one an interval


def test_the_grid_is_densest_around_the_instant() -> None:
    fanout, dense_ticks = sniping.FIND_FANOUT, sniping.DENSE_TICKS
    looks = grid(sniper_at(0.0), -10.0, 20)
    early = sniping.EARLY_LOOK_S
    assert looks[:2] == [round(-10.0 + early, 3), round(-10.0 + 2 * early, 3)]  # early looks
    start = -0.1  # the lead
    assert start in looks and start - early < max(x for x in looks if x < start)  # snapped
    dense = [x for x in looks if start <= x < dense_ticks * 0.2]
    assert dense == [round(start + k * 0.2 / fanout, 3) for k in range(len(dense))]
    assert len(dense) == math.ceil((dense_ticks * 0.2 - start) / (0.2 / fanout) - 1e-9)
    after = [x for x in looks if x >= dense_ticks * 0.2]
    assert [round(b - a, 3) for a, b in itertools.pairwise(after)] == [0.2] * (len(after) - 1)


def test_snipes_sharing_an_instant_stagger_and_a_slowed_one_stretches() -> None:
    assert grid(sniper_at(0.0), -0.5, 4) == [-0.1, -0.033, 0.033, 0.1]
    half = grid(sniper_at(0.5), -0.5, 4)
    assert half == [-0.067, 0.0, 0.067, 0.133]  # between phase 0's looks
    slowed = grid(sniper_at(0.0, stretch=2.0), -0.5, 3)
    assert slowed == [-0.1, 0.033, 0.167]  # half the rate the lane could not give


def test_a_snipe_that_could_not_keep_its_interval_says_why() -> None:
    kept = {"interval_ms": 200.0, "effective_interval_ms": 205.0, "budget_wait_ms": 3.0}
    assert pacing_warning(7, kept, Grant(11.0, 11.0), 50.0) is None
    slowed = pacing_warning(7, kept | {"effective_interval_ms": 400.0}, Grant(11.0, 5.5), 50.0)
    assert slowed is not None
    assert "snipe 7 could not keep its 200 ms interval" in slowed
    assert "granted it 5.5/s of the 11/s" in slowed and "resy.snipe_max_rps" in slowed
    waited = pacing_warning(7, kept | {"budget_wait_ms": 900.0}, Grant(11.0, 11.0), 50.0)
    assert waited is not None and "waited 900 ms for the budget" in waited
    busy = pacing_warning(7, kept | {"effective_interval_ms": 450.0}, Grant(11.0, 11.0), 50.0)
    assert busy is not None and "too busy" in busy


def test_the_window_reaches_from_the_lead_to_past_the_instant() -> None:
    release = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    opens, closes = window_for(release, timedelta(seconds=3))
    assert opens == release - timedelta(seconds=3) and closes > release


def test_the_lane_setting_is_read() -> None:
    settings = load_settings(environ={"RESYWATCH_RESY_SNIPE_MAX_RPS": "12.5"})
    assert settings.resy_snipe_max_rps == 12.5
    assert load_settings(environ={}).resy_snipe_max_rps == 70.0


def test_snipes_taken_together_get_even_phases_per_instant() -> None:
    from resywatch.services.booking.runs import _phases

    nine, ten = datetime(2026, 12, 1, 9, tzinfo=UTC), datetime(2026, 12, 1, 10, tzinfo=UTC)
    rows = [SimpleNamespace(release_at=at) for at in (nine, ten, nine, nine, nine)]
    assert _phases(rows) == [0.0, 0.0, 0.25, 0.5, 0.75]  # type: ignore[arg-type]
