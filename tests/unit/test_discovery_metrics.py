"""Venue metrics from the drop history, aggregated in SQL on SQLite and PostgreSQL alike, and
the `top` and `hot` boards built on them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from drop_world import DropWorld

from resywatch.db.engine import Database
from resywatch.services.discovery import metrics
from resywatch.services.discovery.filters import BoardFilter

NOW = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
DAY = date(2026, 12, 10)
MINUTE, HOUR, DAYS = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


@pytest.fixture
def world(db: Database) -> DropWorld:
    return DropWorld(db, NOW)


def test_open_share_counts_overlapping_drops_once(db: Database, world: DropWorld) -> None:
    world.bucket(DAY, baselined_ago=2 * DAYS)  # watched for two days
    start = 10 * HOUR
    world.drop(1, DAY, "19:00", opened_ago=start, open_for=10 * MINUTE)
    world.drop(1, DAY, "19:30", opened_ago=start - 5 * MINUTE, open_for=15 * MINUTE)
    world.drop(1, DAY, "20:00", opened_ago=start - 60 * MINUTE, open_for=10 * MINUTE)
    world.drop(1, DAY, "21:00", opened_ago=20 * MINUTE)  # still open: counts up to now
    with db.read() as session:
        m = metrics.venue_metrics(session, NOW)[1]
    open_s = (20 + 10 + 20) * 60  # [0, 20] and [60, 70] past the start, and the open one
    assert m.open_share == pytest.approx(open_s / (2 * 86_400), abs=1e-4)
    assert m.rarity == pytest.approx(1 - m.open_share, abs=1e-4)
    assert m.observed_days == 2
    assert (m.drops_30d, m.drops_7d, m.drops_per_week) == (4, 4, 14)


def test_median_open_time_of_closed_drops(db: Database, world: DropWorld) -> None:
    world.bucket(DAY)
    for n, minutes in enumerate((1, 2, 10)):
        world.drop(1, DAY, f"1{n}:00", opened_ago=HOUR, open_for=minutes * MINUTE)
    for n, minutes in enumerate((1, 2, 4, 10)):
        world.drop(2, DAY, f"1{n}:00", opened_ago=HOUR, open_for=minutes * MINUTE)
    world.drop(2, DAY, "20:00", opened_ago=HOUR)  # open: no duration yet
    with db.read() as session:
        found = metrics.venue_metrics(session, NOW)
    assert (found[1].median_open_s, found[1].closed_drops) == (120, 3)
    assert (found[2].median_open_s, found[2].closed_drops) == (180, 4)  # mean of the middle two


def test_trend_compares_the_last_7_days_with_the_window(db: Database, world: DropWorld) -> None:
    world.bucket(DAY, baselined_ago=20 * DAYS)
    for ago in (2, 3, 12, 15):  # 2 in the last 7 days, 4 in 20 days
        world.drop(1, DAY, f"{ago:02d}:00", opened_ago=ago * DAYS, open_for=MINUTE)
    world.drop(2, DAY, "19:00", opened_ago=15 * DAYS, open_for=MINUTE)
    world.drop(2, DAY, "20:00", opened_ago=16 * DAYS, open_for=MINUTE)
    world.drop(3, DAY, "19:00", opened_ago=40 * DAYS, open_for=MINUTE)  # outside the window
    with db.read() as session:
        found = metrics.venue_metrics(session, NOW)
    assert found[1].trend == pytest.approx((2 / 7) / (4 / 20) - 1, abs=1e-3)
    assert found[1].trend_label == "rising"
    assert (found[2].trend, found[2].trend_label) == (-1.0, "falling")
    assert 3 not in found


def test_a_young_history_has_no_trend_yet(db: Database, world: DropWorld) -> None:
    world.bucket(DAY, baselined_ago=3 * HOUR)
    world.drop(1, DAY, "19:00", opened_ago=HOUR, open_for=MINUTE)
    with db.read() as session:
        m = metrics.venue_metrics(session, NOW, [1])[1]
    assert (m.trend, m.trend_label, m.observed_days) == (None, "new", 1.0)


def test_top_ranks_rare_and_fast_closing_venues_first(db: Database, world: DropWorld) -> None:
    world.bucket(DAY, baselined_ago=10 * DAYS)
    world.drop(1, DAY, "19:00", opened_ago=2 * DAYS, open_for=MINUTE, name="Rare Fast")
    world.drop(2, DAY, "19:00", opened_ago=2 * DAYS, open_for=3 * HOUR, name="Rare Slow")
    for n in range(6):  # open half of the time: not rare
        world.drop(3, DAY, f"1{n}:00", opened_ago=(n + 1) * 40 * HOUR, open_for=20 * HOUR)
    world.drop(4, DAY, "19:00", opened_ago=DAYS, open_for=2 * MINUTE, hotspot=True)
    with db.read() as session:
        ranked = metrics.top(session, NOW)
        hotspots = metrics.top(session, NOW, hotspots_only=True)
        named = metrics.top(session, NOW, venue="slow")
    assert [m.venue_id for m in ranked] == [1, 4, 2, 3]
    assert ranked[0].score > 90 and ranked[-1].rarity < 0.6
    assert [m.venue_id for m in hotspots] == [4]
    assert [m.venue_id for m in named] == [2]


def test_hot_keeps_what_just_opened_at_rare_venues(db: Database, world: DropWorld) -> None:
    bucket = world.bucket(DAY, baselined_ago=10 * DAYS)
    world.drop(1, DAY, "19:00", opened_ago=5 * MINUTE, seen_by=[bucket], name="Rare")
    world.drop(1, DAY, "19:30", opened_ago=4 * MINUTE, seen_by=[bucket], name="Rare")
    world.drop(2, DAY, "19:00", opened_ago=5 * MINUTE, seen_by=[bucket], name="Always")
    world.drop(2, DAY, "12:00", opened_ago=9 * DAYS, open_for=8 * DAYS)  # open most days
    world.drop(3, DAY, "19:00", opened_ago=3 * HOUR, seen_by=[bucket])  # not recent
    with db.read() as session:
        found = metrics.hot(session, BoardFilter(), NOW, minutes=60, min_rarity=0.9)
        everyone = metrics.hot(session, BoardFilter(), NOW, minutes=60, min_rarity=0.0)
    assert [(e.venue_id, e.times) for e in found] == [(1, ["19:00", "19:30"])]
    assert found[0].rarity > 0.99 and found[0].opened_at == NOW - 4 * MINUTE
    assert sorted(e.venue_id for e in everyone) == [1, 2]
