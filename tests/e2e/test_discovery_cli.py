"""The discover, search and venue commands through the CLI, against a sandbox whose clock
stands at the real current time (the commands use the real clock)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sandbox_tools import ClosedSlot, live_config, run_json

from resywatch.config import load_settings
from resywatch.sandbox import SandboxConfig, SandboxHandle
from resywatch.services.vocabulary import local_today


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return live_config()


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env | {"RESYWATCH_DISCOVERY_DAYS": "2"}


def test_scan_then_read_the_feed_buckets_just_opened_and_patterns(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    first = run_json(cli, "discover", "scan", env=env)
    assert first["buckets_baselined"] == 4 and first["drops_opened"] == 0
    assert first["requests"] >= 8

    settings = load_settings(environ=env)
    tomorrow = local_today(datetime.now(UTC), settings.timezone) + timedelta(days=1)
    slot = ClosedSlot(sandbox, tomorrow, settings)
    slot.change(+1)
    second = run_json(cli, "discover", "scan", env=env)
    assert second["drops_opened"] == 1

    feed = run_json(cli, "discover", "feed", "--since", "1h", env=env)["drops"]
    assert [d["venue_id"] for d in feed] == [slot.venue.id]
    drop = feed[0]
    assert drop["open"] is True and drop["closed_at"] is None
    assert drop["opened_at"].endswith("Z")
    assert drop["url"].startswith("https://resy.com/cities/")

    assert run_json(cli, "discover", "feed", "--party", "7", env=env)["drops"] == []
    assert run_json(cli, "discover", "feed", "--venue", slot.venue.name[:4], env=env)["drops"]
    later = f"{slot.slot.minute // 60 + 1:02d}:00"
    assert run_json(cli, "discover", "feed", "--after", later, env=env)["drops"] == []
    assert run_json(cli, "discover", "feed", "--date", str(tomorrow), "--open", env=env)["drops"]

    opened = run_json(cli, "discover", "just-opened", "--minutes", "5", env=env)
    assert [d["date"] for d in opened["just_opened"]] == [str(tomorrow)]

    buckets = run_json(cli, "discover", "buckets", env=env)["buckets"]
    assert len(buckets) == 4
    assert all(b["baselined"] and not b["stale"] and b["last_error"] is None for b in buckets)

    patterns = run_json(cli, "discover", "patterns", env=env)["venues"]
    assert patterns[0]["venue_id"] == slot.venue.id and patterns[0]["samples"] == 1
    assert sum(patterns[0]["hourly"]) == 1

    human = cli("discover", "feed", env=env).stdout
    assert slot.venue.name in human and "open" in human


def test_follow_streams_new_drops_as_ndjson(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    import os
    import subprocess
    import sys
    import time

    cli("discover", "scan", env=env)
    settings = load_settings(environ=env)
    tomorrow = local_today(datetime.now(UTC), settings.timezone) + timedelta(days=1)
    old = ClosedSlot(sandbox, tomorrow, settings)
    old.change(+1)
    cli("discover", "scan", env=env)  # a drop from before --follow starts: history, not news
    follower = subprocess.Popen(
        [sys.executable, "-m", "resywatch", "discover", "feed", "--follow", "--follow-for", "8"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        time.sleep(2.5)  # let it start and note the newest drop
        fresh = ClosedSlot(sandbox, tomorrow, settings, skip=frozenset({old.venue.id}))
        fresh.change(+1)
        cli("discover", "scan", env=env)
        out, _ = follower.communicate(timeout=30)
    finally:
        follower.kill() if follower.poll() is None else None
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(d["venue_id"], d["starts_at"][11:16]) for d in lines] == [
        (fresh.venue.id, fresh.slot.time[:5])
    ]
    assert follower.returncode == 0


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["discover", "feed", "--since", "yesterday"], "neither a duration"),
        (["discover", "feed", "--date", "12/01/2026"], "YYYY-MM-DD"),
        (["discover", "feed", "--after", "7pm"], "HH:MM"),
        (["discover", "scan", "--bucket", "tomorrow"], "DATE_HH:MM"),
        (
            ["discover", "scan", "--bucket", "2020-01-01_19:00"],
            "not a bucket of the current window",
        ),
        (["search", "--date", "2020-01-01"], "in the past"),
        (
            ["search", "--date", "2030-01-01", "--time", "19:00", "--window", "18:00-20:00"],
            "not both",
        ),
        (["search", "--date", "2030-01-01", "--window", "21:00-18:00"], "ends before it starts"),
    ],
)
def test_bad_input_is_exit_2_and_writes_nothing(
    cli: Any, env: dict[str, str], args: list[str], complaint: str
) -> None:
    result = cli(*args, "--json", env=env, expect=2)
    assert complaint in json.loads(result.stdout)["error"]["message"]
    counts = run_json(cli, "admin", "db-info", env=env)["row_counts"]
    assert counts["drop_event"] == counts["venue"] == counts["slot_snapshot"] == 0


def test_party_size_out_of_range_is_a_usage_error(cli: Any, env: dict[str, str]) -> None:
    for party in ("0", "30"):
        result = cli(
            "search", "--date", "2030-01-01", "--party", party, "--json", env=env, expect=2
        )
        assert json.loads(result.stdout)["error"]["code"] == "usage"


def test_search_finds_open_tables_in_the_window(cli: Any, env: dict[str, str]) -> None:
    day = local_today(datetime.now(UTC), "America/New_York") + timedelta(days=2)
    found = run_json(
        cli, "search", "--date", str(day), "--party", "2", "--window", "18:00-20:00", env=env
    )["venues"]
    assert found
    assert all("18:00" <= t <= "20:00" for v in found for t in v["times"])
    hot = run_json(cli, "search", "--date", str(day), "--time", "19:00", "--hotspots", env=env)
    assert all(v["is_hotspot"] for v in hot["venues"])
    # Venues seen by a search are remembered, so `venue show NAME` works afterwards.
    assert run_json(cli, "admin", "db-info", env=env)["row_counts"]["venue"] >= len(found)


def test_venue_search_and_show(cli: Any, env: dict[str, str]) -> None:
    found = run_json(cli, "venue", "search", "carbone", env=env)["venues"]
    assert found[0]["name"] == "Carbone"
    report = run_json(cli, "venue", "show", "Carbone", "--days", "10", env=env)
    assert report["venue_id"] == found[0]["venue_id"]
    assert report["lead_time_days"] and report["time_zone"]
    assert len(report["calendar"]) == 10
    assert {d["status"] for d in report["calendar"]} <= {
        "available", "sold-out", "closed", "not-available", "not-released",
    }  # fmt: skip
    by_id = run_json(cli, "venue", "show", str(found[0]["venue_id"]), env=env)
    assert by_id["name"] == "Carbone"


def test_unknown_and_ambiguous_venues(cli: Any, env: dict[str, str]) -> None:
    missing = cli("venue", "show", "No Such Place Anywhere", "--json", env=env, expect=3)
    assert json.loads(missing.stdout)["error"]["code"] == "not_found"
    unknown_id = cli("venue", "show", "999999999", "--json", env=env, expect=3)
    assert json.loads(unknown_id.stdout)["error"]["code"] == "not_found"
    ambiguous = cli("venue", "show", "Tavern", "--json", env=env, expect=2)
    message = json.loads(ambiguous.stdout)["error"]["message"]
    assert "matches several venues" in message
    # Ranked closest first (finding 8), each with its neighbourhood and city.
    listed = message.split(": ", 1)[1].split(". Use")[0].split("; ")
    assert len(listed) >= 2 and all("Tavern" in name for name in listed)
    assert all(", New York, id " in name for name in listed)
