"""Booking rules that need no Resy: ranking, windows, ceilings, predicted tokens, exit codes,
settings; and on each backend, claims, attempts and the scheduled-snipe lease."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from resywatch.cli.book import EXIT_CODES_HELP
from resywatch.clock import ManualClock
from resywatch.config import load_settings
from resywatch.db.engine import Database
from resywatch.db.models import BookingAttempt, Notification, ScheduledSnipe
from resywatch.db.models.booking import Outcome
from resywatch.errors import InvalidInput
from resywatch.runtime import Runtime
from resywatch.services.booking import runs, schedule
from resywatch.services.booking import sniper as sniping
from resywatch.services.booking.attempts import finish_attempt, list_attempts, start_attempt
from resywatch.services.booking.book import claim_key
from resywatch.services.booking.booker import Booker, Steps
from resywatch.services.booking.outcomes import EXIT_CODES, BookingResult, Verdict
from resywatch.services.booking.plan import BookingPlan, rank, want_for
from resywatch.services.booking.quote import Quote, over_ceiling
from resywatch.services.vocabulary import OpenSlot, check_times

DAY = date(2026, 12, 4)


def slot(hhmm: str, seating: str | None = "Dining Room", day: date = DAY) -> OpenSlot:
    hour, minute = (int(p) for p in hhmm.split(":"))
    starts = datetime.combine(day, time(hour, minute))
    token = f"rgs://resy/7/1000/2/{day}/{day}/{hhmm}:00/2/{seating}"
    return OpenSlot(7, "Don Angie", day, starts, seating, token, f"id-{day}-{hhmm}")


def plan(**fields: object) -> BookingPlan:
    want, preferred = want_for(DAY, 2, window=(time(18), time(21)))
    values: dict[str, object] = {
        "venue_id": 7,
        "venue_name": "Don Angie",
        "want": want,
        "preferred": preferred,
    }
    values.update(fields)
    return BookingPlan(**values)  # type: ignore[arg-type]


def test_time_alone_accepts_half_an_hour_either_side_and_prefers_itself() -> None:
    want, preferred = want_for(DAY, 2, at=time(19, 0))
    assert (want.time_from, want.time_to, preferred) == (time(18, 30), time(19, 30), time(19))
    late, _ = want_for(DAY, 2, at=time(23, 45))
    assert (late.time_from, late.time_to) == (time(23, 15), time(23, 59))


def test_a_window_alone_prefers_its_middle_and_both_keep_the_time() -> None:
    assert want_for(DAY, 2, window=(time(18), time(21)))[1] == time(19, 30)
    assert want_for(DAY, 2, at=time(20), window=(time(18), time(21)))[1] == time(20)
    with pytest.raises(InvalidInput, match="outside --window"):
        check_times((time(22),), (time(18), time(21)))


def test_rank_by_distance_then_seating_preference_then_time() -> None:
    want, _ = want_for(DAY, 2, seating_types=["Bar", "Dining Room"])
    slots = [
        slot("18:00", "Dining Room"),
        slot("19:30", "Dining Room"),
        slot("18:30", "Bar"),
        slot("19:30", "Bar"),
        slot("20:30", "Patio"),
    ]
    ranked = rank(slots, want, time(19))
    assert [(f"{s.starts_at:%H:%M}", s.seating_type) for s in ranked] == [
        ("18:30", "Bar"),  # 30 min away, preferred seating, earlier
        ("19:30", "Bar"),  # 30 min away, preferred seating
        ("19:30", "Dining Room"),
        ("18:00", "Dining Room"),
        ("20:30", "Patio"),
    ]


def test_rank_prefers_the_earliest_day_across_a_range() -> None:
    want, _ = want_for(DAY, 2)
    later = slot("19:00", day=DAY + timedelta(days=1))
    ranked = rank([later, slot("21:30")], want, time(19))
    assert ranked[0].day == DAY


def test_quotes_above_either_ceiling_are_refused() -> None:
    free = Quote("t", None, 0.0, 0.0, None)
    deposit = Quote("t", None, 50.0, 100.0, 1)
    assert over_ceiling(free, plan()) is None
    refused = over_ceiling(deposit, plan())
    assert refused and "$50.00 up front" in refused and "--max-total" in refused
    assert over_ceiling(deposit, plan(max_total=50.0, max_cancel_fee=100.0)) is None
    assert over_ceiling(deposit, plan(max_total=50.0)) is not None


def test_tokens_are_predicted_for_another_day_and_party() -> None:
    token = "rgs://resy/5192/1124043/2/2023-06-14/2023-06-14/17:00:00/2/Dining Room"
    assert sniping.predict_token(token, date(2023, 6, 21), 4) == (
        "rgs://resy/5192/1124043/2/2023-06-21/2023-06-21/17:00:00/4/Dining Room"
    )
    assert sniping.predict_token("opaque-token", date(2023, 6, 21), 2) is None


def test_every_outcome_has_an_exit_code_and_the_help_lists_them() -> None:
    assert set(EXIT_CODES) == set(Outcome)
    for outcome, code in EXIT_CODES.items():
        if code >= 10:
            assert re.search(rf"\b{code} ", EXIT_CODES_HELP), outcome
    codes = {EXIT_CODES[o] for o in (
        Outcome.NO_SLOT, Outcome.SLOT_GONE, Outcome.CONFLICT, Outcome.PAYMENT_REQUIRED,
        Outcome.PAYMENT_NOT_ACCEPTED, Outcome.FEE_TOO_HIGH, Outcome.AUTH_EXPIRED,
        Outcome.RATE_LIMITED, Outcome.UNCONFIRMED,
    )}  # fmt: skip
    assert len(codes) == 9  # one each
    assert EXIT_CODES[Outcome.BOOKED] == EXIT_CODES[Outcome.DRY_RUN] == 0


def test_a_failed_result_is_an_error_with_its_outcome_and_exit_code() -> None:
    result = BookingResult(Outcome.SLOT_GONE, "gone", 7, "Don Angie", DAY, 2)
    error = result.error()
    assert (error.code, int(error.exit_code), error.message) == ("slot_gone", 11, "gone")
    assert not result.ok and BookingResult(Outcome.DRY_RUN, "", 7, "x", DAY, 2).ok


def test_settings_have_book_defaults_from_toml_and_environment(tmp_path: Path) -> None:
    defaults = load_settings(environ={})
    assert (defaults.book_max_total, defaults.book_max_cancel_fee) == (0.0, 50.0)
    assert (defaults.book_lead_s, defaults.book_poll_interval_s, defaults.book_deadline_s) == (
        0.1,
        0.2,
        60.0,
    )
    config = tmp_path / "config.toml"
    config.write_text("[book]\nlead_s = 5\nrequest_budget = 200\n", encoding="utf-8")
    settings = load_settings(config_path=config, environ={"RESYWATCH_BOOK_MAX_TOTAL": "75"})
    assert (settings.book_lead_s, settings.book_request_budget, settings.book_max_total) == (
        5.0,
        200,
        75.0,
    )


# --- on each backend -------------------------------------------------------------------------


def test_a_claim_key_lets_one_attempt_only(db: Database) -> None:
    now = datetime.now(UTC)
    key = claim_key("watch", 3, slot("19:00"))
    first = start_attempt(
        db, source="watch", source_id=3, plan=plan(), slot=slot("19:00"), claim_key=key, now=now
    )
    second = start_attempt(
        db, source="watch", source_id=3, plan=plan(), slot=slot("19:00"), claim_key=key, now=now
    )
    assert first is not None and second is None
    other = claim_key("watch", 3, slot("19:00", "Bar"))
    assert start_attempt(
        db, source="watch", source_id=3, plan=plan(), slot=slot("19:00"), claim_key=other, now=now
    )
    with db.read() as session:
        assert len(session.exec(select(BookingAttempt)).all()) == 2


def test_a_finished_attempt_writes_its_notification_in_the_same_transaction(
    db: Database,
) -> None:
    now = datetime.now(UTC)
    attempt = start_attempt(
        db, source="watch", source_id=1, plan=plan(), slot=slot("19:00"), claim_key=None, now=now
    )
    assert attempt is not None
    result = BookingResult(
        Outcome.BOOKED, "booked it", 7, "Don Angie", DAY, 2, slot("19:00").starts_at,
        "Dining Room", reservation_id=99, resy_status=201, attempt_id=attempt,
        latency_ms={"book": 12.5, "total": 40.0},
    )  # fmt: skip
    finish_attempt(db, attempt, result, notify=True, now=now)
    with db.read() as session:
        row = session.get(BookingAttempt, attempt)
        note = session.exec(select(Notification)).one()
    assert row is not None and row.outcome == "booked" and row.reservation_id == 99
    assert row.latency_ms == {"book": 12.5, "total": 40.0}
    assert note.kind == "booking" and note.dedupe_key == f"booking:{attempt}"
    assert note.title == "Booked: Don Angie Fri Dec 4 19:00 for 2"
    assert note.payload["reservation_id"] == 99


def test_attempts_list_newest_first_and_filter_failures(db: Database) -> None:
    now = datetime.now(UTC)
    outcomes = [Outcome.BOOKED, Outcome.SLOT_GONE, Outcome.DRY_RUN, Outcome.PAYMENT_REQUIRED]
    for n, outcome in enumerate(outcomes):
        at = now - timedelta(hours=len(outcomes) - n)
        attempt = start_attempt(
            db, source="book-now", source_id=None, plan=plan(), slot=None, claim_key=None, now=at
        )
        assert attempt is not None
        result = BookingResult(outcome, outcome.value, 7, "Don Angie", DAY, 2)
        finish_attempt(db, attempt, result, notify=False, now=at)
    every = list_attempts(db)
    assert [a.outcome for a in every] == [o.value for o in reversed(outcomes)]
    assert [a.outcome for a in list_attempts(db, failed_only=True)] == [
        "payment_required",
        "slot_gone",
    ]
    recent = list_attempts(db, since=now - timedelta(minutes=90))
    assert [a.outcome for a in recent] == ["payment_required"]


def snipe_row(release_at: datetime, **fields: object) -> ScheduledSnipe:
    values: dict[str, object] = {
        "venue_id": 7, "venue_name": "Don Angie", "slot_date": DAY, "party_size": 2,
        "release_at": release_at, "release_source": "at", "max_total": 0.0,
        "max_cancel_fee": 50.0, "lead_s": 3.0, "poll_interval_s": 0.2, "deadline_s": 60.0,
        "late_s": 120.0, "request_budget": 900,
    }  # fmt: skip
    values.update(fields)
    return ScheduledSnipe.model_validate(values)


def test_one_runner_only_takes_a_snipe(db: Database) -> None:
    now = datetime.now(UTC)
    with db.write() as session:
        row = snipe_row(now + timedelta(seconds=20))
        session.add(row)
        session.flush()
        snipe_id = row.id
    assert snipe_id is not None
    first = runs._claim(db, snipe_id, "host:1", now)
    assert first is not None and first.status == "running" and first.runs == 1
    assert runs._claim(db, snipe_id, "host:2", now) is None
    with db.read() as session:
        stored = session.get(ScheduledSnipe, snipe_id)
    assert stored is not None and stored.claimed_by == "host:1"


def test_snipes_nobody_ran_in_time_are_missed_and_said_so(db: Database) -> None:
    now = datetime.now(UTC)
    with db.write() as session:
        session.add(snipe_row(now - timedelta(hours=1)))  # its deadline has passed
        session.add(snipe_row(now + timedelta(hours=1)))
    missed = runs._mark_missed(db, now)
    assert [m.status for m in missed] == ["missed"]
    statuses = sorted(v.status for v in schedule.list_snipes(db, include_finished=True))
    assert statuses == ["missed", "scheduled"]
    with db.read() as session:
        note = session.exec(select(Notification)).one()
    assert note.kind == "booking" and "run-forever" in note.body
    assert runs._mark_missed(db, now) == []


def test_a_cancelled_snipe_cannot_be_cancelled_again(db: Database) -> None:
    now = datetime.now(UTC)
    with db.write() as session:
        row = snipe_row(now + timedelta(hours=1))
        session.add(row)
        session.flush()
        snipe_id = row.id
    assert snipe_id is not None
    assert schedule.cancel_snipe(db, snipe_id, now).status == "cancelled"
    with pytest.raises(InvalidInput, match="already cancelled"):
        schedule.cancel_snipe(db, snipe_id, now)
    assert schedule.list_snipes(db) == []


# --- the book step against a scripted Resy ------------------------------------------------


def scripted_resy(book: Callable[[httpx.Request], httpx.Response], held: list[Any]) -> Any:
    """A client whose `/3/book` answers with `book` and whose reservations list `held`."""
    from resywatch.resy.client import ResyClient

    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/3/book":
            return book(request)
        if request.url.path == "/3/user/reservations":
            return httpx.Response(200, json={"reservations": held, "venues": {}})
        raise AssertionError(f"unexpected {request.url.path}")

    client = ResyClient(
        base_url="https://resy.test", api_key="key-0123456789", auth_token="token-0123456789",
        transport=httpx.MockTransport(handler), max_rps=1000.0,
    )  # fmt: skip
    client.paths = calls  # type: ignore[attr-defined]
    return client


RESERVATION = {"reservation_id": 42, "day": DAY.isoformat(), "time_slot": "19:00:00",
               "venue": {"id": 7}}  # fmt: skip
QUOTE = Quote("book-token", None, 0.0, 0.0, 5)
HELD_412 = {
    "status": 412,
    "message": "Conflict",
    "specs": {"reservation_id": 42, "resy_token": "rr://42"},
}
EARLIER = RESERVATION | {"time_slot": "18:00:00"}  # reservation 42 is another table that day


def timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("no answer", request=request)


@pytest.mark.parametrize(
    ("answer", "held", "outcome"),
    [
        (timeout, [RESERVATION], Outcome.BOOKED),  # it went through after all
        (timeout, [], Outcome.UNCONFIRMED),
        (lambda r: httpx.Response(201, json={"reservation_id": 42}), [RESERVATION], Outcome.BOOKED),
        (lambda r: httpx.Response(201, json={"reservation_id": 42}), [], Outcome.UNCONFIRMED),
        (lambda r: httpx.Response(412, json={"reservation_id": 42}), [RESERVATION], Outcome.BOOKED),
        (lambda r: httpx.Response(412, json={"message": "conflict"}), [], Outcome.CONFLICT),
        # Finding 4: Resy's "you already hold it" names the reservation under `specs`.
        (lambda r: httpx.Response(412, json=HELD_412), [RESERVATION], Outcome.BOOKED),
        (lambda r: httpx.Response(412, json=HELD_412), [EARLIER], Outcome.ALREADY_BOOKED),
        (lambda r: httpx.Response(412, json=HELD_412), [], Outcome.CONFLICT),
    ],
)
def test_a_book_request_is_sent_once_and_only_the_reservations_say_booked(
    answer: Callable[[httpx.Request], httpx.Response], held: list[Any], outcome: Outcome
) -> None:
    resy = scripted_resy(answer, held)
    booker = Booker(resy, plan(), Steps())

    async def go() -> Verdict:
        async with resy:
            return await booker.book(slot("19:00"), QUOTE)

    verdict = asyncio.run(go())
    assert verdict.outcome is outcome, verdict.message
    assert resy.paths.count("/3/book") == 1  # never retried
    if outcome is not Outcome.CONFLICT:
        assert resy.paths[-1] == "/3/user/reservations"
    if outcome in (Outcome.BOOKED, Outcome.ALREADY_BOOKED):
        assert verdict.reservation_id == 42


# --- finding 9: the cancellation fee's unit; finding 10: a token that aged at the prompt ----


def test_the_cancellation_fee_is_shown_both_ways_and_capped_on_the_larger() -> None:
    """Public clients read `cancellation.fee.amount` as the total or per guest; no sample
    decides, so the ceiling holds against the larger reading."""
    quote = Quote("book-token", None, 0.0, 25.0, 5, party_size=4)
    assert quote.cancellation_fee_if_per_guest == 100.0 == quote.cancellation_fee_max
    assert quote.fee_text() == "$25.00 cancellation fee ($100.00 if per guest)"
    refused = over_ceiling(quote, plan(max_cancel_fee=50.0))
    assert refused is not None and "$100.00 if per guest" in refused
    assert over_ceiling(quote, plan(max_cancel_fee=100.0)) is None
    alone = Quote("book-token", None, 0.0, 25.0, 5, party_size=1)
    assert alone.fee_text() == "$25.00 cancellation fee"


def test_a_book_token_that_aged_at_the_prompt_is_fetched_again() -> None:
    from resywatch.resy.client import ResyClient

    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    tokens = iter([("first", now + timedelta(seconds=20)), ("second", now + timedelta(minutes=5))])
    booked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/3/details":
            value, expires = next(tokens)
            stamp = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
            return httpx.Response(200, json={"book_token": {"value": value, "date_expires": stamp}})
        if request.url.path == "/3/book":
            booked.append(dict(httpx.QueryParams(request.content.decode()))["book_token"])
            return httpx.Response(201, json={"reservation_id": 42})
        return httpx.Response(200, json={"reservations": [RESERVATION], "venues": {}})

    resy = ResyClient(
        base_url="https://resy.test", api_key="key-0123456789", auth_token="token-0123456789",
        transport=httpx.MockTransport(handler), max_rps=1000.0,
    )  # fmt: skip
    booker = Booker(resy, plan(), Steps(), ManualClock(now))

    async def go() -> Verdict:
        async with resy:
            return await booker.try_slot(slot("19:00"), confirm=lambda s, q: True)

    verdict = asyncio.run(go())
    assert verdict.outcome is Outcome.BOOKED, verdict.message
    assert booked == ["second"]  # the first had 20 s left when the prompt was answered


def test_a_snipe_sees_each_slot_once_and_only_at_its_venue() -> None:
    """Finding 6 and 11 in the snipe: one try per token (a slot listed per table), and
    another venue's entry in the find is never its slots."""
    from types import SimpleNamespace

    from resywatch.resy.models import FindResponse

    def entry(venue_id: int, config_ids: list[int]) -> dict[str, Any]:
        token = f"rgs://resy/{venue_id}/1000/2/{DAY}/{DAY}/19:00:00/2/Dining Room"
        return {
            "venue": {"id": {"resy": venue_id}, "name": f"venue {venue_id}"},
            "slots": [
                {"config": {"id": i, "type": "Dining Room", "token": token},
                 "date": {"start": f"{DAY} 19:00:00"}}
                for i in config_ids
            ],
        }  # fmt: skip

    answer = FindResponse.model_validate(
        {"results": {"venues": [entry(8, [5]), entry(7, [1829819, 1829820])]}}
    )
    row = SimpleNamespace(
        id=1, release_at=datetime(2026, 12, 1, tzinfo=UTC), lead_s=3.0, poll_interval_s=0.2,
        deadline_s=60.0, late_s=120.0, request_budget=900,
    )  # fmt: skip
    rt = Runtime(load_settings(environ={}), None, None)  # type: ignore[arg-type]
    lane = SimpleNamespace(client=lambda resy: None, rate=50.0)
    sniper = sniping.Sniper(rt, row, plan(), lane, 0.0)  # type: ignore[arg-type]
    sniper._look(answer)
    assert [s.token.split("/")[3] for s in sniper.open] == ["7"]
    assert sniper.open[0].venue_name == "venue 7"
