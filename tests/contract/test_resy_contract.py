"""Contract tests: answers re-typed from public Resy samples, read by resywatch's models and
classified by its error mapping. Each fixture in `fixtures/` names its source and the finding
of the real-Resy audit (REAL_RESY_FINDINGS.md) it stands for. Nothing here talks to Resy: the
samples are replayed through httpx.MockTransport into the real client.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from resywatch.resy import errors
from resywatch.resy.client import ResyClient
from resywatch.resy.transport import RetryPolicy

FIXTURES = Path(__file__).parent / "fixtures"
API_KEY = "contract-api-key"
TOKEN = "contract.jwt.token"


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    assert loaded["source"], f"{name}: every fixture names its public source"
    return loaded


def replayed(sample: dict[str, Any]) -> httpx.Response:
    answer = sample["response"]
    headers = answer.get("headers", {})
    if "json" in answer:
        return httpx.Response(answer["status"], json=answer["json"], headers=headers)
    return httpx.Response(answer["status"], text=answer.get("text", ""), headers=headers)


def client_for(sample: dict[str, Any], seen: list[httpx.Request] | None = None) -> ResyClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return replayed(sample)

    return ResyClient(
        base_url="https://api.resy.test",
        api_key=API_KEY,
        auth_token=TOKEN,
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(max_retries=0),
        max_rps=1000.0,
    )


def raised_by(sample: dict[str, Any]) -> errors.ResyError:
    """The error resywatch's mapping makes of the sample's answer to its request."""
    request = sample["request"]
    client = client_for(sample)
    with pytest.raises(errors.ResyError) as caught:
        asyncio.run(
            client._call(request["method"], request["path"], user=request.get("user", False))
        )
    return caught.value


def parsed(sample: dict[str, Any], call: Any) -> Any:
    async def go() -> Any:
        async with client_for(sample) as resy:
            return await call(resy)

    return asyncio.run(go())


# -- finding 1: the token, and only on user calls --------------------------------------------


@pytest.mark.parametrize("name", ["find_302_expired_token", "unauthorized_419"])
def test_finding_1_a_refused_token_on_a_user_call_is_auth_expired(name: str) -> None:
    error = raised_by(fixture(name))
    assert isinstance(error, errors.AuthExpired) and error.code == "auth_expired"
    assert error.permanent
    assert "run `resywatch auth login`" in str(error)


def test_finding_1_a_find_is_sent_without_the_token() -> None:
    sample = fixture("find_302_expired_token")
    seen: list[httpx.Request] = []

    async def go() -> None:
        async with client_for(sample, seen) as resy:
            with pytest.raises(errors.AuthError):
                await resy.find(1505, date(2026, 12, 1), 2)

    asyncio.run(go())
    assert "x-resy-auth-token" not in seen[0].headers
    assert "x-resy-universal-auth" not in seen[0].headers


# -- finding 15: a 419 from the login is the password ----------------------------------------


def test_finding_15_a_419_from_the_login_is_a_wrong_password() -> None:
    error = raised_by(fixture("login_419_wrong_password"))
    assert isinstance(error, errors.LoginRefused)
    assert "wrong email or password" in str(error)
    assert "auth login" not in str(error)


# -- finding 3: the firewall's answers vs Resy's own -------------------------------------------


def test_finding_3_resys_json_403_is_payment_not_accepted_despite_the_cdn_header() -> None:
    error = raised_by(fixture("book_403_payment_not_accepted"))
    assert isinstance(error, errors.PaymentNotAccepted)
    assert error.permanent  # never retried, never counted toward the breaker
    assert "not set up to accept payment methods" in str(error)


def test_finding_3_an_ordinary_answer_with_the_cdn_header_is_read() -> None:
    answer = parsed(fixture("login_200_with_cdn_header"), lambda r: r.login("pat@example.com", "x"))
    assert answer.token.count(".") == 2
    assert answer.default_payment_method_id == 9876543


@pytest.mark.parametrize("name", ["imperva_challenge_503", "imperva_block_403"])
def test_finding_3_a_challenge_page_is_the_firewall(name: str) -> None:
    error = raised_by(fixture(name))
    assert isinstance(error, errors.Blocked | errors.ServerError)
    assert not error.permanent


# -- finding 14: Resy's 502 is malformed input ----------------------------------------------


def test_finding_14_a_502_is_permanent() -> None:
    error = raised_by(fixture("bad_gateway_502"))
    assert isinstance(error, errors.BadRequest) and error.permanent


# -- finding 17: the public web key by default -----------------------------------------------


def test_finding_17_with_nothing_configured_the_public_web_key_is_sent() -> None:
    """Cierge resy/token.go DefaultApiKey: the key of resy.com's web app, tied to no user."""
    from resywatch.config import load_settings
    from resywatch.resy.client import client_from_settings

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"lead_time_in_days": 14})

    async def go() -> None:
        settings = load_settings(environ={})
        async with client_from_settings(settings, transport=httpx.MockTransport(handler)) as resy:
            await resy.venue_config(1505)

    asyncio.run(go())
    assert seen[0].headers["authorization"] == 'ResyAPI api_key="VbWk7s3L4KiK5fzlO7JD3Q5EYolJI7n5"'


