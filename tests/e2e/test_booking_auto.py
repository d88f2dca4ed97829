"""Auto-book for watches and notify requests against the sandbox: a hit books, the outcome is
a notification, and two workers on the same watch and slot send one book request at most."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from booking_support import book_requests, bookable, fault, held
from sandbox_tools import SoldOutVenue, live_config
from sqlmodel import Session, select

from resywatch.config import Settings, load_settings
from resywatch.db.engine import Database
from resywatch.db.models import BookingAttempt
from resywatch.resy.client import client_from_settings
from resywatch.runtime import Runtime
from resywatch.sandbox import DEMO_AUTH_TOKEN, SandboxConfig, SandboxHandle
from resywatch.services.availability import open_slots
from resywatch.services.booking.book import auto_book
from resywatch.services.booking.outcomes import BookingResult
from resywatch.services.vocabulary import Want, local_today
from resywatch.services.watches import WatchSpec, add_watch, get_watch


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return live_config()


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env | {
        "RESYWATCH_RESY_AUTH_TOKEN": DEMO_AUTH_TOKEN,
        # Auto-book takes its fee ceilings from the settings; some venues take a deposit.
        "RESYWATCH_BOOK_MAX_TOTAL": "500",
        "RESYWATCH_BOOK_MAX_CANCEL_FEE": "500",
    }


def run_json(cli: Any, *args: str, env: dict[str, str], expect: int = 0) -> Any:
    return json.loads(cli(*args, "--json", env=env, expect=expect).stdout)


def tomorrow(env: dict[str, str]) -> date:
    return local_today(datetime.now(UTC), load_settings(environ=env).timezone) + timedelta(1)


def test_an_auto_book_watch_books_its_hit_then_ends(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    day = tomorrow(env)
    target = SoldOutVenue(sandbox, day, load_settings(environ=env))
    watch = run_json(
        cli, "watch", "add", "venues", "--venue", str(target.venue.id), "--date", str(day),
        "--party", "2", "--window", "18:00-21:00", "--auto-book", env=env,
    )  # fmt: skip
    assert watch["auto_book"] is True
    assert run_json(cli, "watch", "check", str(watch["id"]), env=env)["checked"][0]["booking"] is (
        None
    )
    target.open_one()
    checked = run_json(cli, "watch", "check", str(watch["id"]), env=env)["checked"][0]
    assert checked["booking"]["outcome"] == "booked"
    assert checked["booking"]["starts_at"][11:16] == target.slot.time[:5]
    assert book_requests(sandbox) == 1 and len(held(sandbox, target.venue.id)) == 1
    assert run_json(cli, "watch", "show", str(watch["id"]), env=env)["status"] == "ended"
    notes = run_json(cli, "notify", "list", env=env)["notifications"]
    assert sorted(n["kind"] for n in notes) == ["booking", "watch_hit"]
    booked = next(n for n in notes if n["kind"] == "booking")
    assert booked["title"].startswith(f"Booked: {target.venue.name}")
    attempts = run_json(cli, "book", "attempts", env=env)["attempts"]
    assert [(a["source"], a["source_id"], a["outcome"]) for a in attempts] == [
        ("watch", watch["id"], "booked")
    ]


def test_only_venue_watches_can_auto_book(cli: Any, env: dict[str, str]) -> None:
    cli("watch", "add", "new-venues", "--date", str(tomorrow(env)), "--party", "2",
        "--auto-book", env=env, expect=2)  # fmt: skip


def test_an_auto_book_notify_request_stays_pending_until_it_books(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    day = tomorrow(env)
    target = SoldOutVenue(sandbox, day, load_settings(environ=env))
    request = run_json(
        cli, "notify", "add", "--venue", str(target.venue.id), "--date", str(day), "--party",
        "2", "--window", "18:00-21:00", "--auto-book", env=env,
    )  # fmt: skip
    assert request["auto_book"] is True
    target.open_one()
    fault(sandbox, "/3/book", fail_next=1, fail_status=404)  # taken under our nose
    first = run_json(cli, "notify", "check", env=env)["checked"][0]
    assert first["status"] == "pending" and first["booking"]["outcome"] == "slot_gone"
    # The slot it tried is never tried again for this request: nothing is sent.
    again = run_json(cli, "notify", "check", env=env)["checked"][0]
    assert again["status"] == "pending" and again["booking"] is None
    assert book_requests(sandbox) == 1
    # A second table at another time opens: that one is booked and the request ends.
    other = SoldOutVenue.__new__(SoldOutVenue)
    other.venue, other.day, other.sandbox = target.venue, day, sandbox
    snapshot = sandbox.state.world.snapshot(target.venue, day, sandbox.state.clock.now())
    other.slot = next(
        s for s in snapshot.slots
        if 18 * 60 <= s.minute <= 21 * 60 and s.time != target.slot.time
        and s.seating.min_size <= 2 <= s.seating.max_size
    )  # fmt: skip
    other.open_one()
    done = run_json(cli, "notify", "check", env=env)["checked"][0]
    assert done["status"] == "satisfied" and done["booking"]["outcome"] == "booked"
    assert book_requests(sandbox) == 2 and len(held(sandbox, target.venue.id)) == 1
    kinds = [n["kind"] for n in run_json(cli, "notify", "list", env=env)["notifications"]]
    assert sorted(kinds) == ["booking", "booking", "notify_hit"]


def test_two_workers_auto_booking_one_watch_send_one_book_request(
    env: dict[str, str], sandbox: SandboxHandle, database_url: str
) -> None:
    settings = load_settings(environ=env)
    target = bookable(sandbox, tomorrow(env))
    want = Want(target.day, target.day, 2, time(18), time(21))

    async def setup() -> tuple[int, list[Any]]:
        db = Database(database_url)
        try:
            async with client_from_settings(settings) as resy:
                spec = WatchSpec("venues", want, venues=(str(target.venue.id),), auto_book=True)
                watch = await add_watch(Runtime(settings, db, resy), spec)
                found = await open_slots(resy, target.venue.id, want, target.day)
                return watch.id, found[:1]  # the same one slot for both workers
        finally:
            db.dispose()

    watch_id, slots = asyncio.run(setup())
    # Slow answers widen the window in which both workers are between check and claim.
    fault(sandbox, "*", latency_ms=40)
    sandbox.state.reset()
    start = threading.Barrier(2)
    results: list[BookingResult | None] = []

    def worker() -> None:
        results.append(
            asyncio.run(_auto_book(settings, database_url, watch_id, want, slots, start))
        )

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert book_requests(sandbox) == 1
    outcomes = sorted(r.outcome.value if r else "nothing left" for r in results)
    assert outcomes[0] == "booked" and outcomes[1] in ("claimed", "nothing left")
    assert len(held(sandbox, target.venue.id)) == 1


async def _auto_book(
    settings: Settings,
    url: str,
    watch_id: int,
    want: Want,
    slots: list[Any],
    start: threading.Barrier,
) -> BookingResult | None:
    db = Database(url)
    try:
        async with client_from_settings(settings) as resy:
            start.wait(timeout=10)
            return await auto_book(
                Runtime(settings, db, resy), source="watch", source_id=watch_id, want=want,
                slots=slots,
            )  # fmt: skip
    finally:
        db.dispose()


def test_booking_leaves_the_watch_to_its_caller(
    env: dict[str, str], sandbox: SandboxHandle, database_url: str
) -> None:
    """Auto-book writes only booking rows: what a booked watch does next is the `on_booked`
    its caller passes, run in the transaction that records the booking."""
    settings = load_settings(environ=env)
    target = bookable(sandbox, tomorrow(env))
    want = Want(target.day, target.day, 2, time(18), time(21))
    seen_in_callback: list[str] = []

    async def go() -> tuple[BookingResult | None, str]:
        db = Database(database_url)
        try:
            async with client_from_settings(settings) as resy:
                rt = Runtime(settings, db, resy)
                spec = WatchSpec("venues", want, venues=(str(target.venue.id),), auto_book=True)
                watch = await add_watch(rt, spec)
                slots = await open_slots(resy, target.venue.id, want, target.day)

                def on_booked(session: Session) -> None:
                    attempt = session.exec(select(BookingAttempt)).one()
                    seen_in_callback.append(attempt.outcome)

                result = await auto_book(
                    rt, source="watch", source_id=watch.id, want=want, slots=slots,
                    on_booked=on_booked,
                )  # fmt: skip
                return result, get_watch(db, watch.id).status
        finally:
            db.dispose()

    result, status = asyncio.run(go())
    assert result is not None and result.outcome.value == "booked", result
    assert status == "active"  # the watch is its caller's to end, not booking's
    assert seen_in_callback == ["booked"]  # in the booking's own transaction


def test_checks_hand_auto_book_their_own_runtime(
    env: dict[str, str], sandbox: SandboxHandle, database_url: str, monkeypatch: Any
) -> None:
    """A watch's and a request's hit books with the Runtime the check was handed (its clock,
    worker and stop: the scheduler's), not one the service builds for itself."""
    from resywatch.clock import ManualClock
    from resywatch.services import booking
    from resywatch.services.notify_requests import add_request, check_requests
    from resywatch.services.watches import check_watches

    settings = load_settings(environ=env)
    day = tomorrow(env)
    target = SoldOutVenue(sandbox, day, settings)
    want = Want(day, day, 2, time(18), time(21))
    handed: list[tuple[str, Runtime]] = []

    async def recording_auto_book(rt: Runtime, *, source: str, **_: Any) -> None:
        handed.append((source, rt))

    monkeypatch.setattr(booking.book, "auto_book", recording_auto_book)

    async def go() -> Runtime:
        db = Database(database_url)
        try:
            async with client_from_settings(settings) as resy:
                rt = Runtime(settings, db, resy, ManualClock(datetime.now(UTC)))
                spec = WatchSpec("venues", want, venues=(str(target.venue.id),), auto_book=True)
                watch = await add_watch(rt, spec)
                await add_request(rt, str(target.venue.id), want, auto_book=True)
                target.open_one()
                await check_watches(rt, ids=[watch.id])
                await check_requests(rt)
                return rt
        finally:
            db.dispose()

    rt = asyncio.run(go())
    assert [source for source, _ in handed] == ["watch", "notify"]
    assert all(given is rt for _, given in handed)
