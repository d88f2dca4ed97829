"""`book snipe` and `book schedule` through the CLI, on the real clock, against a sandbox whose
clock runs at real speed from now: the foreground snipe waits for the instant and books the
drop; schedules are added, listed and cancelled; bad timing input is refused."""

from __future__ import annotations

import json
import time as wall
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from booking_support import book_requests, bookable, unreleased
from sandbox_tools import live_config

from resywatch.sandbox import SandboxConfig, SandboxHandle


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return live_config(speed=1.0)


def iso(instant: float) -> str:
    return datetime.fromtimestamp(instant, UTC).isoformat().replace("+00:00", "Z")


def snipe_args(venue_id: int, day: object, *extra: str) -> list[str]:
    return ["--venue", str(venue_id), "--date", str(day), "--party", "2",
            "--window", "18:00-21:00", *extra]  # fmt: skip


def test_book_snipe_waits_for_the_instant_and_books_the_drop(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    venue, day = unreleased(sandbox)
    instant = wall.time() + 3
    sandbox.state.force_release(venue, day, instant)
    args = snipe_args(venue.id, day, "--at", iso(instant), "--lead", "1s", "--json")
    result = json.loads(cli("book", "snipe", *args, env=env).stdout)
    assert result["outcome"] == "booked" and result["reservation_id"]
    (booked,) = [b for b in sandbox.state.traffic.requests("/3/book") if b["status"] == 201]
    assert booked["at"] >= instant
    # Booked on the first find that saw the drop: no find after it, no second tick.
    assert result["latency_ms"]["finds_after_seen"] == 0 and result["latency_ms"]["ticks"] == 1
    snipes = json.loads(cli("book", "schedule", "list", "--all", "--json", env=env).stdout)
    assert [(s["status"], s["outcome"]) for s in snipes["snipes"]] == [("done", "booked")]
    attempts = json.loads(cli("book", "attempts", "--json", env=env).stdout)["attempts"]
    assert [(a["source"], a["outcome"]) for a in attempts] == [("snipe", "booked")]


def test_a_dry_run_snipe_on_a_day_already_out_stops_before_booking(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    target = bookable(sandbox, datetime.now(UTC).date() + timedelta(days=2))
    args = snipe_args(target.venue.id, target.day, "--at", iso(wall.time() - 5), "--dry-run")
    result = json.loads(cli("book", "snipe", *args, "--json", env=env).stdout)
    assert result["outcome"] == "dry_run" and result["starts_at"][11:16] in target.times
    assert book_requests(sandbox) == 0


def test_schedule_add_list_cancel(cli: Any, env: dict[str, str], sandbox: SandboxHandle) -> None:
    venue, day = unreleased(sandbox)
    added = json.loads(
        cli("book", "schedule", "add", *snipe_args(venue.id, day, "--lead-days", "auto",
            "--release-time", "09:00", "--interval", "250ms", "--json"), env=env).stdout
    )  # fmt: skip
    local = datetime.combine(day - timedelta(days=venue.lead_time_days), datetime.min.time())
    expected = local.replace(hour=9, tzinfo=ZoneInfo(venue.time_zone)).astimezone(UTC)
    assert added["release_at"] == expected.isoformat().replace("+00:00", "Z")
    assert (added["release_source"], added["status"]) == ("config", "scheduled")
    assert added["poll_interval_s"] == 0.25 and added["deadline_s"] == 60.0
    listed = json.loads(cli("book", "schedule", "list", "--json", env=env).stdout)["snipes"]
    assert [s["id"] for s in listed] == [added["id"]]
    assert "scheduled" in cli("book", "schedule", "list", env=env).stdout
    cancelled = json.loads(
        cli("book", "schedule", "cancel", str(added["id"]), "--json", env=env).stdout
    )
    assert cancelled["status"] == "cancelled"
    assert json.loads(cli("book", "schedule", "list", "--json", env=env).stdout)["snipes"] == []
    cli("book", "schedule", "cancel", str(added["id"]), env=env, expect=2)
    cli("book", "schedule", "cancel", "999", env=env, expect=3)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ([], "say when the day is released"),
        (["--lead-days", "auto"], "no release time is known"),
        (["--lead-days", "soon"], "neither a number of days nor auto"),
        (["--at", "2026-12-01 10:00", "--lead-days", "3"], "not both"),
        (["--at", "tomorrow"], "is not a time"),
        (["--at", "2020-01-01 10:00"], "too long ago to snipe"),
    ],
)
def test_snipe_timing_mistakes_are_refused_and_nothing_is_saved(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle, extra: list[str], words: str
) -> None:
    venue, day = unreleased(sandbox)
    result = cli("book", "schedule", "add", *snipe_args(venue.id, day, *extra), env=env, expect=2)
    assert words in result.stderr
    assert json.loads(cli("book", "schedule", "list", "--all", "--json", env=env).stdout) == {
        "snipes": []
    }


def test_a_snipe_that_cannot_keep_its_interval_warns_and_says_so_in_json_and_attempts(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    venue, day = unreleased(sandbox)
    instant = wall.time() + 3
    sandbox.state.force_release(venue, day, instant)
    narrow = env | {"RESYWATCH_RESY_SNIPE_MAX_RPS": "2"}  # it wants 11 a second around T
    args = snipe_args(venue.id, day, "--at", iso(instant), "--lead", "1s", "--json")
    run = cli("book", "snipe", *args, env=narrow)
    result = json.loads(run.stdout)
    assert result["outcome"] == "booked"
    (warning,) = result["warnings"]
    assert "could not keep its 200 ms interval" in warning and "granted it 2/s" in warning
    assert f"warning: {warning}" in " ".join(run.stderr.split())
    assert result["latency_ms"]["lane_rps"] == 2.0
    table = cli("book", "attempts", env=env).stdout
    assert "req, every" in table and "(asked 200)" in table
