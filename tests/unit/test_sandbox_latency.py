"""Where a route's work falls in its injected latency: after the whole delay (`first`), or
half-way with the answer still leaving at the full delay (`fleet`). Timed on a virtual clock:
the gateway's sleeps move it, and the route's work is made to take a known time."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from resywatch.sandbox import DEMO_API_KEY, SandboxConfig
from resywatch.sandbox.app import create_app
from resywatch.sandbox.faults import FaultRule
from resywatch.sandbox.state import SandboxState

HEADERS = {"Authorization": f'ResyAPI api_key="{DEMO_API_KEY}"'}


class VirtualTime:
    """The gateway's monotonic clock and sleep: sleeping only moves the clock, and every
    route's work (its handler) adds `work_s`."""

    def __init__(self, work_s: float) -> None:
        self.now, self.work_s = 0.0, work_s
        self.sleeps: list[float] = []
        self.work_started: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds
        await asyncio.sleep(0)  # the real one: let the other tasks run


def _answer_times(model: str, work_s: float) -> VirtualTime:
    clock = VirtualTime(work_s)
    state = SandboxState(SandboxConfig(speed=0))
    state.faults.set("/3/geoip", FaultRule(latency_ms=200, latency_model=model))  # type: ignore[arg-type]
    app = create_app(state=state)
    route = next(r for r in app.routes if getattr(r, "path", "") == "/3/geoip")
    gate = route.endpoint.__self__  # type: ignore[attr-defined]
    gate.sleep, gate.monotonic, handler = clock.sleep, clock.monotonic, gate.handler

    async def working(request: Any, call: Any) -> Any:
        clock.work_started.append(round(clock.now, 6))
        clock.now += clock.work_s
        return await handler(request, call)

    gate.handler = working

    async def ask() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
            assert (await http.get("/3/geoip", headers=HEADERS)).status_code == 200

    asyncio.run(ask())
    return clock


def test_first_makes_the_answer_after_the_whole_delay() -> None:
    clock = _answer_times("first", 0.03)
    assert clock.work_started == [0.2]
    assert clock.sleeps == [0.2]  # the work comes on top: the answer leaves at 0.23 s


def test_fleet_hides_the_work_in_the_way_back() -> None:
    clock = _answer_times("fleet", 0.03)
    assert clock.work_started == [0.1]
    assert clock.sleeps == [0.1, 0.07]  # half the delay, then the rest less the work
    assert clock.now == pytest.approx(0.2)


def test_fleet_work_longer_than_the_way_back_delays_the_answer() -> None:
    clock = _answer_times("fleet", 0.15)
    assert clock.work_started == [0.1]
    assert clock.sleeps == [0.1, 0.0]
    assert clock.now == pytest.approx(0.25)


def test_an_unknown_latency_model_is_refused() -> None:
    with pytest.raises(ValueError, match="latency_model"):
        FaultRule(latency_ms=50, latency_model="sometimes")  # type: ignore[arg-type]
