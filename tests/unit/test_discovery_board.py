"""The drop board (just opened / still open), its header, filters and calendar, on a real
database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from drop_world import DropWorld

from resywatch.db.engine import Database
from resywatch.db.models import JobHeartbeat
from resywatch.errors import InvalidInput
from resywatch.services.discovery import board
from resywatch.services.discovery.feed import FeedFilter, feed
from resywatch.services.discovery.filters import BoardFilter

NOW = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
DAY, NEXT = date(2026, 12, 4), date(2026, 12, 5)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def world(db: Database) -> DropWorld:
    return DropWorld(db, NOW)


def _names(days: list[board.DayBoard]) -> list[tuple[date, str, list[str]]]:
    return [(d.date, v.venue_name, v.times) for d in days for v in d.venues]


def test_one_entry_per_venue_per_date_with_its_times(db: Database, world: DropWorld) -> None:
    b1, b2 = world.bucket(DAY), world.bucket(NEXT)
    first = world.drop(1, DAY, "19:30", opened_ago=3 * MINUTE, seen_by=[b1])
    second = world.drop(1, DAY, "19:00", opened_ago=1 * MINUTE, party=(4,), seen_by=[b1])
    world.drop(1, NEXT, "20:00", opened_ago=2 * MINUTE, seen_by=[b2])
    world.drop(2, DAY, "18:00", opened_ago=2 * MINUTE, hotspot=True, seen_by=[b1])
    with db.read() as session:
        found = board.just_opened(session, BoardFilter(), NOW, minutes=10)
    assert _names(found.just_opened) == [
        (DAY, "Venue 2", ["18:00"]),  # hotspots first within a date
        (DAY, "Venue 1", ["19:00", "19:30"]),
        (NEXT, "Venue 1", ["20:00"]),
    ]
    entry = found.just_opened[0].venues[1]
    assert entry.drop_ids == sorted([first, second]) and entry.party_sizes == [2, 4]
    assert entry.opened_at == NOW - 3 * MINUTE and entry.last_opened_at == NOW - MINUTE
    assert found.still_open is None


def test_still_open_is_split_from_just_opened(db: Database, world: DropWorld) -> None:
    b = world.bucket(DAY)
    world.drop(1, DAY, "19:00", opened_ago=5 * MINUTE, seen_by=[b])
    world.drop(2, DAY, "19:00", opened_ago=40 * MINUTE, seen_by=[b])
    world.drop(3, DAY, "19:00", opened_ago=50 * MINUTE, open_for=10 * MINUTE, seen_by=[])
    with db.read() as session:
        found = board.just_opened(session, BoardFilter(), NOW, minutes=10, still_open=True)
    assert _names(found.just_opened) == [(DAY, "Venue 1", ["19:00"])]
    assert found.still_open is not None
    assert _names(found.still_open) == [(DAY, "Venue 2", ["19:00"])]  # the closed one: neither


def test_stale_buckets_are_left_out_and_named_and_the_header_says_how_current(
    db: Database, world: DropWorld
) -> None:
    fresh = world.bucket(DAY, "19:00", scanned_ago=2 * MINUTE)
    stale = world.bucket(NEXT, "19:00", scanned_ago=timedelta(hours=5))
    never = world.bucket(NEXT, "15:00", scanned_ago=None)
    world.drop(1, DAY, "19:00", opened_ago=MINUTE, seen_by=[fresh])
    world.drop(2, NEXT, "19:00", opened_ago=MINUTE, seen_by=[stale])
    world.drop(3, DAY, "20:00", opened_ago=MINUTE, seen_by=[fresh])
    with db.write() as session:
        session.add(JobHeartbeat(job_name="discovery", next_run_at=NOW + 30 * timedelta(seconds=1)))
    with db.read() as session:
        found = board.just_opened(session, BoardFilter(), NOW, minutes=10)
    assert [v.venue_id for d in found.just_opened for v in d.venues] == [1, 3]
    assert found.stale_buckets == sorted([stale, never])
    assert found.last_scan_at == NOW - 2 * MINUTE
    assert found.next_scan_at == NOW + timedelta(seconds=30)
    assert (found.venues_scanned, found.slots_scanned, found.buckets_fresh) == (2, 2, 1)


def test_filters_dates_anchor_party_time_hotspots_venue(db: Database, world: DropWorld) -> None:
    early, late = world.bucket(DAY, "15:00"), world.bucket(DAY, "19:00")
    other = world.bucket(NEXT, "19:00")
    world.drop(1, DAY, "15:30", opened_ago=MINUTE, name="Lilia", seen_by=[early])
    both = [early, late]
    world.drop(2, DAY, "17:00", opened_ago=MINUTE, name="Carbone", party=(4,), seen_by=both)
    world.drop(3, DAY, "20:30", opened_ago=MINUTE, name="Don Angie", hotspot=True, seen_by=[late])
    world.drop(4, NEXT, "19:00", opened_ago=MINUTE, name="Via Carota", seen_by=[other])

    def ids(**given: object) -> list[int]:
        where = BoardFilter(**given)  # type: ignore[arg-type]
        with db.read() as session:
            found = board.just_opened(session, where, NOW, minutes=10)
        return sorted(v.venue_id for d in found.just_opened for v in d.venues)

    assert ids() == [1, 2, 3, 4]
    assert ids(dates=(NEXT,)) == [4]
    assert ids(date_from=NEXT) == [4] and ids(date_until=DAY) == [1, 2, 3]
    assert ids(anchor=time(15)) == [1, 2]  # 17:00 is in both anchors' windows
    assert ids(anchor=time(19)) == [2, 3, 4]
    assert ids(party_size=4) == [2]
    assert ids(after=time(17), before=time(20)) == [2, 4]
    assert ids(hotspots_only=True) == [3]
    assert ids(venue="carota") == [4]
    # The feed takes the same filters, closed drops included.
    with db.read() as session:
        fed = feed(session, FeedFilter(where=BoardFilter(anchor=time(15), dates=(DAY,))), NOW)
    assert sorted(d.venue_id for d in fed) == [1, 2]


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        ({"date_from": NEXT, "date_until": DAY}, "is after --until"),
        ({"dates": (DAY,), "date_from": DAY}, "not both"),
        ({"after": time(20), "before": time(18)}, "later than --before"),
    ],
)
def test_contradictory_filters_are_refused(given: dict[str, object], complaint: str) -> None:
    with pytest.raises(InvalidInput, match=complaint):
        BoardFilter(**given)  # type: ignore[arg-type]


def test_calendar_counts_open_venues_and_drops_per_date(db: Database, world: DropWorld) -> None:
    b1, b2 = world.bucket(DAY), world.bucket(NEXT)
    world.drop(1, DAY, "19:00", opened_ago=MINUTE, seen_by=[b1])
    world.drop(1, DAY, "19:30", opened_ago=3 * timedelta(hours=1), seen_by=[b1])
    world.drop(2, DAY, "20:00", opened_ago=MINUTE, hotspot=True, seen_by=[b1])
    world.drop(3, NEXT, "20:00", opened_ago=MINUTE, open_for=MINUTE, seen_by=[b2])
    days = board.calendar_days(BoardFilter(), DAY - timedelta(days=1), 3)
    assert days == [DAY - timedelta(days=1), DAY, NEXT]
    with db.read() as session:
        found = board.calendar(session, BoardFilter(), NOW, days=days)
    assert [(d.date, d.venues, d.drops, d.hotspot_venues) for d in found.days] == [
        (DAY - timedelta(days=1), 0, 0, 0),
        (DAY, 2, 3, 1),
        (NEXT, 0, 0, 0),  # its one drop has closed
    ]
    assert board.calendar_days(BoardFilter(dates=(NEXT, DAY)), DAY, 14) == [DAY, NEXT]
    assert board.calendar_days(BoardFilter(date_until=NEXT), DAY, 14) == [DAY, NEXT]
    with pytest.raises(InvalidInput, match="before today"):
        board.calendar_days(BoardFilter(date_until=DAY), NEXT, 14)
