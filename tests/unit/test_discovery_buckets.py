"""Bucket rules: the window in the configured zone, time filters, ids, slot ids."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from resywatch.config import load_settings
from resywatch.errors import InvalidInput
from resywatch.services.discovery import buckets
from resywatch.services.vocabulary import slot_id


def test_default_window_is_14_days_by_2_anchors() -> None:
    window = buckets.window(load_settings(environ={}), datetime(2026, 12, 1, 15, tzinfo=UTC))
    assert len(window) == 28
    assert window[0].id == "2026-12-01_15:00"
    assert window[-1].id == "2026-12-14_19:00"


def test_today_is_the_local_day_not_the_hosts() -> None:
    settings = load_settings(environ={})
    # 01:30 UTC on Dec 2 is 20:30 on Dec 1 in New York: still Dec 1 there.
    late_evening = datetime(2026, 12, 2, 1, 30, tzinfo=UTC)
    assert buckets.window(settings, late_evening)[0].day == date(2026, 12, 1)
    tokyo = load_settings(environ={"RESYWATCH_TIMEZONE": "Asia/Tokyo"})
    assert buckets.window(tokyo, late_evening)[0].day == date(2026, 12, 2)


def test_time_filters_cover_the_window_with_as_few_searches_as_possible() -> None:
    assert buckets.time_filters(time(19), 2) == ["19:00"]
    assert buckets.time_filters(time(19), 3) == ["18:00", "20:00"]
    assert buckets.time_filters(time(19), 6) == ["15:00", "18:30", "21:59"]
    assert buckets.time_filters(time(1), 6) == ["02:00", "05:00"]  # never the previous day


def test_in_window_is_inclusive_and_same_day() -> None:
    bucket = buckets.Bucket(date(2026, 12, 1), time(19))
    assert buckets.in_window(datetime(2026, 12, 1, 17, 0), bucket, 2)
    assert buckets.in_window(datetime(2026, 12, 1, 21, 0), bucket, 2)
    assert not buckets.in_window(datetime(2026, 12, 1, 21, 15), bucket, 2)
    assert not buckets.in_window(datetime(2026, 12, 2, 19, 0), bucket, 2)


def test_bucket_ids_round_trip_and_bad_ones_are_refused() -> None:
    bucket = buckets.parse_bucket_id("2026-12-01_19:00")
    assert (bucket.day, bucket.anchor, bucket.id) == (
        date(2026, 12, 1),
        time(19),
        "2026-12-01_19:00",
    )
    for bad in ("2026-12-01", "tomorrow_19:00", "2026-12-01_7pm"):
        with pytest.raises(InvalidInput):
            buckets.parse_bucket_id(bad)


def test_search_key_changes_with_what_is_asked_only() -> None:
    base = buckets.search_key(load_settings(environ={}))
    assert base == buckets.search_key(load_settings(environ={"RESYWATCH_DISCOVERY_DAYS": "3"}))
    for name, value in [
        ("RESYWATCH_DISCOVERY_PARTY_SIZES", "2"),
        ("RESYWATCH_DISCOVERY_WINDOW_HOURS", "3"),
        ("RESYWATCH_DISCOVERY_BOUNDING_BOX", "40.6,-74.1,40.9,-73.8"),
    ]:
        assert buckets.search_key(load_settings(environ={name: value})) != base


def test_slot_id_is_the_seeds_hash_without_party_size() -> None:
    import hashlib

    starts = datetime(2026, 12, 1, 19, 30)
    expected = hashlib.sha256(b"resy|6194|2026-12-01 19:30:00").hexdigest()[:32]
    assert slot_id(6194, starts) == expected


@pytest.mark.parametrize(
    "starts",
    [
        datetime(2026, 12, 1, 0, 0),
        datetime(2026, 12, 1, 19, 30, 5, 123456),  # seconds kept, microseconds dropped
        datetime(2026, 3, 8, 2, 30, tzinfo=ZoneInfo("America/New_York")),  # no offset written
        datetime(2026, 12, 1, 23, 59, 59, tzinfo=UTC),
    ],
)
def test_slot_id_reads_the_start_as_the_seed_wrote_it(starts: datetime) -> None:
    import hashlib

    raw = f"resy|6194|{starts:%Y-%m-%d %H:%M:%S}".encode()
    assert slot_id(6194, starts) == hashlib.sha256(raw).hexdigest()[:32]
