"""`discover explain` and `discover buckets --show`, on scans applied to a real database:
a slot in the baseline, one that just opened, one that closed, one that flickered, and
slots no scan has seen (outside the window, outside the hours, not scanned, not offered)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import delete

from resywatch.config import load_settings
from resywatch.db.engine import Database
from resywatch.db.models import DropEvent, Venue
from resywatch.errors import InvalidInput, NotFound
from resywatch.services.curated import HotspotMatcher
from resywatch.services.discovery import buckets
from resywatch.services.discovery.apply import apply_scan, sync_window
from resywatch.services.discovery.explain import (
    Verdict,
    bucket_contents,
    explain,
    parse_slot_id,
    slot_of,
)
from resywatch.services.discovery.fetch import BucketScan, SeenSlot
from resywatch.services.vocabulary import slot_id

SETTINGS = load_settings(environ={"RESYWATCH_DISCOVERY_DAYS": "2"})
T0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # noon in New York: Dec 1 and 2 are the window
BUCKET = buckets.Bucket(date(2026, 12, 1), time(19))
# name: (venue id, local time)
SLOTS = {
    "A": (1, time(19, 0)),  # in the baseline, stays
    "C": (3, time(19, 30)),  # in the baseline, goes
    "N": (2, time(20, 0)),  # opens at the second scan, stays open
    "G": (5, time(18, 0)),  # opens at the second scan, closes at the third
    "F": (4, time(18, 30)),  # opens, closes, reopens within the quiet period
}
SCANS = [{"A", "C"}, {"A", "C", "N", "G"}, {"A", "N", "F"}, {"A", "N"}, {"A", "N", "F"}]


def sid(name: str) -> str:
    venue, at = SLOTS[name]
    return slot_id(venue, datetime.combine(BUCKET.day, at))


def scan_of(names: set[str]) -> BucketScan:
    scan = BucketScan(BUCKET)
    for name in names:
        venue, at = SLOTS[name]
        starts = datetime.combine(BUCKET.day, at)
        scan.slots[sid(name)] = SeenSlot(sid(name), venue, f"Venue {venue}", starts, {2}, {"Bar"})
    return scan


@pytest.fixture
def scanned(db: Database) -> Database:
    with db.write() as session:
        for venue in range(1, 6):
            session.add(Venue(id=venue, name=f"Venue {venue}"))
        session.add(Venue(id=9, name="Don Angie"))
    sync_window(db, buckets.window(SETTINGS, T0), T0)
    key, matcher = buckets.search_key(SETTINGS), HotspotMatcher.default()
    for n, names in enumerate(SCANS):
        now = T0 + timedelta(seconds=30 * n)
        apply_scan(db, scan_of(names), key, matcher, now, lease=None, settings=SETTINGS)
    return db


def why(db: Database, name: str) -> object:
    with db.read() as session:
        return explain(session, SETTINGS, T0 + timedelta(minutes=5), sid(name))


def test_a_baseline_slot_is_not_news_even_when_it_goes(scanned: Database) -> None:
    stays, goes = why(scanned, "A"), why(scanned, "C")
    for found in (stays, goes):
        assert found.verdict == Verdict.BASELINE and not found.in_feed and found.drops == []
        assert found.first_seen_in_baseline and found.first_seen_by == BUCKET.id
        assert found.first_seen_at == T0
    assert stays.buckets[0].in_last_scan and "still open" in stays.reason
    assert not goes.buckets[0].in_last_scan
    assert "gone from its last scan" in goes.reason and "baseline" in goes.reason


def test_a_slot_that_just_opened_is_an_open_drop_first_seen_in_a_later_scan(
    scanned: Database,
) -> None:
    found = why(scanned, "N")
    assert found.verdict == Verdict.OPEN_DROP and found.in_feed
    assert found.first_seen_at == T0 + timedelta(seconds=30) and not found.first_seen_in_baseline
    assert [d.open for d in found.drops] == [True]
    assert "neither in that bucket's baseline nor in its previous scan" in found.reason
    assert "a fresh bucket still sees it" in found.reason
    assert found.venue_name == "Venue 2" and found.covering_buckets == [BUCKET.id]


def test_a_closed_drop_says_when_it_closed(scanned: Database) -> None:
    found = why(scanned, "G")
    assert found.verdict == Verdict.CLOSED_DROP and found.in_feed
    (drop,) = found.drops
    assert drop.closed_at == T0 + timedelta(seconds=60) and drop.duration_s == 30
    assert found.buckets == []  # a new slot's snapshot row goes when it closes; the drop stays
    assert found.first_seen_at == T0 + timedelta(seconds=30)
    assert any("closed after 0 min" in line for line in found.history)


def test_a_flicker_reopens_the_same_drop_and_says_so(scanned: Database) -> None:
    found = why(scanned, "F")
    assert found.verdict == Verdict.OPEN_DROP
    (drop,) = found.drops  # one drop, not two
    assert drop.reopen_count == 1 and drop.reopened_at == T0 + timedelta(seconds=120)
    assert "reopened 1 time(s) within the 30-minute quiet period" in found.reason


def test_a_slot_whose_drop_is_gone_is_seen_without_drop(scanned: Database) -> None:
    with scanned.write() as session:
        session.execute(delete(DropEvent).where(DropEvent.slot_id == sid("N")))
    assert why(scanned, "N").verdict == Verdict.SEEN_WITHOUT_DROP


@pytest.mark.parametrize(
    ("day", "at", "because"),
    [
        (date(2026, 12, 5), time(19), "outside the discovery window (2026-12-01 to 2026-12-02)"),
        (date(2026, 12, 1), time(12), "outside every bucket's hours (15:00 ± 2 h, 19:00 ± 2 h)"),
        (date(2026, 12, 2), time(19), "2026-12-02_19:00 have not been scanned yet"),
        (date(2026, 12, 1), time(21), "Resy did not offer it open for the party sizes"),
    ],
)
def test_a_slot_no_scan_saw_says_why(scanned: Database, day: date, at: time, because: str) -> None:
    with scanned.read() as session:
        slot, venue, starts = slot_of(session, "venue 2", day, at)
        found = explain(session, SETTINGS, T0, slot, venue=venue, starts_at=starts)
    assert found.verdict == Verdict.NOT_SEEN and not found.in_feed
    assert because in found.reason and found.venue_id == 2


def test_venue_date_time_names_the_same_slot_as_its_id(scanned: Database) -> None:
    with scanned.read() as session:
        assert slot_of(session, "2", BUCKET.day, time(20))[0] == sid("N")
        assert slot_of(session, "VENUE 2", BUCKET.day, time(20))[0] == sid("N")
        with pytest.raises(InvalidInput, match="several venues"):
            slot_of(session, "Venue", BUCKET.day, time(20))
        with pytest.raises(NotFound):
            slot_of(session, "Nowhere At All", BUCKET.day, time(20))
        with pytest.raises(NotFound):
            slot_of(session, "12345", BUCKET.day, time(20))
        with pytest.raises(NotFound, match="no scan has seen slot"):
            explain(session, SETTINGS, T0, "0" * 32)
    for bad in ("abc", "g" * 32, "0" * 33):
        with pytest.raises(InvalidInput):
            parse_slot_id(bad)
    assert parse_slot_id(sid("N").upper()) == sid("N")


def test_bucket_contents_lists_baseline_and_last_scan(scanned: Database) -> None:
    now = T0 + timedelta(minutes=5)
    with scanned.read() as session:
        found = bucket_contents(session, BUCKET.id, now)
        assert {s.slot_id for s in found.baseline} == {sid("A"), sid("C")}
        assert {s.slot_id for s in found.last_scan} == {sid("A"), sid("N"), sid("F")}
        assert found.bucket.id == BUCKET.id and found.bucket.baselined
        assert {s.venue_name for s in found.last_scan} == {"Venue 1", "Venue 2", "Venue 4"}
        with pytest.raises(NotFound):
            bucket_contents(session, "2026-12-09_19:00", now)
        with pytest.raises(InvalidInput):
            bucket_contents(session, "tomorrow", now)