# -- finding 4: a 412 that names the reservation you hold ------------------------------------


def test_finding_4_a_412_with_specs_is_confirmed_through_the_reservations_as_booked() -> None:
    from resywatch.db.models.booking import Outcome
    from resywatch.services.booking.booker import Booker, Steps
    from resywatch.services.booking.outcomes import Verdict
    from resywatch.services.booking.plan import BookingPlan, want_for
    from resywatch.services.booking.quote import Quote
    from resywatch.services.vocabulary import OpenSlot

    refused, listed = fixture("book_412_already_held"), fixture("reservations_upcoming")
    error = raised_by(refused)
    assert isinstance(error, errors.Conflict) and error.reservation_id == 700123456
    assert error.resy_token == "RESY_TOKEN_700123456"

    def handler(request: httpx.Request) -> httpx.Response:
        return replayed(refused if request.url.path == "/3/book" else listed)

    day = date(2026, 12, 4)
    token = f"rgs://resy/6194/1/2/{day}/{day}/19:00:00/2/Dining Room"
    slot = OpenSlot(6194, "Carbone", day, datetime(2026, 12, 4, 19), "Dining Room", token, "s")
    want, preferred = want_for(day, 2)
    plan = BookingPlan(6194, "Carbone", want, preferred)
    quote = Quote("book-token", None, 0.0, 0.0, 1)

    async def go() -> Verdict:
        async with ResyClient(
            base_url="https://api.resy.test", api_key=API_KEY, auth_token=TOKEN,
            transport=httpx.MockTransport(handler), max_rps=1000.0,
        ) as resy:  # fmt: skip
            return await Booker(resy, plan, Steps()).book(slot, quote)

    verdict = asyncio.run(go())
    assert verdict.outcome is Outcome.BOOKED, verdict.message
    assert verdict.reservation_id == 700123456


# -- findings 6 and 11: one slot per token, the asked venue only -------------------------------


def test_finding_6_and_11_a_find_yields_each_token_once_and_only_the_asked_venue() -> None:
    from resywatch.services.availability import open_slots
    from resywatch.services.vocabulary import Want

    sample = fixture("find_one_token_two_tables")
    found = parsed(sample, lambda r: r.find(5192, date(2023, 6, 14), 2))
    assert [s.config.id for s in found.results.venues[0].slots] == [1829819, 1829820]
    assert [s.config.id for s in found.slots_at(5192)] == [1829819]
    assert found.slots_at(1) == []
    day = date(2023, 6, 14)
    slots = parsed(sample, lambda r: open_slots(r, 5192, Want(day, day, 2), day))
    assert [(s.venue_id, f"{s.starts_at:%H:%M}") for s in slots] == [(5192, "21:45")]


# -- findings 7 and 13: slot-less hits anywhere, `slots: null` --------------------------------


def test_finding_7_and_13_paging_reads_past_slot_less_hits_and_null_slots_are_empty() -> None:
    first, second = fixture("search_page1_slotless_first"), fixture("search_page2_open")

    def handler(request: httpx.Request) -> httpx.Response:
        return replayed(first if json.loads(request.content)["page"] == 1 else second)

    async def go() -> list[Any]:
        async with ResyClient(
            base_url="https://api.resy.test", api_key=API_KEY,
            transport=httpx.MockTransport(handler), max_rps=1000.0,
        ) as resy:  # fmt: skip
            return await resy.search_all(day=date(2023, 6, 14), party_size=2, per_page=3)

    hits = asyncio.run(go())
    assert [h.id for h in hits] == [101, 102, 103, 5192]
    assert [len(h.slots) for h in hits] == [0, 0, 0, 1]


