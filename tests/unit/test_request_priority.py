"""Where the client's requests queue, they go by priority (issue 16): a bucket scan started
first has its later pages sent before the first pages of scans started after it (so its
drops are applied and delivered without waiting for the whole wave), and a look at a
predicted release goes before any scan."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from typing import Any

import httpx

from resywatch.clock import ManualClock
from resywatch.config import load_settings
from resywatch.db.engine import Database
from resywatch.resy.client import ResyClient
from resywatch.resy.transport import URGENT_PRIORITY, RateLimiter, TakeTurns
from resywatch.runtime import Runtime
from resywatch.services.discovery.scan import run_pass

NOW = datetime(2026, 12, 1, 15, tzinfo=UTC)
PAGES = 3


class FakeTime:
    """A clock that moves by what is slept; a sleep lets the loop run a while, as real
    time would (answers come back, later pages are asked for)."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        for _ in range(50):
            await asyncio.sleep(0)


def test_turns_go_by_priority_then_arrival() -> None:
    async def go() -> list[str]:
        turns, order = TakeTurns(1), []
        await turns.acquire()

        async def wait(name: str, priority: float) -> None:
            async with turns.turn(priority):
                order.append(name)

        waiting = [
            asyncio.create_task(wait(name, priority))
            for name, priority in [("a", 2), ("b", 1), ("c", 2), ("d", URGENT_PRIORITY)]
        ]
        await asyncio.sleep(0)  # all queued
        turns.release()
        await asyncio.gather(*waiting)
        return order

    assert asyncio.run(go()) == ["d", "b", "a", "c"]


def test_a_turn_handed_to_a_cancelled_waiter_passes_on() -> None:
    async def go() -> bool:
        turns = TakeTurns(1)
        await turns.acquire()
        first = asyncio.create_task(turns.acquire(0))
        second = asyncio.create_task(turns.acquire(0))
        await asyncio.sleep(0)
        turns.release()  # handed to `first` ...
        first.cancel()  # ... which is cancelled before it runs
        await asyncio.wait_for(second, 1)
        return first.cancelled()

    assert asyncio.run(go())


def test_the_rate_limiter_serves_the_most_urgent_waiter_next() -> None:
    fake = FakeTime()
    limiter = RateLimiter(rate=1.0, burst=1, clock=fake.clock, sleep=fake.sleep)
    order: list[str] = []

    async def take(name: str, priority: float) -> None:
        await limiter.acquire(priority)
        order.append(name)

    async def go() -> None:
        await limiter.acquire()  # the only token
        await asyncio.gather(
            take("scan-2", 2), take("scan-3", 3), take("scan-1", 1), take("look", URGENT_PRIORITY)
        )

    asyncio.run(go())
    # The first to come waits for the next token; after it, the most urgent goes.
    assert order == ["scan-2", "look", "scan-1", "scan-3"]


def page_answer(request: httpx.Request) -> httpx.Response:
    asked = json.loads(request.content)
    body = {
        "search": {"hits": [{"id": asked["page"], "name": "V", "availability": {"slots": []}}]},
        "meta": {"page": asked["page"], "total_pages": PAGES},
    }
    return httpx.Response(200, json=body)


def test_a_bucket_scan_started_first_gets_its_pages_first(db: Database) -> None:
    """Four buckets scanned at once through a budget of one request a second: each bucket's
    pages are sent close together (within two buckets' worth of requests), not one page of
    every bucket in turn, so the first bucket is done after about 2 x PAGES requests."""
    settings = load_settings(
        environ={"RESYWATCH_DISCOVERY_DAYS": "2", "RESYWATCH_DISCOVERY_PARTY_SIZES": "2"}
    )
    fake = FakeTime()
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked = json.loads(request.content)["slot_filter"]
        sent.append(f"{asked['day']}_{asked['time_filter']}")
        return page_answer(request)

    async def go() -> None:
        resy = ResyClient(
            base_url="https://resy.test", api_key="k", max_rps=1.0, max_in_flight=8,
            transport=httpx.MockTransport(handler), sleep=fake.sleep, clock=fake.clock,
        )  # fmt: skip
        async with resy:
            await run_pass(Runtime(settings, db, resy, ManualClock(NOW)))

    asyncio.run(go())
    buckets = list(dict.fromkeys(sent))  # in the order their scans began
    assert len(buckets) == 4 and len(sent) == 4 * PAGES
    for bucket in buckets:
        positions = [n for n, b in enumerate(sent) if b == bucket]
        assert positions[-1] - positions[0] < 2 * PAGES, (bucket, sent)
    assert max(n for n, b in enumerate(sent) if b == buckets[0]) < 2 * PAGES


def test_views_share_the_queue_and_keep_their_priority() -> None:
    async def go() -> tuple[float, float, Any, Any]:
        async with ResyClient(base_url="https://resy.test", api_key="k") as resy:
            view = resy.ranked(URGENT_PRIORITY)
            return view.priority, resy.priority, view.limiter, resy.limiter

    urgent, default, view_limiter, limiter = asyncio.run(go())
    assert urgent == URGENT_PRIORITY < default
    assert view_limiter is limiter


def test_a_release_look_asks_before_the_scans() -> None:
    """The releases job's finds are ranked urgent: they wait for no queued scan page."""
    from resywatch.resy.models import FindResponse
    from resywatch.services.discovery import releases

    asked: list[float] = []

    class Resy:
        priority = 0.0

        def ranked(self, priority: float) -> Resy:
            view = Resy()
            view.priority = priority
            return view

        async def find(self, venue_id: int, day: date, party_size: int) -> FindResponse:
            asked.append(self.priority)
            return FindResponse.model_validate({"results": {"venues": []}})

    release = releases.Release(7, "V", date(2026, 12, 3), NOW, 1.0)
    rt = Runtime(load_settings(environ={}), None, Resy(), ManualClock(NOW))  # type: ignore[arg-type]
    assert asyncio.run(releases._look(rt, release)) == {}
    assert asked == [URGENT_PRIORITY, URGENT_PRIORITY]  # one find a party size


def test_the_shared_gate_is_asked_one_request_at_a_time_in_priority_order() -> None:
    """The gate (the database budget every process shares) sees this process's requests in
    turn: never two at once racing for it (each retry a database write), and the urgent one
    first among those waiting."""

    class Gate:
        def __init__(self) -> None:
            self.inside = self.most = 0

        async def before_call(self, host: str) -> None:
            self.inside += 1
            self.most = max(self.most, self.inside)
            await asyncio.sleep(0.01)  # a database round trip
            self.inside -= 1

        async def after_call(self, host: str, error: Any) -> None:
            return None

    gate, sent = Gate(), []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.params["venue_id"])
        return httpx.Response(200, json={"results": {"venues": []}})

    async def go() -> None:
        resy = ResyClient(
            base_url="https://resy.test", api_key="k", max_rps=1000.0, gate=gate,
            transport=httpx.MockTransport(handler),
        )  # fmt: skip
        async with resy:
            day = date(2026, 12, 3)
            scans = [resy.ranked(rank).find(rank, day, 2) for rank in (1, 2, 3)]
            look = resy.ranked(URGENT_PRIORITY).find(99, day, 2)
            await asyncio.gather(*scans, look)

    asyncio.run(go())
    assert gate.most == 1
    assert sent == ["1", "99", "2", "3"]  # the first went at once; then the urgent one
