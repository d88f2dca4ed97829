"""Booking against the shapes real Resy answers with (REAL_RESY_FINDINGS.md), through the CLI
and the shared politeness gate, on both database backends."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from booking_support import book_requests, fault, soon
from sandbox_tools import live_config
from sqlmodel import Session, select

from resywatch.db.engine import Database
from resywatch.db.models import ResyHost
from resywatch.resy import errors
from resywatch.resy.client import ResyClient
from resywatch.resy.transport import RetryPolicy
from resywatch.sandbox import DEMO_API_KEY, SandboxConfig, SandboxHandle
from resywatch.sandbox.venues import Venue
from resywatch.services.politeness import PolitenessPolicy, SharedPoliteness


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return live_config()


def open_venue(sandbox: SandboxHandle, day: date, **wanted: Any) -> Venue:
    """A released venue with an evening table for two on `day` and the attributes asked."""
    world, now = sandbox.state.world, sandbox.state.clock.now()
    for venue in world.venues:
        if any(getattr(venue, name) != value for name, value in wanted.items()):
            continue
        if not world.is_open_day(venue, day) or not world.is_released(venue, day, now):
            continue
        snapshot = world.snapshot(venue, day, now)
        if any(18 * 60 <= snapshot.slots[i].minute <= 21 * 60 for i in snapshot.open_for(2)):
            return venue
    raise AssertionError(f"no venue with {wanted} open on {day}")


def book(cli: Any, env: dict[str, str], venue: Venue, day: date, *, expect: int) -> Any:
    result = cli(
        "book", "now", "--venue", str(venue.id), "--date", str(day), "--party", "2",
        "--window", "18:00-21:00", "--json", env=env, expect=expect,
    )  # fmt: skip
    return json.loads(result.stdout)


def breaker_failures(database_url: str) -> int:
    db = Database(database_url)
    try:
        with Session(db.engine) as session:
            rows = session.exec(select(ResyHost)).all()
            return max((row.consecutive_failures for row in rows), default=0)
    finally:
        db.dispose()


# -- finding 3: Resy's own JSON 403 is not the firewall, whatever its headers ----------------


def test_a_venue_that_cannot_take_payment_stops_at_once_and_trips_nothing(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle, database_url: str
) -> None:
    day = soon(env)
    venue = open_venue(sandbox, day, cannot_take_payment=True)
    error = book(cli, env, venue, day, expect=14)["error"]
    assert error["code"] == "payment_not_accepted"
    assert "cannot take payment methods" in error["message"]
    assert "firewall" not in error["message"]
    assert book_requests(sandbox) == 1
    assert breaker_failures(database_url) == 0  # Resy answered: it is not down


def test_resys_own_502_is_not_retried_nor_counted_but_the_firewalls_is(
    sandbox: SandboxHandle, database_url: str
) -> None:
    db = Database(database_url)
    policy = PolitenessPolicy(
        rate=50.0, burst=5, retry_after_cap_s=8.0, breaker_failures=5,
        breaker_cooldown_s=30.0, probe_s=15.0,
    )  # fmt: skip
    venue = sandbox.state.world.venues[0]

    async def ask() -> list[int | None]:
        async with ResyClient(
            base_url=sandbox.base_url,
            api_key=DEMO_API_KEY,
            max_rps=1000.0,
            retry=RetryPolicy(max_retries=2, base_s=0.01),
            gate=SharedPoliteness(db, policy),
        ) as resy:
            with pytest.raises(errors.BadRequest, match="could not use the request"):
                await resy.venue_config(venue.id)
            fault(sandbox, "/2/config", fail_next=3, fail_status=502)  # the firewall's page
            with pytest.raises(errors.ServerError, match="firewall challenge"):
                await resy.venue_config(venue.id)
            return [call.status for call in resy.calls]

    fault(sandbox, "/2/config", fail_next=3, fail_status=502, answer="resy")
    try:
        statuses = asyncio.run(ask())
        # One request for Resy's 502; three (retried) for the firewall's, each counted.
        assert statuses == [502, 502, 502, 502]
        with Session(db.engine) as session:
            assert session.exec(select(ResyHost)).one().consecutive_failures == 3
    finally:
        db.dispose()


def test_every_resy_answer_carries_the_cdn_header(
    sandbox: SandboxHandle, resy_headers: Any
) -> None:
    """S2: the header is on ordinary answers too, so the client cannot lean on it."""
    venue = sandbox.state.world.venues[0]
    with httpx.Client(base_url=sandbox.base_url, headers=resy_headers(), timeout=5) as http:
        for answer in (
            http.get("/2/config", params={"venue_id": venue.id}),
            http.get("/2/user"),
            http.post("/3/book", data={"book_token": "nonsense"}),
            http.get("/3/venue", params={"id": 1}),
        ):
            assert answer.headers["x-cdn"] == "Imperva", answer.request.url
            assert "json" in answer.headers["content-type"]


# -- finding 4 / S8: a 412 that names the user's reservation -----------------------------------


@pytest.mark.parametrize("success_as_412", [False, True])
def test_a_booking_answered_412_with_specs_is_confirmed_as_booked(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle, success_as_412: bool
) -> None:
    """AbhiSivaprasad's client: "the server returns 412 but the request is successful", with
    the reservation under `specs`. Whether Resy does so for a fresh booking is unseen: the
    sandbox does it behind a switch, and either way the outcome is booked (exit 0)."""
    sandbox.state.configure_variants(book_success_as_412=success_as_412)
    day = soon(env)
    venue = open_venue(sandbox, day, payment_required=False, cannot_take_payment=False)
    booked = book(cli, env, venue, day, expect=0)
    assert booked["outcome"] == "booked" and booked["reservation_id"]
    assert booked["resy_status"] == (412 if success_as_412 else 201)
    assert ("you hold it" in booked["message"]) is success_as_412
    held = [
        r.reservation_id
        for r in sandbox.state.world.user_reservations(sandbox.state.user.uid)
        if r.venue_id == venue.id and r.cancelled_at is None
    ]
    assert held == [booked["reservation_id"]] and book_requests(sandbox) == 1


# -- finding 6 / 11, S10: one try per bookable slot, at the venue asked for only ------------


@pytest.mark.parametrize(
    ("per_table", "other_venue"), [(True, True), (True, False), (False, False)]
)
def test_book_now_tries_each_distinct_slot_of_the_asked_venue_once(
    cli: Any,
    env: dict[str, str],
    sandbox: SandboxHandle,
    per_table: bool,
    other_venue: bool,
) -> None:
    """Resy lists a slot once per free table (one token) and may list other venues in a
    find: the three tries of `book now` go to three different slots of the venue asked."""
    sandbox.state.configure_variants(find_per_table=per_table, find_other_venue=other_venue)
    day = soon(env)
    world, now = sandbox.state.world, sandbox.state.clock.now()

    def tables_in_window(candidate: Venue) -> int:
        snap = world.snapshot(candidate, day, now)
        return sum(
            1
            for i in snap.open_for(2)
            if 18 * 60 <= snap.slots[i].minute <= 21 * 60 and snap.avail[i] >= 2
        )

    venue = next(
        v
        for v in world.venues
        if not (v.payment_required or v.cannot_take_payment)
        and world.is_open_day(v, day)
        and world.is_released(v, day, now)
        and tables_in_window(v) >= 3
    )
    fault(sandbox, "/3/book", fail_next=10, fail_status=404)  # every try: taken
    error = book(cli, env, venue, day, expect=11)["error"]
    assert error["code"] == "slot_gone"
    tried = [r["params"]["config_id"] for r in sandbox.state.traffic.requests("/3/details")]
    assert len(tried) == 3 and len(set(tried)) == 3, tried
    assert all(token.startswith(f"rgs://resy/{venue.id}/") for token in tried)


# -- finding 2 / S9: venues that ask for a captcha -------------------------------------------


def _counters(sandbox: SandboxHandle) -> dict[str, int]:
    counters: dict[str, int] = sandbox.state.traffic.snapshot()["counters"]
    return counters


@pytest.mark.parametrize("flag_shown", [True, False])
def test_a_captcha_venue_stops_book_now_and_snipe_at_once(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle, flag_shown: bool
) -> None:
    """Known from the find's `feature_recaptcha`, nothing but the find is asked; known only
    from details without a book token (the flag not shown), no book request is sent."""
    day = soon(env)
    venue = open_venue(sandbox, day, payment_required=False, cannot_take_payment=False)
    sandbox.state.configure_variants(captcha_venue_ids=[venue.id], captcha_flag_shown=flag_shown)
    error = book(cli, env, venue, day, expect=19)["error"]
    assert error["code"] == "captcha" and error["exit_code"] == 19
    assert "book it in the Resy app" in error["message"]
    counters = _counters(sandbox)
    assert counters.get("/3/details", 0) == (0 if flag_shown else 1)
    assert "/3/book" not in counters

    started = _counters(sandbox).get("/4/find", 0)
    result = cli(
        "book", "snipe", "--venue", str(venue.id), "--date", str(day), "--party", "2",
        "--window", "18:00-21:00", "--at", datetime.now(UTC).isoformat(), "--json",
        env=env, expect=19,
    )  # fmt: skip
    assert json.loads(result.stdout)["error"]["code"] == "captcha"
    # It stopped at once: a few finds (the target and reference days), no polling on.
    assert _counters(sandbox).get("/4/find", 0) - started <= 5
    assert "/3/book" not in _counters(sandbox)


# -- finding 12: slots ordinary accounts cannot book ------------------------------------------


def test_restricted_slots_are_never_booking_candidates(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    sandbox.state.configure_variants(restricted_slots=True)
    day = soon(env)
    world, now = sandbox.state.world, sandbox.state.clock.now()

    def best_is_restricted(candidate: Venue) -> bool:
        if candidate.payment_required or candidate.cannot_take_payment:
            return False
        if not (world.is_open_day(candidate, day) and world.is_released(candidate, day, now)):
            return False
        snap = world.snapshot(candidate, day, now)
        window = [i for i in snap.open_for(2) if 18 * 60 <= snap.slots[i].minute <= 21 * 60]
        best = min(window, key=lambda i: abs(snap.slots[i].minute - 19 * 60 - 30), default=None)
        return best is not None and best % 5 in (2, 4)

    # The slot ranked first (closest to 19:30) is one this account may not book.
    venue = next(v for v in world.venues if best_is_restricted(v))
    fault(sandbox, "/3/book", fail_next=10, fail_status=404)  # every try: taken, try the next
    book(cli, env, venue, day, expect=11)
    tried = [r["params"]["config_id"] for r in sandbox.state.traffic.requests("/3/details")]
    assert tried
    for token in tried:
        time, seating = token.split("/")[-3], token.split("/")[-1]
        index = world.slot_index(venue, time, seating)
        assert index is not None and index % 5 not in (2, 4), token


def test_auto_book_at_a_captcha_venue_falls_back_to_notifying(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    day = soon(env)
    venue = open_venue(sandbox, day, payment_required=False, cannot_take_payment=False)
    sandbox.state.configure_variants(captcha_venue_ids=[venue.id])
    cli(
        "notify", "add", "--venue", str(venue.id), "--date", str(day), "--party", "2",
        "--window", "18:00-21:00", "--auto-book", "--json", env=env,
    )  # fmt: skip
    checked = json.loads(cli("notify", "check", "--json", env=env).stdout)["checked"][0]
    assert checked["status"] == "satisfied"  # the user hears of the slots and books in the app
    assert checked["booking"]["outcome"] == "captcha"
    assert "/3/book" not in _counters(sandbox)
    notes = json.loads(cli("notify", "list", "--json", env=env).stdout)["notifications"]
    assert sorted(n["kind"] for n in notes) == ["booking", "notify_hit"]


# -- finding 9 / S11: the cancellation fee per guest or for the party ---------------------------


@pytest.mark.parametrize("per_guest", [False, True])
def test_the_fee_ceiling_holds_whichever_unit_resy_means(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle, per_guest: bool
) -> None:
    """Cancelling costs $50 a guest, $200 for four. Whether details says 50 or 200, a $150
    ceiling refuses it, and the quote shows both readings."""
    sandbox.state.configure_variants(fee_per_guest=per_guest)
    day = soon(env)
    world, now = sandbox.state.world, sandbox.state.clock.now()
    venue = next(
        v for v in world.venues
        if v.payment_required and not v.cannot_take_payment and v.max_party_size >= 4
        and world.is_open_day(v, day) and world.is_released(v, day, now)
        and any(18 * 60 <= world.snapshot(v, day, now).slots[i].minute <= 21 * 60
                for i in world.snapshot(v, day, now).open_for(4))
    )  # fmt: skip
    result = cli(
        "book", "now", "--venue", str(venue.id), "--date", str(day), "--party", "4",
        "--window", "18:00-21:00", "--max-total", "1000", "--max-cancel-fee", "150", "--json",
        env=env, expect=15,
    )  # fmt: skip
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "fee_too_high"
    assert "$200.00" in error["message"]  # the larger reading is the real cost either way
    assert book_requests(sandbox) == 0