# -- finding 2: captcha venues; finding 12: slots ordinary accounts cannot book ---------------


def test_finding_2_a_captcha_venue_is_seen_in_the_find_and_in_details() -> None:
    from resywatch.services.availability import open_slots
    from resywatch.services.vocabulary import Want

    day = date(2026, 12, 4)
    slots = parsed(
        fixture("find_captcha_and_restricted"), lambda r: open_slots(r, 834, Want(day, day, 2), day)
    )
    assert slots and all(s.captcha for s in slots)
    details = fixture("details_without_book_token")
    with pytest.raises(errors.CaptchaRequired) as raised:
        parsed(details, lambda r: r.details(slots[0].token, day, 2))
    assert raised.value.permanent


def test_finding_12_global_dining_and_ineligible_exclusive_slots_are_marked() -> None:
    found = parsed(
        fixture("find_captcha_and_restricted"), lambda r: r.find(834, date(2026, 12, 4), 2)
    )
    marks = {s.seating_type: s.restricted for s in found.slots_at(834)}
    assert marks["Dining Room"] is None
    assert marks["Amex Patio"] is not None and "exclusive" in marks["Amex Patio"]
    assert marks["Chef's Counter"] is not None and "Global Dining" in marks["Chef's Counter"]


# -- finding 9: the fee's unit; finding 10: the book token's lifetime -------------------------


def test_finding_9_and_10_a_quote_shows_both_fee_readings_and_its_token_expiry() -> None:
    from resywatch.clock import ManualClock
    from resywatch.services.booking.booker import Booker, Steps
    from resywatch.services.booking.plan import BookingPlan, want_for
    from resywatch.services.booking.quote import over_ceiling, quote_of

    sample = fixture("details_with_cancellation_fee")
    details = parsed(sample, lambda r: r.details("rgs://t", date(2026, 12, 4), 4))
    quote = quote_of(details, None, party_size=4)
    assert (quote.cancellation_fee, quote.cancellation_fee_max) == (25.0, 100.0)
    assert quote.payment_method_id == 123456
    assert quote.expires_at is not None and quote.expires_at.tzinfo is not None
    want, preferred = want_for(date(2026, 12, 4), 4)
    plan = BookingPlan(1, "Venue", want, preferred, max_cancel_fee=50.0)
    assert over_ceiling(quote, plan) is not None  # $100 if per guest: above $50
    now = quote.expires_at - timedelta(seconds=10)
    booker = Booker(None, plan, Steps(), ManualClock(now))  # type: ignore[arg-type]
    assert booker.stale(quote)


# -- finding 8: namesakes in other cities -------------------------------------------------------


def test_finding_8_a_name_is_the_venue_in_the_area_and_namesakes_are_told_apart() -> None:
    from resywatch.config import load_settings
    from resywatch.errors import InvalidInput
    from resywatch.runtime import Runtime
    from resywatch.services.venues import _one_named

    sample = fixture("search_namesakes")
    south, west, north, east = (40.691, -74.030, 40.882, -73.910)

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        answer = replayed(sample)
        if "geo" not in body:
            return answer
        box = body["geo"]["bounding_box"]
        hits = [
            h for h in answer.json()["search"]["hits"]
            if box[0] <= h["_geoloc"]["lat"] <= box[2] and box[1] <= h["_geoloc"]["lng"] <= box[3]
        ]  # fmt: skip
        return httpx.Response(200, json={"search": {"hits": hits}, "meta": {"total_pages": 1}})

    async def resolve(box: str) -> Any:
        settings = load_settings(environ={"RESYWATCH_DISCOVERY_BOUNDING_BOX": box})
        async with ResyClient(
            base_url="https://api.resy.test", api_key=API_KEY,
            transport=httpx.MockTransport(handler), max_rps=1000.0,
        ) as resy:  # fmt: skip
            rt = Runtime(settings, None, resy)  # type: ignore[arg-type]  # no database asked
            return await _one_named(rt, "carbone", datetime(2026, 12, 1, tzinfo=UTC))

    assert asyncio.run(resolve(f"{south},{west},{north},{east}")).id == 6194
    with pytest.raises(InvalidInput) as ambiguous:
        asyncio.run(resolve("1,1,2,2"))
    assert "South Beach, Miami Beach" in str(ambiguous.value)
    assert "Greenwich Village, New York" in str(ambiguous.value)
