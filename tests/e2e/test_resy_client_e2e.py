"""The Resy client against the sandbox over real loopback HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any, TypeVar

import httpx
import pytest

from resywatch.config import MANHATTAN
from resywatch.resy import errors
from resywatch.resy.client import ResyClient
from resywatch.resy.search_page import SearchHit, SearchSlot
from resywatch.resy.transport import RetryPolicy
from resywatch.sandbox import DEMO_API_KEY, DEMO_AUTH_TOKEN, SandboxHandle
from resywatch.sandbox.config import DEMO_EMAIL, DEMO_PASSWORD

T = TypeVar("T")


def with_client(
    sandbox: SandboxHandle,
    work: Callable[[ResyClient], Awaitable[T]],
    **options: Any,
) -> T:
    async def main() -> T:
        options.setdefault("api_key", DEMO_API_KEY)
        options.setdefault("auth_token", DEMO_AUTH_TOKEN)
        options.setdefault("max_rps", 200.0)
        async with ResyClient(base_url=sandbox.base_url, **options) as resy:
            return await work(resy)

    return asyncio.run(main())


def control(sandbox: SandboxHandle, path: str, body: dict[str, Any]) -> Any:
    response = httpx.post(f"{sandbox.base_url}/__sandbox{path}", json=body, timeout=5)
    response.raise_for_status()
    return response.json()


def sandbox_today(sandbox: SandboxHandle) -> date:
    now = httpx.get(f"{sandbox.base_url}/__sandbox/time", timeout=5).json()
    return date.fromisoformat(now["now"][:10])


async def first_open_slot(resy: ResyClient, day: date) -> tuple[SearchHit, SearchSlot]:
    hits = await resy.search_all(day=day, party_size=2, bounding_box=MANHATTAN, per_page=50)
    for hit in hits:
        for slot in hit.slots:
            return hit, slot
    raise AssertionError(f"no open slot on {day}")


def test_find_details_book_list_cancel(sandbox: SandboxHandle) -> None:
    day = sandbox_today(sandbox) + timedelta(days=3)

    async def journey(resy: ResyClient) -> None:
        hit, slot = await first_open_slot(resy, day)
        found = await resy.find(hit.id, day, 2)
        assert found.results.venues[0].venue.id == hit.id
        assert slot.config.token in {s.config.token for s in found.slots}
        details = await resy.details(slot.config.token, day, 2)
        user = await resy.user()
        booked = await resy.book(details.book_token.value, user.default_payment_method_id)
        assert booked.reservation_id and booked.resy_token
        upcoming = await resy.reservations()
        mine = [r for r in upcoming if r.reservation_id == booked.reservation_id]
        assert len(mine) == 1
        assert (mine[0].venue_id, mine[0].day) == (hit.id, day)
        await resy.cancel(booked.resy_token)
        after = await resy.reservations()
        assert booked.reservation_id not in {r.reservation_id for r in after}

    with_client(sandbox, journey)


def test_a_wrong_api_key_is_an_auth_error(sandbox: SandboxHandle) -> None:
    with pytest.raises(errors.AuthError):
        with_client(sandbox, lambda resy: resy.venue_config(6194), api_key="not-the-key")


@pytest.mark.parametrize("redirect_on_failure", [False, True])
def test_an_expired_token_stops_only_the_calls_that_need_it(
    sandbox: SandboxHandle, redirect_on_failure: bool
) -> None:
    """Finding 1 / S1: once the token has expired, discovery, watches, venue lookups and the
    login itself still work (the client sends no token where none is needed); a user call
    is `auth_expired`, whether Resy says 419 or redirects to its login page (302)."""
    day = sandbox_today(sandbox) + timedelta(days=3)
    control(sandbox, "/auth", {"expire_tokens": True, "redirect_on_failure": redirect_on_failure})

    async def after_expiry(resy: ResyClient) -> None:
        hit, _ = await first_open_slot(resy, day)
        assert (await resy.find(hit.id, day, 2)).slots
        assert (await resy.venue(hit.id)).id == hit.id
        await resy.venue_config(hit.id)
        await resy.calendar(hit.id, 2, day, day + timedelta(days=2))
        with pytest.raises(errors.AuthExpired) as refused:
            await resy.reservations()
        assert refused.value.status == (302 if redirect_on_failure else 419)
        assert "resywatch auth login" in str(refused.value)
        fresh = await resy.login(DEMO_EMAIL, DEMO_PASSWORD)
        resy.auth_token = fresh.token
        assert await resy.reservations() == []

    with_client(sandbox, after_expiry)


def test_booking_a_taken_slot_is_slot_gone_and_a_second_booking_a_conflict(
    sandbox: SandboxHandle,
) -> None:
    day = sandbox_today(sandbox) + timedelta(days=4)

    async def race(resy: ResyClient) -> None:
        hit, slot = await first_open_slot(resy, day)
        details = await resy.details(slot.config.token, day, 2)
        payment = (await resy.user()).default_payment_method_id
        control(
            sandbox,
            "/slots",
            {
                "venue_id": hit.id,
                "day": day.isoformat(),
                "time": slot.starts_at.strftime("%H:%M"),
                "seating": slot.seating,
                "delta": -1000,
            },
        )
        with pytest.raises(errors.SlotGone):
            await resy.book(details.book_token.value, payment)

        # Another slot at another venue that day: book it, then try it again.
        hits = await resy.search_all(day=day, party_size=2, bounding_box=MANHATTAN, per_page=50)
        other = next(h for h in hits if h.id != hit.id and h.slots)
        token = (await resy.details(other.slots[0].config.token, day, 2)).book_token.value
        await resy.book(token, payment)
        again = (await resy.details(other.slots[-1].config.token, day, 2)).book_token.value
        with pytest.raises(errors.Conflict):
            await resy.book(again, payment)

    with_client(sandbox, race)


def test_retry_after_is_waited_out_for_real(sandbox: SandboxHandle) -> None:
    control(
        sandbox,
        "/faults",
        {"route": "/2/user", "fail_next": 1, "fail_status": 429, "retry_after": 1},
    )
    started = time.monotonic()
    user = with_client(sandbox, lambda resy: resy.user())
    assert user.id is not None
    assert time.monotonic() - started >= 0.9
    log = httpx.get(f"{sandbox.base_url}/__sandbox/requests?route=/2/user", timeout=5).json()
    assert len(log["requests"]) == 2


def test_server_errors_are_retried_until_they_pass(sandbox: SandboxHandle) -> None:
    control(sandbox, "/faults", {"route": "/2/config", "fail_next": 2, "fail_status": 503})

    async def fetch(resy: ResyClient) -> tuple[int | None, list[str | None]]:
        config = await resy.venue_config(6194)  # Carbone
        return config.lead_time_in_days, [call.error_kind for call in resy.calls]

    lead, kinds = with_client(sandbox, fetch, retry=RetryPolicy(max_retries=3, base_s=0.01))
    assert lead is not None
    assert kinds == ["server_error", "server_error", None]


@pytest.mark.timed
def test_a_drip_fed_answer_is_cut_off_at_the_deadline(sandbox: SandboxHandle) -> None:
    control(
        sandbox, "/faults", {"route": "/2/user", "drip_chunk_bytes": 1, "drip_interval_ms": 200}
    )
    started = time.monotonic()
    with pytest.raises(errors.ResyTimeout):
        with_client(
            sandbox, lambda resy: resy.user(), timeout_s=0.5, retry=RetryPolicy(max_retries=0)
        )
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("error", [True, False])
def test_a_find_for_an_unknown_venue_is_an_error_or_no_slots(
    sandbox: SandboxHandle, error: bool
) -> None:
    """S3: Resy errors on an unknown venue (Cierge); either way no slot is made up."""
    control(sandbox, "/variants", {"find_unknown_venue_error": error})
    day = sandbox_today(sandbox) + timedelta(days=2)

    async def ask(resy: ResyClient) -> None:
        if error:
            with pytest.raises(errors.BadRequest):
                await resy.find(999_999_999, day, 2)
        else:
            assert (await resy.find(999_999_999, day, 2)).slots_at(999_999_999) == []

    with_client(sandbox, ask)


@pytest.mark.parametrize("get_fails", [False, True])
def test_details_is_posted_so_a_failing_get_form_changes_nothing(
    sandbox: SandboxHandle, get_fails: bool
) -> None:
    """S14: GET /3/details gave 500 in Feb 2024 (Alkaar #154), a 2026 note uses GET again;
    resywatch POSTs, so both variants give it a book token."""
    control(sandbox, "/variants", {"details_get_fails": get_fails})
    day = sandbox_today(sandbox) + timedelta(days=3)

    async def quote(resy: ResyClient) -> None:
        _, slot = await first_open_slot(resy, day)
        details = await resy.details(slot.config.token, day, 2)
        assert details.book_token is not None and details.book_token.value
        legacy = await resy._http.get(
            "/3/details",
            params={"config_id": slot.config.token, "day": str(day), "party_size": 2},
            headers=resy._auth_headers(user=True),
        )
        assert legacy.status_code == (500 if get_fails else 200)

    with_client(sandbox, quote)
