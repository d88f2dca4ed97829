"""The drop boards end to end: a discovery pass against the sandbox over loopback, a slot
opens, the next pass records the drop, and just-opened, hot, top, calendar, patterns and
`venue show` all show it (SQLite and PostgreSQL)."""

from __future__ import annotations

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


def test_a_drop_found_by_a_pass_is_on_every_board(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    assert run_json(cli, "discover", "scan", env=env)["buckets_baselined"] == 4
    settings = load_settings(environ=env)
    tomorrow = local_today(datetime.now(UTC), settings.timezone) + timedelta(days=1)
    slot = ClosedSlot(sandbox, tomorrow, settings)
    slot.change(+1)
    assert run_json(cli, "discover", "scan", env=env)["drops_opened"] == 1
    time = slot.slot.time[:5]

    board = run_json(cli, "discover", "just-opened", "--still-open", env=env)
    [day] = board["just_opened"]
    assert day["date"] == str(tomorrow) and day["scanned_at"].endswith("Z")
    [entry] = day["venues"]
    assert (entry["venue_id"], entry["times"]) == (slot.venue.id, [time])
    assert board["still_open"] == [] and board["stale_buckets"] == []
    assert board["venues_scanned"] > 0 and board["last_scan_at"].endswith("Z")
    # The slot is between 18:00 and 20:00: the 15:00 buckets (13:00-17:00) never scan it.
    afternoon = run_json(cli, "discover", "just-opened", "--anchor", "15:00", env=env)
    assert afternoon["just_opened"] == []

    hot = run_json(cli, "discover", "hot", "--min-rarity", "0.5", env=env)["drops"]
    assert [(e["venue_id"], e["times"]) for e in hot] == [(slot.venue.id, [time])]
    top = run_json(cli, "discover", "top", env=env)["venues"]
    assert [m["venue_id"] for m in top] == [slot.venue.id]
    days = run_json(cli, "discover", "calendar", env=env)["days"]
    assert [(d["date"], d["venues"]) for d in days] == [
        (str(tomorrow - timedelta(days=1)), 0),
        (str(tomorrow), 1),
    ]
    feed = run_json(cli, "discover", "feed", "--date", str(tomorrow), "--anchor", "19:00", env=env)
    assert [d["venue_id"] for d in feed["drops"]] == [slot.venue.id]

    pattern = run_json(cli, "discover", "patterns", env=env)["venues"][0]
    assert pattern["metrics"]["drops_30d"] == 1 and pattern["metrics"]["trend_label"] == "new"
    shown = run_json(cli, "venue", "show", str(slot.venue.id), env=env)
    assert shown["metrics"]["venue_id"] == slot.venue.id
    assert shown["metrics"]["drops_per_week"] == 7  # one drop in (at least) one day
    text = cli("venue", "show", str(slot.venue.id), env=env).stdout
    assert "rarity:" in text and "drops by local hour:" in text

    slot.change(-1)  # it closes: off the boards, into the history
    assert run_json(cli, "discover", "scan", env=env)["drops_closed"] == 1
    assert run_json(cli, "discover", "just-opened", env=env)["just_opened"] == []
    closed = run_json(cli, "discover", "top", env=env)["venues"][0]
    assert closed["closed_drops"] == 1 and closed["median_open_s"] is not None
