"""Priority times (`--time 19:30,19:00,20:15`) and recurring snipes (`--repeat`): the ranking,
the parsing, the series' days and release instants; and on each backend, the next occurrence
added once when one ends, is missed, or never when the series is cancelled."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from resywatch.cli.params import parse_times
from resywatch.db.engine import Database
from resywatch.db.models import ScheduledSnipe
from resywatch.errors import InvalidInput
from resywatch.services.booking import runs, schedule, series
from resywatch.services.booking.plan import BookingRequest, rank, want_for
from resywatch.services.vocabulary import (
    OpenSlot,
    Want,
    check_times,
    stored_times,
    times_text,
    validate_want,
)

DAY = date(2026, 12, 4)  # a Friday


def slot(hhmm: str, seating: str = "Dining Room", day: date = DAY) -> OpenSlot:
    starts = datetime.combine(day, time.fromisoformat(hhmm))
    return OpenSlot(7, "Don Angie", day, starts, seating, f"tok-{hhmm}-{seating}", f"{day}{hhmm}")


def order(slots: list[OpenSlot]) -> list[tuple[str, str | None]]:
    return [(f"{s.starts_at:%H:%M}", s.seating_type) for s in slots]


# --- ranking ---------------------------------------------------------------------------------


def test_the_first_listed_time_open_wins_then_the_rest_of_the_list_in_order() -> None:
    want, preferred = want_for(DAY, 2, at=[time(19, 30), time(19), time(20, 15)])
    assert want.times == (time(19, 30), time(19), time(20, 15))
    found = [slot("19:00"), slot("20:15"), slot("19:15"), slot("19:30"), slot("19:45")]
    ranked = rank(found, want, preferred)
    # Listed first, in the list's order; then the others by nearness to 19:30.
    assert order(ranked)[:3] == [("19:30", "Dining Room"), ("19:00", "Dining Room"),
                                 ("20:15", "Dining Room")]  # fmt: skip
    assert order(ranked)[3:] == [("19:15", "Dining Room"), ("19:45", "Dining Room")]
    # 19:30 gone: the second listed time beats the nearer unlisted 19:15 and 19:45.
    assert order(rank(found[:3] + found[4:], want, preferred))[0] == ("19:00", "Dining Room")


def test_unlisted_times_in_the_window_rank_after_every_listed_one_by_nearness_to_the_first() -> (
    None
):
    window = (time(18), time(22))
    want, preferred = want_for(DAY, 2, at=[time(20), time(18)], window=window)
    assert (want.time_from, want.time_to, preferred) == (time(18), time(22), time(20))
    found = [slot("21:30"), slot("20:15"), slot("18:00"), slot("19:30"), slot("18:15")]
    ranked = rank(found, want, preferred)
    # 20:00 is not open; 18:00 is listed; then 15, 30, 90 and 105 minutes from 20:00.
    assert [f"{s.starts_at:%H:%M}" for s in ranked] == ["18:00", "20:15", "19:30", "21:30", "18:15"]


def test_seating_types_break_ties_within_one_listed_time() -> None:
    want, preferred = want_for(DAY, 2, at=[time(19), time(20)], seating_types=["Bar", "Patio"])
    found = [slot("20:00", "Bar"), slot("19:00", "Dining Room"), slot("19:00", "Patio")]
    ranked = rank(found, want, preferred)
    assert order(ranked) == [("19:00", "Patio"), ("19:00", "Dining Room"), ("20:00", "Bar")]


@pytest.mark.parametrize("at", [time(19), time(18, 45), time(23, 45)])
def test_one_time_ranks_and_accepts_exactly_as_before(at: time) -> None:
    """A one-item list is the old `--time`: the same window and the same order as ranking by
    nearness alone (the slot at the time itself is the nearest)."""
    window = want_for(DAY, 2, at=at)
    assert window == want_for(DAY, 2, at=[at])
    want, preferred = window
    found = [slot(f"{h:02d}:{m:02d}", seat) for h in (18, 19, 23) for m in (0, 15, 30, 45)
             for seat in ("Bar", "Dining Room")]  # fmt: skip
    assert want.times == (at,)
    assert rank(found, want, preferred) == rank(found, replace(want, times=()), preferred)


def test_a_list_alone_accepts_half_an_hour_around_its_earliest_and_latest_times() -> None:
    want, preferred = want_for(DAY, 2, at=[time(19, 30), time(19), time(20, 15)])
    assert (want.time_from, want.time_to, preferred) == (time(18, 30), time(20, 45), time(19, 30))
    late, _ = want_for(DAY, 2, at=[time(23, 45), time(0, 10)])
    assert (late.time_from, late.time_to) == (time(0, 0), time(23, 59))


def test_a_list_is_checked_against_the_window_and_for_repeats() -> None:
    window = (time(18), time(21))
    check_times((time(19), time(18), time(21)), window)
    with pytest.raises(InvalidInput, match="--time 21:30 is outside --window 18:00-21:00"):
        check_times((time(19), time(21, 30)), window)
    with pytest.raises(InvalidInput, match="19:00 twice"):
        check_times((time(19), time(20), time(19)), None)
    with pytest.raises(InvalidInput, match="at most 12"):
        check_times(tuple(time(h) for h in range(13)), None)
    request = BookingRequest("7", DAY, 2, times=(time(19), time(22)), window=window)
    with pytest.raises(InvalidInput, match="outside --window"):
        request.want(DAY)
    # Every want is checked alike: a watch's or a notify request's too.
    with pytest.raises(InvalidInput, match="lists 19:00 twice"):
        validate_want(Want(DAY, DAY, 2, times=(time(19), time(19))), DAY)


def test_a_time_list_parses_in_order() -> None:
    assert parse_times("19:30,19:00, 20:15") == (time(19, 30), time(19), time(20, 15))
    assert parse_times("7:05") == (time(7, 5),)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("19:75", "'19:75' is not a time of day"),
        ("19:00,,20:00", "has an empty item"),
        ("19:00,", "has an empty item"),
        ("", "has an empty item"),
        ("19:00,20:00,19:00", "lists 19:00 twice"),
        ("19:00,7pm", "'7pm' is not a time of day"),
    ],
)
def test_a_bad_time_list_names_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        parse_times(text)


# --- the series' rule and instants -----------------------------------------------------------


def test_repeat_rules() -> None:
    assert series.parse_repeat("daily", DAY).text == "daily"
    assert series.parse_repeat("weekly", DAY).text == "weekly:fri"  # --date's weekday
    rule = series.parse_repeat("Weekly:friday, mon", DAY)
    assert rule.text == "weekly:mon,fri"
    assert rule.after(DAY) == date(2026, 12, 7) and rule.after(date(2026, 12, 7)) == DAY + (
        timedelta(days=7)
    )
    assert series.parse_repeat("daily", DAY).after(DAY) == DAY + timedelta(days=1)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("monthly", "is not a rule"),
        ("daily:mon", "is not a rule"),
        ("weekly:", "'' is not a weekday"),
        ("weekly:mon,,fri", "'' is not a weekday"),
        ("weekly:funday", "'funday' is not a weekday"),
        ("weekly:mon,monday", "names mon twice"),
    ],
)
def test_a_bad_repeat_rule_is_refused(text: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        series.parse_repeat(text, DAY)


def snipe_row(release_at: datetime, **fields: object) -> ScheduledSnipe:
    values: dict[str, object] = {
        "venue_id": 7, "venue_name": "Don Angie", "slot_date": DAY, "party_size": 2,
        "release_at": release_at, "release_source": "lead-days", "max_total": 0.0,
        "max_cancel_fee": 50.0, "lead_s": 3.0, "poll_interval_s": 0.2, "deadline_s": 60.0,
        "late_s": 120.0, "request_budget": 900, "repeat": "weekly:fri", "days_ahead": 14,
        "release_zone": "America/New_York", "preferred_times": ["19:30", "19:00"],
    }  # fmt: skip
    values.update(fields)
    return ScheduledSnipe.model_validate(values)


def test_each_day_is_released_at_the_same_wall_clock_time_across_daylight_saving() -> None:
    # Oct 16 is released Oct 2 at 09:00 EDT (13:00 UTC); Nov 20 on Nov 6, after the clocks
    # went back on Nov 1: 09:00 EST, which is 14:00 UTC.
    row = snipe_row(datetime(2026, 10, 2, 13, tzinfo=UTC), slot_date=date(2026, 10, 16))
    assert series.release_for(row, date(2026, 11, 20)) == datetime(2026, 11, 6, 14, tzinfo=UTC)


def test_the_next_day_skips_those_already_over() -> None:
    release = datetime(2026, 11, 20, 14, tzinfo=UTC)  # DAY - 14 days, 09:00 EST
    row = snipe_row(release)
    assert series.next_day(row, release) == DAY + timedelta(days=7)
    # Three weeks went by with nothing running: the next is the first not yet over.
    assert series.next_day(row, release + timedelta(days=21)) == DAY + timedelta(days=21)
    after = release + timedelta(days=21, seconds=row.late_s + row.deadline_s)
    assert series.next_day(row, after) == DAY + timedelta(days=28)
    assert series.next_day(snipe_row(release, repeat=None), release) is None


# --- on each backend -------------------------------------------------------------------------


def add_series(db: Database, release_at: datetime, **fields: object) -> int:
    with db.write() as session:
        row = snipe_row(release_at, **fields)
        session.add(row)
        session.flush()
        row.series_id = row.id
        assert row.id is not None
        return row.id


def occurrences(db: Database, series_id: int) -> list[ScheduledSnipe]:
    with db.read() as session:
        return list(
            session.exec(
                select(ScheduledSnipe)
                .where(col(ScheduledSnipe.series_id) == series_id)
                .order_by(col(ScheduledSnipe.slot_date))
            ).all()
        )


def test_an_ended_occurrence_adds_its_next_once(db: Database) -> None:
    now = datetime(2026, 11, 20, 14, 5, tzinfo=UTC)
    first = add_series(db, datetime(2026, 11, 20, 14, tzinfo=UTC))
    for _ in range(2):  # a second finish (a retry, another worker) adds nothing
        with db.write() as session:
            row = session.get(ScheduledSnipe, first)
            assert row is not None
            row.status = "done"
            series.follow_up(session, row, now)
    rows = occurrences(db, first)
    assert [(r.slot_date, r.status) for r in rows] == [
        (DAY, "done"),
        (DAY + timedelta(days=7), "scheduled"),
    ]
    following = rows[1]
    assert following.release_at == datetime(2026, 11, 27, 14, tzinfo=UTC)
    assert (following.preferred_times, following.repeat, following.runs) == (
        ["19:30", "19:00"], "weekly:fri", 0,
    )  # fmt: skip
    assert following.outcome is None and following.claimed_by is None
    # The unique (series, day) index: whatever the path, never two rows for one day.
    with pytest.raises(IntegrityError), db.write() as session:
        session.add(snipe_row(following.release_at, slot_date=following.slot_date,
                              series_id=first))  # fmt: skip


def test_a_missed_occurrence_is_recorded_and_the_series_goes_on(db: Database) -> None:
    release = datetime(2026, 11, 20, 14, tzinfo=UTC)
    first = add_series(db, release)
    missed = runs._mark_missed(db, release + timedelta(hours=1))
    assert [m.status for m in missed] == ["missed"]
    assert [(r.slot_date, r.status) for r in occurrences(db, first)] == [
        (DAY, "missed"),
        (DAY + timedelta(days=7), "scheduled"),
    ]
    assert runs._mark_missed(db, release + timedelta(hours=1)) == []


def test_cancelling_any_occurrence_id_stops_the_series(db: Database) -> None:
    release = datetime(2026, 11, 20, 14, tzinfo=UTC)
    first = add_series(db, release)
    runs._mark_missed(db, release + timedelta(hours=1))
    cancelled = schedule.cancel_snipe(db, first, release + timedelta(hours=2))  # the first's id
    assert (cancelled.day, cancelled.status, cancelled.series_id) == (
        DAY + timedelta(days=7), "cancelled", first,
    )  # fmt: skip
    assert runs._mark_missed(db, release + timedelta(days=30)) == []
    assert len(occurrences(db, first)) == 2
    assert schedule.list_snipes(db) == []
    with pytest.raises(InvalidInput, match="already missed, and no day of its series"):
        schedule.cancel_snipe(db, first, release + timedelta(days=30))


def test_two_workers_ending_one_occurrence_at_once_add_one_next(db: Database) -> None:
    """The second's existence check cannot see the first's uncommitted row: on PostgreSQL
    its insert waits on the unique index and, once the first commits, loses in a savepoint
    (its own work kept); on SQLite its write waits for the first and then sees the row."""
    now = datetime(2026, 11, 20, 14, 5, tzinfo=UTC)
    first = add_series(db, datetime(2026, 11, 20, 14, tzinfo=UTC))
    added: list[ScheduledSnipe | None] = []

    def second_worker() -> None:
        with db.write() as session:
            row = session.get(ScheduledSnipe, first)
            assert row is not None
            added.append(series.follow_up(session, row, now))
            row.message = "the second worker's own write"

    with db.write() as session:
        row = session.get(ScheduledSnipe, first)
        assert row is not None
        assert series.follow_up(session, row, now) is not None
        worker = threading.Thread(target=second_worker)
        worker.start()
        worker.join(timeout=1.0)  # it waits on this transaction
        assert worker.is_alive()
    worker.join(timeout=30)
    assert added == [None]
    rows = occurrences(db, first)
    assert [r.slot_date for r in rows] == [DAY, DAY + timedelta(days=7)]
    assert rows[0].message == "the second worker's own write"


@pytest.mark.parametrize("times", [(), (time(20),), (time(19, 30), time(19), time(20, 15))])
def test_the_wanted_times_are_stored_and_read_back_as_given(times: tuple[time, ...]) -> None:
    assert stored_times(times_text(times)) == times


def test_a_watch_keeps_its_one_time_for_auto_book() -> None:
    """A watch's `--time 20:00 --window 18:00-21:00` has no other column for its time: read
    back for a check's auto-book, it still ranks 20:00 first, not the window's middle."""
    times = stored_times(times_text((time(20),)))
    want = Want(DAY, DAY, 2, time(18), time(21), times=times)
    _, preferred = want_for(DAY, 2, at=want.times, window=(time(18), time(21)))
    found = [slot("19:30"), slot("20:00"), slot("18:00")]
    assert order(rank(found, want, preferred))[0] == ("20:00", "Dining Room")
