"""Priority times and recurring snipes through the CLI against the sandbox (its clock frozen at
the real time): `book now`, an auto-booking watch and an auto-booking notify request each book
the first listed time that is open, not the open time nearest to it; a series is added, listed
with its next run and stopped by cancelling it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from booking_support import Bookable, bookable, soon, unreleased
from sandbox_tools import live_config

from resywatch.sandbox import DEMO_AUTH_TOKEN, SandboxConfig, SandboxHandle


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return live_config()


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env | {
        "RESYWATCH_RESY_AUTH_TOKEN": DEMO_AUTH_TOKEN,
        "RESYWATCH_BOOK_MAX_TOTAL": "500",  # auto-book's ceilings are the settings'
        "RESYWATCH_BOOK_MAX_CANCEL_FEE": "500",
    }


def run_json(cli: Any, *args: str, env: dict[str, str], expect: int = 0) -> Any:
    return json.loads(cli(*args, "--json", env=env, expect=expect).stdout)


def minute_of(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:5])


def ranked_list(target: Bookable) -> tuple[str, str]:
    """(a --time list whose first time is not open, the open time it should book: the one
    furthest from that first time, so that ranking by nearness would book another)."""
    assert len(target.times) >= 2, target
    closed = next(
        f"{m // 60:02d}:{m % 60:02d}"
        for m in range(18 * 60, 21 * 60, 5)
        if f"{m // 60:02d}:{m % 60:02d}" not in target.times
    )
    furthest = max(target.times, key=lambda t: abs(minute_of(t) - minute_of(closed)))
    return f"{closed},{furthest}", furthest


def many_times(sandbox: SandboxHandle, env: dict[str, str], skip: int = 0) -> Bookable:
    day, found = soon(env), 0
    while True:
        target = bookable(sandbox, day, skip=found)
        if len(target.times) >= 2:
            if skip == 0:
                return target
            skip -= 1
        found += 1


def test_book_now_books_the_first_listed_time_open(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    target = many_times(sandbox, env)
    times, expected = ranked_list(target)
    booked = run_json(
        cli, "book", "now", "--venue", str(target.venue.id), "--date", str(target.day),
        "--party", "2", "--window", "18:00-21:00", "--time", times, env=env,
    )  # fmt: skip
    assert booked["outcome"] == "booked" and booked["starts_at"][11:16] == expected


def test_auto_book_watches_and_requests_book_the_first_listed_time_open(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    watched, requested = many_times(sandbox, env), many_times(sandbox, env, skip=1)
    assert watched.venue.id != requested.venue.id
    times, expected = ranked_list(watched)
    watch = run_json(
        cli, "watch", "add", "venues", "--venue", str(watched.venue.id), "--date",
        str(watched.day), "--party", "2", "--window", "18:00-21:00", "--time", times,
        "--auto-book", env=env,
    )  # fmt: skip
    assert watch["preferred_times"] == times.split(",")
    checked = run_json(cli, "watch", "check", str(watch["id"]), env=env)["checked"][0]
    assert checked["booking"]["outcome"] == "booked"
    assert checked["booking"]["starts_at"][11:16] == expected
    assert times.replace(",", " > ") in cli("watch", "show", str(watch["id"]), env=env).stdout

    times, expected = ranked_list(requested)
    request = run_json(
        cli, "notify", "add", "--venue", str(requested.venue.id), "--date", str(requested.day),
        "--party", "2", "--window", "18:00-21:00", "--time", times, "--auto-book", env=env,
    )  # fmt: skip
    assert request["preferred_times"] == times.split(",")
    checked = run_json(cli, "notify", "check", str(request["id"]), env=env)["checked"][0]
    assert checked["booking"]["outcome"] == "booked"
    assert checked["booking"]["starts_at"][11:16] == expected


def test_a_time_list_alone_on_a_watch_watches_around_its_times(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    target = many_times(sandbox, env)
    watch = run_json(
        cli, "watch", "add", "venues", "--venue", str(target.venue.id), "--date",
        str(target.day), "--party", "2", "--time", "19:30,19:00,20:15", env=env,
    )  # fmt: skip
    assert (watch["window"], watch["preferred_times"]) == (
        "18:30-20:45", ["19:30", "19:00", "20:15"],
    )  # fmt: skip
    result = cli(
        "watch", "add", "venues", "--venue", str(target.venue.id), "--date", str(target.day),
        "--party", "2", "--time", "19:00,19:00", env=env, expect=2,
    )  # fmt: skip
    assert "lists 19:00 twice" in result.stderr


def test_a_series_is_listed_with_its_next_run_and_cancelling_stops_it(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    venue, _ = unreleased(sandbox)
    zone = ZoneInfo(venue.time_zone)
    first = datetime.now(zone).date() + timedelta(days=10)
    rule = f"weekly:{first:%a}".lower()
    added = run_json(
        cli, "book", "schedule", "add", "--venue", str(venue.id), "--date", str(first),
        "--party", "2", "--time", "19:30,19:00", "--window", "18:00-21:00", "--repeat", rule,
        "--days-ahead", "3", "--release-time", "09:00", env=env,
    )  # fmt: skip
    release = datetime.combine(first - timedelta(days=3), datetime.min.time(), zone)
    expected = release.replace(hour=9).astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert (added["repeat"], added["days_ahead"], added["series_id"]) == (rule, 3, added["id"])
    assert added["release_at"] == added["next_run"] == expected
    assert added["release_source"] == "lead-days"
    assert added["preferred_times"] == ["19:30", "19:00"]
    (listed,) = run_json(cli, "book", "schedule", "list", env=env)["snipes"]
    assert (listed["id"], listed["next_run"]) == (added["id"], expected)
    table = cli("book", "schedule", "list", env=env).stdout
    assert f"{rule}, 3d ahead" in table and "19:30>19:00 in 18:00-21:00" in table
    stopped = cli("book", "schedule", "cancel", str(added["id"]), env=env).stderr
    assert f"series {added['id']} stopped" in stopped
    assert run_json(cli, "book", "schedule", "list", env=env)["snipes"] == []
    (cancelled,) = run_json(cli, "book", "schedule", "list", "--all", env=env)["snipes"]
    assert (cancelled["status"], cancelled["next_run"]) == ("cancelled", None)
