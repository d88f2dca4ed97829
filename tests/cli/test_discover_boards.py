"""`discover just-opened|top|hot|calendar`, the shared drop filters of `feed`, and the metrics
of `patterns`, through the CLI on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from drop_world import DropWorld
from rich.console import Console

from resywatch.cli import discover_boards
from resywatch.cli.output import Output
from resywatch.db.engine import Database
from resywatch.services.discovery.board import Calendar, CalendarDay
from resywatch.services.vocabulary import local_today

MINUTE = timedelta(minutes=1)


@pytest.fixture
def seeded(database_url: str) -> tuple[str, date]:
    """Two venues open tomorrow (one twice, a hotspot), one still open from an hour ago,
    one closed, and a stale bucket."""
    now = datetime.now(UTC)
    tomorrow = local_today(now, "America/New_York") + timedelta(days=1)
    db = Database(database_url)
    try:
        world = DropWorld(db, now)
        evening = world.bucket(tomorrow, "19:00", baselined_ago=timedelta(days=3))
        afternoon = world.bucket(tomorrow, "15:00")
        world.bucket(tomorrow + timedelta(days=1), "19:00", scanned_ago=timedelta(hours=6))
        world.venue(1, "Don Angie")
        angie = {"name": "Don Angie", "hotspot": True, "seen_by": [evening]}
        world.drop(1, tomorrow, "19:00", opened_ago=2 * MINUTE, **angie)  # type: ignore[arg-type]
        world.drop(1, tomorrow, "20:30", opened_ago=3 * MINUTE, **angie)  # type: ignore[arg-type]
        world.drop(2, tomorrow, "15:30", opened_ago=MINUTE, party=(4,), seen_by=[afternoon])
        world.drop(3, tomorrow, "19:15", opened_ago=60 * MINUTE, seen_by=[evening])
        world.drop(4, tomorrow, "18:00", opened_ago=90 * MINUTE, open_for=2 * MINUTE)
    finally:
        db.dispose()
    return database_url, tomorrow


def _json(cli: Any, url: str, *args: str) -> Any:
    return json.loads(cli("--database-url", url, *args, "--json").stdout)


def test_just_opened_answers_as_the_seed_did(cli: Any, seeded: tuple[str, date]) -> None:
    url, tomorrow = seeded
    found = _json(cli, url, "discover", "just-opened", "--still-open")
    assert {"last_scan_at", "next_scan_at", "venues_scanned", "stale_buckets"} <= found.keys()
    assert found["stale_buckets"] == [f"{tomorrow + timedelta(days=1)}_19:00"]
    assert found["venues_scanned"] == 3 and found["next_scan_at"] is None
    [day] = found["just_opened"]
    assert day["date"] == str(tomorrow)
    assert [(v["venue_name"], v["times"]) for v in day["venues"]] == [
        ("Don Angie", ["19:00", "20:30"]),
        ("Venue 2", ["15:30"]),
    ]
    assert [v["venue_id"] for d in found["still_open"] for v in d["venues"]] == [3]
    without = _json(cli, url, "discover", "just-opened")
    assert without["still_open"] is None


def test_just_opened_in_a_pipe_has_state_and_date_columns(
    cli: Any, seeded: tuple[str, date]
) -> None:
    url, tomorrow = seeded
    result = cli("--database-url", url, "discover", "just-opened", "--still-open")
    header, *rows = [line.split("\t") for line in result.stdout.splitlines()]
    at = {name: header.index(name) for name in ("state", "date", "venue", "times")}
    assert [(r[at["state"]], r[at["venue"]], r[at["times"]]) for r in rows] == [
        ("just opened", "Don Angie", "19:00, 20:30"),
        ("just opened", "Venue 2", "15:30"),
        ("still open", "Venue 3", "19:15"),
    ]
    assert {r[at["date"]] for r in rows} == {str(tomorrow)}
    assert "last scan" in result.stderr and "left out" in result.stderr


def test_the_filters_are_shared_by_just_opened_feed_hot_and_calendar(
    cli: Any, seeded: tuple[str, date]
) -> None:
    url, tomorrow = seeded

    def venues(*args: str) -> list[int]:
        found = _json(cli, url, "discover", "just-opened", "--minutes", "120", *args)
        return sorted(v["venue_id"] for d in found["just_opened"] for v in d["venues"])

    assert venues() == [1, 2, 3]
    assert venues("--anchor", "15:00") == [2]
    assert venues("--party", "4") == [2]
    assert venues("--after", "19:00", "--before", "19:30") == [1, 3]
    assert venues("--hotspots") == [1]
    assert venues("--venue", "angie") == [1]
    assert venues("--date", str(tomorrow + timedelta(days=1)), "--date", str(tomorrow)) == [1, 2, 3]
    assert venues("--from", str(tomorrow + timedelta(days=1))) == []

    def fed(*args: str) -> list[int]:
        return sorted({d["venue_id"] for d in _json(cli, url, "discover", "feed", *args)["drops"]})

    assert fed() == [1, 2, 3, 4]
    assert fed("--anchor", "19:00", "--until", str(tomorrow)) == [1, 3, 4]
    assert fed("--date", str(tomorrow), "--date", str(tomorrow), "--party", "4") == [2]
    hot = _json(cli, url, "discover", "hot", "--min-rarity", "0", "--anchor", "15:00")
    assert [e["venue_id"] for e in hot["drops"]] == [2]
    cal = _json(cli, url, "discover", "calendar", "--from", str(tomorrow), "--until", str(tomorrow))
    assert cal["days"] == [{"date": str(tomorrow), "venues": 3, "drops": 4, "hotspot_venues": 1}]


def test_top_hot_and_calendar(cli: Any, seeded: tuple[str, date]) -> None:
    url, tomorrow = seeded
    ranked = _json(cli, url, "discover", "top")["venues"]
    assert {m["venue_id"] for m in ranked} == {1, 2, 3, 4}
    assert {"drops_per_week", "median_open_s", "rarity", "open_share", "trend", "score"} <= set(
        ranked[0]
    )
    assert ranked[0]["venue_id"] == 4  # the only drop that has closed, after two minutes
    hot = _json(cli, url, "discover", "hot", "--minutes", "5", "--min-rarity", "0")["drops"]
    assert [e["venue_id"] for e in hot] == [1, 2] or [e["venue_id"] for e in hot] == [2, 1]
    assert _json(cli, url, "discover", "hot", "--min-rarity", "1")["drops"] == []
    days = _json(cli, url, "discover", "calendar")["days"]
    assert len(days) == 14 and days[1] == {
        "date": str(tomorrow),
        "venues": 3,
        "drops": 4,
        "hotspot_venues": 1,
    }
    piped = cli("--database-url", url, "discover", "calendar").stdout.splitlines()
    assert piped[0].split("\t") == ["date", "weekday", "venues", "drops", "hotspot venues"]
    assert piped[2].split("\t")[2:4] == ["3", "4"]
    table = cli("--database-url", url, "discover", "top").stdout
    assert table.splitlines()[0].split("\t")[:4] == ["rank", "venue", "neighborhood", "score"]


def test_patterns_show_the_metrics_and_the_hour_chart(cli: Any, seeded: tuple[str, date]) -> None:
    url, _ = seeded
    found = _json(cli, url, "discover", "patterns", "--venue", "angie")["venues"]
    assert found[0]["metrics"]["drops_30d"] == 2 and found[0]["metrics"]["rarity"] < 1
    text = cli("--database-url", url, "discover", "patterns", "--venue", "angie").stdout
    assert "drops per week:" in text and "rarity:" in text and "trend:" in text
    # In a pipe the chart is `HHh<TAB>count` lines: the two drops, in one hour or two.
    chart = [line.split("\t") for line in text.splitlines() if "\t" in line]
    assert chart and all(hour.strip().endswith("h") for hour, _ in chart)
    assert sum(int(count) for _, count in chart) == 2


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["just-opened", "--from", "2026-12-05", "--until", "2026-12-01"], "is after --until"),
        (["feed", "--date", "2026-12-05", "--from", "2026-12-01"], "not both"),
        (["hot", "--date", "12/05/2026"], "YYYY-MM-DD"),
        (["calendar", "--anchor", "18:00"], "not a discovery anchor: use one of 15:00, 19:00"),
        (["just-opened", "--anchor", "7pm"], "HH:MM"),
        (["just-opened", "--minutes", "-5"], "'--minutes': Input should be greater than"),
        (["hot", "--minutes", "0"], "'--minutes': Input should be greater than"),
        (["hot", "--min-rarity", "2"], "'--min-rarity': Input should be less than"),
        (["feed", "--after", "21:00", "--before", "18:00"], "later than --before"),
        (["just-opened", "--venue", "%"], "no letters or digits"),  # even with no drops
        (["calendar", "--venue", "!!"], "no letters or digits"),
    ],
)
def test_bad_input_is_exit_2_with_a_clear_message(
    cli: Any, database_url: str, args: list[str], complaint: str
) -> None:
    result = cli("--database-url", database_url, "discover", *args, "--json", expect=2)
    assert complaint in json.loads(result.stdout)["error"]["message"]


def _terminal() -> tuple[Output, io.StringIO]:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100, color_system=None)
    return Output(json_mode=False, stdout=console), buffer


def test_the_hour_chart_and_the_calendar_on_a_terminal() -> None:
    output, buffer = _terminal()
    hourly = [0] * 24
    hourly[9], hourly[11] = 4, 2
    discover_boards.hour_chart(output, hourly, indent="")
    assert buffer.getvalue().splitlines() == [
        "09h " + "█" * 30 + " 4",
        "10h  0",
        "11h " + "█" * 15 + " 2",
    ]
    output, buffer = _terminal()
    first = date(2026, 12, 3)  # a Thursday
    days = [CalendarDay(first + timedelta(days=n), n, 2 * n, 0) for n in range(14)]
    discover_boards._calendar_grid(output, Calendar(None, None, [], days))
    text = buffer.getvalue()
    assert "Mon" in text and "Sun" in text and "Dec 3" in text and "Dec 16" in text
    assert "13 venues" in text and "1 venue" in text
    assert text.count("Nov 30") == 1  # the first week starts on its Monday
