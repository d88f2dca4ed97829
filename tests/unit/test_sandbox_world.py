"""The sandbox world: deterministic per seed, the release rule, cancellations and bookings."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest

from resywatch.sandbox.clock import SandboxClock
from resywatch.sandbox.tokens import (
    DEMO_AUTH_TOKEN,
    DEMO_SIGNING_KEY,
    DEMO_USER_ID,
    BookTokenClaims,
    b64url_decode,
    jwt_claims,
    mint_book_token,
    parse_book_token,
)
from resywatch.sandbox.venues import MANHATTAN_BBOX, Venue
from resywatch.sandbox.world import (
    CANCEL_EPOCH_S,
    JITTER_EARLY_S,
    JITTER_LATE_S,
    MARKET_OFF_S,
    BookingError,
    World,
)

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC).timestamp()  # 10:00 in New York
FAMOUS = {
    "Carbone": 6194,
    "Don Angie": 1505,
    "Via Carota": 2567,
    "Lilia": 418,
    "4 Charles Prime Rib": 834,
    "Rezdôra": 5769,
    "Double Chicken Please": 42534,
    "Le Bernardin": 1387,
}


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=42, venue_count=300)


def fresh_world() -> World:
    return World(seed=42, venue_count=300)


def open_day(world: World, venue: Venue, ahead: int) -> date:
    """The first open (not closed-weekday) day at least ``ahead`` days after today."""
    day = world.local_today(venue, NOW) + timedelta(days=ahead)
    while not world.is_open_day(venue, day):
        day += timedelta(days=1)
    return day


def first_venue(
    world: World, popularity: str, *, with_open_slots_at: float | None = None
) -> tuple[Venue, date]:
    for venue in world.venues:
        if venue.popularity != popularity or venue.payment_required or venue.cannot_take_payment:
            continue
        day = open_day(world, venue, 3)
        if with_open_slots_at is None or world.snapshot(venue, day, with_open_slots_at).open_for(2):
            return venue, day
    raise AssertionError(f"no {popularity} venue found")


# -- catalogue ------------------------------------------------------------------------------------


def test_same_seed_same_world() -> None:
    a, b = World(seed=7, venue_count=120), World(seed=7, venue_count=120)
    assert a.venues == b.venues
    for venue in a.venues[::10]:
        day = open_day(a, venue, 2)
        assert a.snapshot(venue, day, NOW).avail == b.snapshot(b.by_id[venue.id], day, NOW).avail
        assert a.release_instant(venue, day + timedelta(days=20)) == b.release_instant(
            venue, day + timedelta(days=20)
        )


def test_other_seed_other_filler_but_same_famous_ids() -> None:
    a, b = World(seed=1, venue_count=200), World(seed=2, venue_count=200)
    assert [v.name for v in a.venues[60:]] != [v.name for v in b.venues[60:]]
    for name, venue_id in FAMOUS.items():
        assert a.by_id[venue_id].name == b.by_id[venue_id].name == name


def test_catalogue_shape(world: World) -> None:
    assert len(world.venues) == 300
    assert len({v.id for v in world.venues}) == 300
    assert len({v.url_slug for v in world.venues}) == 300
    assert world.by_id[5769].url_slug == "rezdora"
    outside = [v for v in world.venues if not v.in_manhattan_bbox]
    assert 3 <= len(outside) <= 20, "a handful of venues lie outside the Manhattan box"
    brooklyn = {
        "Park Slope",
        "Prospect Heights",
        "Carroll Gardens",
        "Crown Heights",
        "Downtown Brooklyn",
        "Fort Greene",
    }
    assert {v.neighborhood for v in outside} <= brooklyn
    south, _, _, _ = MANHATTAN_BBOX
    assert all(v.lat < south for v in outside), "they lie south of the box, in Brooklyn"
    assert {v.time_zone for v in world.venues} <= {"America/New_York", "EST5EDT"}
    assert {v.lead_time_days for v in world.venues} >= {7, 14, 21, 28, 30}
    assert any(v.payment_required for v in world.venues)
    assert any(v.cannot_take_payment for v in world.venues)
    assert {v.popularity for v in world.venues} == {"hot", "warm", "cool"}
    for venue in world.venues:
        assert 1 <= venue.price_range <= 4
        assert venue.min_party_size <= venue.max_party_size
        assert world.slot_defs(venue), "every venue has service times"


# -- release rule ---------------------------------------------------------------------------------


def test_release_instant_is_lead_days_before_at_release_time_plus_jitter(world: World) -> None:
    venue = world.by_id[1505]  # Don Angie: 7 days ahead at 09:00
    day = date(2026, 3, 20)
    scheduled = datetime(2026, 3, 13, 9, 0, tzinfo=world.zone(venue)).timestamp()
    assert world.scheduled_release(venue, day) == scheduled
    actual = world.release_instant(venue, day)
    assert scheduled - JITTER_EARLY_S <= actual <= scheduled + JITTER_LATE_S
    assert actual - scheduled == pytest.approx(world.jitter(venue, day))


def test_jitter_is_deterministic_and_varies_by_day(world: World) -> None:
    venue = world.by_id[6194]
    days = [date(2026, 4, 1) + timedelta(days=i) for i in range(200)]
    jitters = [world.jitter(venue, day) for day in days]
    again = fresh_world()
    assert jitters == [again.jitter(venue, day) for day in days]
    assert all(-JITTER_EARLY_S <= j <= JITTER_LATE_S for j in jitters)
    assert min(jitters) < 0 < max(jitters), "some releases come early, most late"
    assert max(jitters) > 45


def test_day_has_no_slots_until_released_then_calendar_moves() -> None:
    world = fresh_world()
    venue = next(v for v in world.venues if v.popularity == "cool" and v.lead_time_days == 14)
    now = NOW
    today = world.local_today(venue, now)
    # The day whose release is the next one to come.
    day = today + timedelta(days=venue.lead_time_days + 1)
    while not world.is_open_day(venue, day) or world.is_released(venue, day, now):
        day += timedelta(days=1)
    release = world.release_instant(venue, day)
    before, after = release - 0.5, release + 0.5
    assert world.snapshot(venue, day, before).avail == ()
    assert world.last_calendar_day(venue, before) < day
    assert world.calendar_status(venue, day, 2, before) == "not available"
    assert world.snapshot(venue, day, after).open_for(2), "a cool venue opens with free tables"
    assert world.last_calendar_day(venue, after) == day
    assert world.calendar_status(venue, day, 2, after) == "available"


def test_hot_venue_sells_out_within_seconds_of_release() -> None:
    world = fresh_world()
    venue = world.by_id[1505]
    day = open_day(world, venue, venue.lead_time_days + 1)
    release = world.release_instant(venue, day)
    at_release = sum(world.snapshot(venue, day, release).avail)
    a_minute_later = sum(world.snapshot(venue, day, release + 60).avail)
    assert at_release > 5
    assert a_minute_later < at_release / 3


def test_forced_release(world: World) -> None:
    world = fresh_world()
    venue = world.by_id[418]
    day = world.local_today(venue, NOW) + timedelta(days=venue.lead_time_days + 3)
    while not world.is_open_day(venue, day):
        day += timedelta(days=1)
    at = NOW + 10
    world.force_release(venue, day, at)
    assert world.release_instant(venue, day) == world.scheduled_release(venue, day) == at
    assert world.snapshot(venue, day, at - 0.001).avail == ()
    assert world.last_calendar_day(venue, at - 0.001) < day
    assert world.snapshot(venue, day, at).open_for(2)
    assert world.last_calendar_day(venue, at) == day
    world.force_release(venue, day, None)
    assert not world.is_released(venue, day, at)


def test_market_dates_and_slot_closing_an_hour_before_start(world: World) -> None:
    venue, day = first_venue(world, "cool", with_open_slots_at=NOW)
    snap = world.snapshot(venue, day, NOW)
    assert snap.market_on == world.scheduled_release(venue, day)
    last = snap.open_for(2)[-1]
    closing = snap.starts[last] - MARKET_OFF_S
    assert last not in world.snapshot(venue, day, closing).open_for(2)


# -- time-driven inventory ------------------------------------------------------------------------


def availability_series(
    world: World, venue: Venue, day: date, start: float, hours: int
) -> list[tuple[int, ...]]:
    return [world.snapshot(venue, day, start + step * 60).avail for step in range(hours * 60)]


def test_cancellations_reopen_single_slots_and_are_retaken(world: World) -> None:
    venue = world.by_id[1505]
    day = open_day(world, venue, 3)
    series = availability_series(world, venue, day, NOW, hours=24)
    openings = [
        (i, slot)
        for i in range(1, len(series))
        for slot, (was, now) in enumerate(zip(series[i - 1], series[i], strict=True))
        if now > was
    ]
    closings = [
        i
        for i in range(1, len(series))
        if any(now < was for was, now in zip(series[i - 1], series[i], strict=True))
    ]
    assert len(openings) >= 3, "a hot venue sees a few cancellations a day"
    assert closings, "cancelled tables are taken again"
    assert all(max(a) <= 2 for a in series), "one table comes back at a time"


def test_cancellations_can_be_switched_off() -> None:
    world = fresh_world()
    venue = world.by_id[1505]
    day = open_day(world, venue, 3)
    world.snapshot(venue, day, NOW)
    world.set_cancellations(False)
    series = availability_series(world, venue, day, NOW, hours=24)
    for before, after in itertools.pairwise(series):
        assert all(b >= a for b, a in zip(before, after, strict=True)), "nothing reopens"
    quiet = World(seed=42, venue_count=300, cancellations=False)
    assert availability_series(quiet, quiet.by_id[venue.id], day, NOW, hours=24) == series


def test_cancellations_are_a_function_of_seed_and_time() -> None:
    a, b = fresh_world(), fresh_world()
    venue = a.by_id[6194]
    day = open_day(a, venue, 5)
    # b is asked in another order (backwards): caching must not change the answers.
    forward = availability_series(a, venue, day, NOW, hours=6)
    backward = [
        b.snapshot(b.by_id[venue.id], day, NOW + step * 60).avail
        for step in reversed(range(6 * 60))
    ]
    assert forward == backward[::-1]
    other = World(seed=43, venue_count=300)
    assert forward != availability_series(other, other.by_id[venue.id], day, NOW, hours=6)


def test_snapshot_is_reused_until_something_can_change(world: World) -> None:
    venue, day = first_venue(world, "cool", with_open_slots_at=NOW)
    snap = world.snapshot(venue, day, NOW)
    assert world.snapshot(venue, day, NOW + 0.001) is snap
    assert snap.valid_until <= (NOW // CANCEL_EPOCH_S + 1) * CANCEL_EPOCH_S
    later = world.snapshot(venue, day, snap.valid_until - 0.001)
    assert later is snap


# -- bookings -------------------------------------------------------------------------------------


def test_booking_consumes_a_table_and_cancel_returns_it() -> None:
    world = fresh_world()
    venue, day = first_venue(world, "cool", with_open_slots_at=NOW)
    index = world.snapshot(venue, day, NOW).open_for(2)[0]
    before = world.snapshot(venue, day, NOW).avail[index]
    reservation = world.book(
        uid=DEMO_USER_ID,
        venue=venue,
        day=day,
        slot_index=index,
        party_size=2,
        payment_method_id=None,
        now=NOW,
    )
    assert world.snapshot(venue, day, NOW).avail[index] == before - 1
    assert world.user_reservations(DEMO_USER_ID) == [reservation]
    assert reservation.resy_token.startswith("rr://")
    assert world.cancel(DEMO_USER_ID, reservation.resy_token, NOW + 1) is reservation
    assert world.snapshot(venue, day, NOW + 1).avail[index] == before
    assert world.cancel(DEMO_USER_ID, reservation.resy_token, NOW + 2) is None


def test_second_booking_same_venue_day_is_a_conflict() -> None:
    world = fresh_world()
    venue, day = first_venue(world, "cool", with_open_slots_at=NOW)
    first, second = world.snapshot(venue, day, NOW).open_for(2)[:2]
    kwargs = {
        "uid": DEMO_USER_ID,
        "venue": venue,
        "day": day,
        "party_size": 2,
        "payment_method_id": None,
    }
    held = world.book(slot_index=first, now=NOW, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(BookingError) as info:
        world.book(slot_index=second, now=NOW, **kwargs)  # type: ignore[arg-type]
    assert info.value.kind == "conflict"
    assert info.value.existing is held


def test_booking_the_last_table_twice_is_gone() -> None:
    world = fresh_world()
    venue, day = first_venue(world, "cool", with_open_slots_at=NOW)
    index = world.snapshot(venue, day, NOW).open_for(2)[0]
    open_tables = world.snapshot(venue, day, NOW).avail[index]
    world.adjust(venue, day, index, 1 - open_tables)  # leave exactly one table
    world.book(
        uid=DEMO_USER_ID,
        venue=venue,
        day=day,
        slot_index=index,
        party_size=2,
        payment_method_id=None,
        now=NOW,
    )
    with pytest.raises(BookingError) as info:
        world.book(
            uid=99,
            venue=venue,
            day=day,
            slot_index=index,
            party_size=2,
            payment_method_id=None,
            now=NOW,
        )
    assert info.value.kind == "gone"


def test_party_size_outside_the_seating_is_not_offered(world: World) -> None:
    venue, day = first_venue(world, "cool", with_open_slots_at=NOW)
    snap = world.snapshot(venue, day, NOW)
    too_big = max(s.seating.max_size for s in snap.slots) + 1
    assert snap.open_for(too_big) == []


# -- clock and tokens -----------------------------------------------------------------------------


def test_clock_set_advance_and_speed() -> None:
    real = [1000.0]
    clock = SandboxClock(start=NOW, speed=1.0, real=lambda: real[0])
    real[0] += 10
    assert clock.now() == NOW + 10
    clock.set_speed(60)
    real[0] += 1
    assert clock.now() == NOW + 70
    clock.advance(30)
    assert clock.now() == NOW + 100
    clock.set(NOW)
    clock.set_speed(0)
    real[0] += 1000
    assert clock.now() == NOW
    with pytest.raises(ValueError):
        clock.set_speed(-1)


def test_demo_token_is_a_long_lived_consumer_jwt() -> None:
    header, _, signature = DEMO_AUTH_TOKEN.split(".")
    assert signature
    assert b'"HS256"' in b64url_decode(header)
    claims = jwt_claims(DEMO_AUTH_TOKEN, DEMO_SIGNING_KEY)
    assert claims is not None
    assert claims["gt"] == "consumer" and claims["uid"] == DEMO_USER_ID
    assert claims["exp"] > datetime(2099, 1, 1, tzinfo=UTC).timestamp()
    assert jwt_claims(DEMO_AUTH_TOKEN, b"another key") is None


def test_book_token_round_trip_and_tamper() -> None:
    claims = BookTokenClaims(
        6194, "2026-03-20", "19:00:00", 2, "Dining Room", DEMO_USER_ID, NOW + 300
    )
    token = mint_book_token(DEMO_SIGNING_KEY, claims)
    assert "|" in token
    assert parse_book_token(DEMO_SIGNING_KEY, token) == claims
    assert parse_book_token(DEMO_SIGNING_KEY, token.replace("|", "|1", 1)) is None
    assert parse_book_token(DEMO_SIGNING_KEY, "garbage") is None
