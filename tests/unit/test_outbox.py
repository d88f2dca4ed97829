"""The outbox's builders: each kind's dedupe key, title, body, link and payload, pinned.

Webhook and NDJSON consumers read these (the payload is the document's `payload` field), and
the dedupe keys are what make a message at-most-once and what `retire_pending` deletes by,
so a change to any of them is a change of contract, not a refactor.
"""

from __future__ import annotations

import json
import re
import types
import typing
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from resywatch.db.engine import Database
from resywatch.db.models import (
    BookingAttempt,
    DropEvent,
    JobRun,
    Notification,
    NotificationKind,
    NotifyRequest,
    ScheduledSnipe,
    Venue,
    Watch,
)
from resywatch.db.models.booking import Outcome
from resywatch.services import outbox
from resywatch.services.booking.outcomes import BookingResult
from resywatch.services.channels.base import Message
from resywatch.services.vocabulary import OpenSlot

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
DAY = date(2026, 12, 1)  # a Tuesday
AT_7_30 = datetime(2026, 12, 1, 19, 30)  # venue-local
VENUE = Venue(
    id=25973, name="Don Angie", url_slug="don-angie", location_slug="new-york-ny",
    neighborhood="West Village",
)  # fmt: skip
PAGE = "https://resy.com/cities/new-york-ny/venues/don-angie?date=2026-12-01&seats={party}"


def slot(hhmm: str, seating: str | None, slot_id: str) -> OpenSlot:
    hour, minute = map(int, hhmm.split(":"))
    return OpenSlot(
        venue_id=VENUE.id, venue_name="Don Angie", day=DAY,
        starts_at=datetime.combine(DAY, time(hour, minute)), seating_type=seating,
        token="t", slot_id=slot_id,
    )  # fmt: skip


SLOTS = [slot("19:30", "Bar", "s2"), slot("19:00", "Dining Room", "s1"), slot("19:00", None, "s3")]


def watch(**overrides: Any) -> Watch:
    fields = dict(
        id=12, kind="venues", venue_ids=[VENUE.id], date_from=DAY, date_to=DAY, party_size=2,
        created_at=NOW,
    )  # fmt: skip
    return Watch(**fields | overrides)


def drop_event() -> DropEvent:
    return DropEvent(
        id=41, slot_id="s1", bucket_id="2026-12-01_19:00", venue_id=VENUE.id,
        venue_name="Don Angie", starts_at=datetime(2026, 12, 1, 19, 30), slot_date=DAY,
        party_sizes=[2, 4], seating_types=["Dining Room"], is_hotspot=True, opened_at=NOW,
    )  # fmt: skip


def request(id: int | None = 5) -> NotifyRequest:
    return NotifyRequest(
        id=id, venue_id=VENUE.id, venue_name="Don Angie", date_from=DAY, date_to=DAY,
        party_size=4,
    )  # fmt: skip


def snipe() -> ScheduledSnipe:
    return ScheduledSnipe(
        id=3, venue_id=VENUE.id, venue_name="Don Angie", slot_date=DAY, party_size=2,
        release_at=NOW, release_source="at", max_total=0, max_cancel_fee=50, lead_s=3,
        poll_interval_s=0.2, deadline_s=60, late_s=120, request_budget=900,
    )  # fmt: skip


def built() -> dict[str, Notification]:
    """One message of every sort, by the label README's payload table gives it."""
    attempt = BookingAttempt(
        id=88, source="snipe", source_id=3, venue_id=VENUE.id, slot_date=DAY, party_size=2,
        outcome="booked",
    )  # fmt: skip
    result = BookingResult(
        outcome=Outcome.BOOKED, message="m", venue_id=VENUE.id, venue_name="Don Angie",
        day=DAY, party_size=2,
    )  # fmt: skip
    return {
        "drop": outbox.drop_opened(drop_event(), VENUE),
        "watch_hit (slots)": outbox.watch_hit(watch(), SLOTS, VENUE),
        "watch_hit (new venue)": outbox.new_venue(watch(), DAY, "Café Mars"),
        "notify_hit": outbox.notify_hit(request(), SLOTS, VENUE),
        "booking": outbox.booking_outcome(attempt, result),
        "booking (snipe missed)": outbox.snipe_missed(snipe(), "no runner"),
        "account": outbox.token_lapsing("bob", NOW + timedelta(days=6), NOW, why="refused"),
        "test": outbox.test_message(NOW),
    }


def fits(value: object, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if origin is list:
        return isinstance(value, list) and all(fits(v, args[0]) for v in value)
    if hint is type(None):
        return value is None
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def assert_fits(payload: dict[str, object], payload_type: Any) -> None:
    """The payload has exactly the typed fields, each of its declared type."""
    hints = typing.get_type_hints(payload_type)
    assert set(payload) == set(hints)
    for name, hint in hints.items():
        assert fits(payload[name], hint), (name, payload[name], hint)


def test_drop_opened() -> None:
    event = drop_event()
    row = outbox.drop_opened(event, VENUE)
    assert (row.dedupe_key, row.kind) == ("drop:41", "drop")
    assert row.title == "Don Angie: a table just opened"
    assert row.body == (
        "Don Angie in West Village: Tue Dec 1 at 7:30 PM, party of 2/4 (Dining Room)."
    )
    assert row.url == PAGE.format(party=2)  # the smallest party the slot takes
    assert row.created_at == row.next_attempt_at == NOW  # its age is the drop's
    assert row.payload == {
        "drop_event_id": 41,
        "venue_id": VENUE.id,
        "venue_name": "Don Angie",
        "starts_at": "2026-12-01T19:30:00",
        "party_sizes": [2, 4],
        "seating_types": ["Dining Room"],
        "is_hotspot": True,
    }
    assert_fits(row.payload, outbox.DropPayload)
    event.seating_types = []
    bare = outbox.drop_opened(event, None)
    assert bare.url is None
    assert bare.body == "Don Angie: Tue Dec 1 at 7:30 PM, party of 2/4."


def test_watch_hit() -> None:
    row = outbox.watch_hit(watch(), SLOTS, VENUE)
    digest = "fc5311a6d9e8d5ff"  # sha256("s1:Dining Room|s2:Bar|s3:")[:16]
    assert (row.dedupe_key, row.kind) == (f"watch:12:{VENUE.id}:2026-12-01:{digest}", "watch_hit")
    assert row.title == "Don Angie has a table"
    assert row.body == (
        "Don Angie: Tue Dec 1 19:00, 19:30 (Bar, Dining Room), party of 2 (watch 12)."
    )
    assert row.url == PAGE.format(party=2)
    assert row.payload == {
        "watch_id": 12,
        "venue_id": VENUE.id,
        "venue_name": "Don Angie",
        "day": "2026-12-01",
        "times": ["19:00", "19:30"],
        "seating_types": ["Bar", "Dining Room"],
        "party_size": 2,
        "slot_keys": ["s1:Dining Room", "s2:Bar", "s3:"],
    }
    assert_fits(row.payload, outbox.WatchHitPayload)
    # The key names the slots: the same slots in another order are the same message.
    assert outbox.watch_hit(watch(), SLOTS[::-1], VENUE).dedupe_key == row.dedupe_key
    assert outbox.watch_hit(watch(), SLOTS[:2], VENUE).dedupe_key != row.dedupe_key
    assert row.dedupe_key.startswith(outbox.watch_key_prefixes(12)[0])


def test_new_venue() -> None:
    row = outbox.new_venue(watch(kind="new-venues"), DAY, "Café Mars")
    assert (row.dedupe_key, row.kind) == ("new-venue:12:2026-12-01:cafe mars", "watch_hit")
    assert row.title == "New on Resy for Dec 1: Café Mars"
    assert row.body == "Café Mars now has tables on Tue Dec 1 for 2 (watch 12)."
    assert row.url is None
    assert row.payload == {"watch_id": 12, "venue_name": "Café Mars", "day": "2026-12-01"}
    assert_fits(row.payload, outbox.NewVenuePayload)
    assert row.dedupe_key.startswith(outbox.watch_key_prefixes(12)[1])


def test_notify_hit() -> None:
    row = outbox.notify_hit(request(), SLOTS, VENUE)
    assert (row.dedupe_key, row.kind) == ("notify:5", "notify_hit")
    assert row.title == "Don Angie has a table for you"
    assert row.body == "Don Angie: Tue Dec 1 19:00, 19:30 (Bar, Dining Room), party of 4."
    assert row.url == PAGE.format(party=4)
    found = {
        "days": ["2026-12-01"],
        "times": ["2026-12-01 19:00", "2026-12-01 19:30"],
        "seating_types": ["Bar", "Dining Room"],
    }
    assert outbox.request_found(SLOTS) == found  # also the request's stored result
    assert row.payload == {"notify_request_id": 5, "venue_id": VENUE.id} | found
    assert_fits(row.payload, outbox.NotifyHitPayload)


@pytest.mark.parametrize(
    ("outcome", "starts_at", "title"),
    [
        (Outcome.BOOKED, AT_7_30, "Booked: Don Angie Tue Dec 1 19:30 for 2"),
        (Outcome.DRY_RUN, AT_7_30, "Dry run: Don Angie Tue Dec 1 19:30 is bookable"),
        (Outcome.NO_SLOT, None, "Not booked: Don Angie Tue Dec 1 (no_slot)"),
    ],
)  # fmt: skip
def test_booking_outcome(outcome: Outcome, starts_at: datetime | None, title: str) -> None:
    attempt = BookingAttempt(
        id=88, source="watch", source_id=12, venue_id=VENUE.id, slot_date=DAY, party_size=2,
        outcome=outcome.value,
    )  # fmt: skip
    result = BookingResult(
        outcome=outcome, message="what happened", venue_id=VENUE.id, venue_name="Don Angie",
        day=DAY, party_size=2, starts_at=starts_at,
        seating_type="Bar" if starts_at else None,
        reservation_id=777 if outcome is Outcome.BOOKED else None,
    )  # fmt: skip
    row = outbox.booking_outcome(attempt, result)
    assert (row.dedupe_key, row.kind) == ("booking:88", "booking")
    assert (row.title, row.body, row.url) == (title, "what happened", None)
    assert row.payload == {
        "attempt_id": 88,
        "source": "watch",
        "source_id": 12,
        "outcome": outcome.value,
        "venue_id": VENUE.id,
        "venue_name": "Don Angie",
        "day": "2026-12-01",
        "time": "19:30" if starts_at else None,
        "seating_type": "Bar" if starts_at else None,
        "party_size": 2,
        "reservation_id": 777 if outcome is Outcome.BOOKED else None,
    }
    assert_fits(row.payload, outbox.BookingPayload)


def test_snipe_missed() -> None:
    row = outbox.snipe_missed(snipe(), "its runner stopped before the snipe ended")
    assert (row.dedupe_key, row.kind) == ("snipe-missed:3", "booking")
    assert row.title == "Missed: the snipe for Don Angie on 2026-12-01"
    assert row.body == "its runner stopped before the snipe ended"
    assert row.payload == {"snipe_id": 3, "venue_id": VENUE.id, "outcome": "missed"}
    assert_fits(row.payload, outbox.SnipeMissedPayload)


def test_test_message_is_fresh_each_time() -> None:
    first, second = outbox.test_message(NOW), outbox.test_message(NOW)
    assert first.kind == "test" and first.dedupe_key.startswith("test:")
    assert first.dedupe_key != second.dedupe_key  # never deduplicated away
    assert (first.title, first.body, first.url, first.payload, first.created_at) == (
        "resywatch: test notification",
        "If you can read this, resywatch can notify you here.",
        None,
        {},
        NOW,
    )


def test_every_kind_has_its_builder() -> None:
    kinds = {row.kind for row in built().values()}
    assert kinds == set(NotificationKind)
    assert all(type(k) is NotificationKind for k in kinds)  # StrEnums: stored as their strings


@pytest.mark.parametrize("build", [outbox.watch_hit, outbox.notify_hit])
def test_a_hit_links_the_venue_page_only_when_its_slug_is_known(build: Any) -> None:
    owner = watch() if build is outbox.watch_hit else request()
    assert build(owner, SLOTS, None).url is None
    assert build(owner, SLOTS, Venue(id=VENUE.id, name="Don Angie")).url is None  # no slug


def test_the_readers_find_what_the_builders_wrote(db: Database) -> None:
    """A watch's announced slots and `watch show`'s hits are read back from the rows the
    builders wrote; another watch's rows are not its own."""
    mine, other = watch(id=12), watch(id=13)
    rows = [
        outbox.watch_hit(mine, SLOTS[:2], VENUE),
        outbox.new_venue(mine, DAY, "Café Mars"),
        outbox.watch_hit(other, SLOTS[2:], VENUE),
    ]
    with db.write() as session:
        for row in rows:
            row.created_at = NOW
            session.add(row)
    with db.read() as session:
        assert outbox.notified_slot_keys(session, 12) == {"s1:Dining Room", "s2:Bar"}
        assert outbox.notified_slot_keys(session, 13) == {"s3:"}
        query = select(Notification).where(outbox.hits_of(mine)).order_by(col(Notification.id))
        found = [outbox.found_hit(n) for n in session.exec(query)]
    assert [(h.kind, h.venue_id, h.venue_name, h.day, h.times, h.seating_types) for h in found] == [
        ("slots", VENUE.id, "Don Angie", DAY, ["19:00", "19:30"], ["Bar", "Dining Room"]),
        ("new-venue", None, "Café Mars", DAY, [], []),
    ]


@pytest.mark.parametrize(
    ("row", "kept"),
    [
        (outbox.watch_hit(watch(), SLOTS, None), True),  # its day is not past: still dedupes
        (outbox.new_venue(watch(), DAY, "X"), True),
        (outbox.watch_hit(watch(), SLOTS, None), False),  # checked on the day after
        (outbox.test_message(NOW), False),
    ],
)
def test_still_dedupes(row: Notification, kept: bool) -> None:
    today = DAY if kept else date(2026, 12, 2)
    assert outbox.still_dedupes(row, today) is kept


def test_a_notify_hit_need_not_stay_its_request_is_satisfied_with_it() -> None:
    row = outbox.notify_hit(request(), SLOTS, VENUE)
    assert row.payload["days"] == [DAY.isoformat()]  # a day still to come...
    assert outbox.still_dedupes(row, DAY) is False  # ...but nothing is checked against it


# --- the document channels receive: README's contract ----------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"
TYPES: dict[str, Any] = {"string": str, "integer": int, "object": dict, "null": type(None)}


def readme_tables() -> list[list[list[str]]]:
    """The tables of README's "Messages" section: rows of cells, header and rule left out."""
    text = README.read_text()
    section = text.split("## Messages: what webhooks and NDJSON receive", 1)[1].split("\n## ")[0]
    tables: list[list[list[str]]] = []
    for block in section.split("\n\n"):
        lines = [line for line in block.strip().splitlines() if line.startswith("|")]
        if lines:
            tables.append([[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]])
    return tables


def ticked(cell: str) -> list[str]:
    """The first `quoted` name of each comma-separated part of a cell."""
    return [re.findall(r"`([^`]+)`", part)[0] for part in cell.split(", ") if "`" in part]


def test_the_document_has_exactly_readmes_fields_and_types() -> None:
    fields = readme_tables()[0]
    document = Message.from_row(outbox.drop_opened(drop_event(), VENUE)).document()
    assert [name.strip("`") for name, _, _ in fields] == list(document)
    for name, kinds, _ in fields:
        allowed = tuple(TYPES[k] for k in kinds.split(" or "))
        assert isinstance(document[name.strip("`")], allowed), name
    test = Message.from_row(outbox.test_message(NOW)).document()
    assert (test["id"], test["url"], test["payload"]) == (None, None, {})  # the nulls allowed


def test_readmes_example_is_what_a_drop_sends() -> None:
    example = re.search(r"```json\n(.*?)```", README.read_text(), re.DOTALL)
    assert example is not None
    row = outbox.drop_opened(drop_event(), VENUE)
    row.id = 41  # as stored
    message = Message.from_row(row)
    assert json.loads(example.group(1)) == json.loads(json.dumps(message.document()))


def test_readmes_payload_table_matches_the_builders() -> None:
    rows = readme_tables()[1]
    messages = built()
    assert [label.replace("`", "") for label, _, _ in rows] == list(messages)
    for label, key, payload in rows:
        row = messages[label.replace("`", "")]
        assert row.kind == ticked(label)[0]
        pattern = re.sub(r"<[^>]+>", ".+", key.strip("`"))
        assert re.fullmatch(pattern, row.dedupe_key), label
        assert ticked(payload) == list(row.payload), label


def test_the_enums_store_the_same_strings_as_before(db: Database) -> None:
    """Kinds and statuses are StrEnums: what reaches the database (and any SQL or report
    reading it) is the plain string it always was, on both backends."""
    with db.write() as session:
        session.add(Venue(id=VENUE.id, name="Don Angie", first_seen_at=NOW, updated_at=NOW))
        for row in built().values():
            session.add(row)
        session.add(watch(id=None))
        session.add(request(id=None))
        session.add(snipe())
        session.add(JobRun(job_name="discover", started_at=NOW))
    with db.read() as session:
        stored = session.execute(text("SELECT kind, status FROM notification ORDER BY id")).all()
        watch_row = session.execute(text("SELECT kind, status FROM watch")).one()
        request_status = session.execute(text("SELECT status FROM notify_request")).scalar_one()
        snipe_status = session.execute(text("SELECT status FROM scheduled_snipe")).scalar_one()
        run_status = session.execute(text("SELECT status FROM job_run")).scalar_one()
    assert [tuple(r) for r in stored] == [
        (kind, "pending")
        for kind in [
            "drop",
            "watch_hit",
            "watch_hit",
            "notify_hit",
            "booking",
            "booking",
            "account",
            "test",
        ]
    ]
    assert tuple(watch_row) == ("venues", "active")
    assert (request_status, snipe_status, run_status) == ("pending", "scheduled", "running")
