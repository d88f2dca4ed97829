"""`venue hard-to-get` and `notify add --hard-to-get` against the sandbox over loopback:
the list shows a curated venue's drop once discovery saw one, and "notify me for all of
them" files one request per venue, once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sandbox_tools import ClosedSlot, live_config, run_json

from resywatch.config import load_settings
from resywatch.data import load_hard_to_get
from resywatch.sandbox import SandboxConfig, SandboxHandle
from resywatch.services.curated import normalize_name
from resywatch.services.vocabulary import local_today

LISTED = {normalize_name(v.name) for v in load_hard_to_get()}


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return live_config()


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env | {"RESYWATCH_DISCOVERY_DAYS": "2"}


def test_the_list_shows_a_curated_venues_drop(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    before = run_json(cli, "venue", "hard-to-get", env=env)
    assert len(before["venues"]) == len(LISTED) and before["source"]
    assert all(v["last_drop"] is None for v in before["venues"])

    settings = load_settings(environ=env)
    tomorrow = local_today(datetime.now(UTC), settings.timezone) + timedelta(days=1)
    others = frozenset(
        v.id for v in sandbox.state.world.venues if normalize_name(v.name) not in LISTED
    )
    slot = ClosedSlot(sandbox, tomorrow, settings, skip=others)
    cli("discover", "scan", env=env)
    slot.change(+1)
    assert run_json(cli, "discover", "scan", env=env)["drops_opened"] == 1

    after = {v["name"]: v for v in run_json(cli, "venue", "hard-to-get", env=env)["venues"]}
    seen = next(v for v in after.values() if v["last_drop"] is not None)
    assert normalize_name(seen["name"]) == normalize_name(slot.venue.name)
    assert seen["last_drop"]["venue_id"] == slot.venue.id and seen["drops"] == 1
    piped = cli("venue", "hard-to-get", env=env)
    assert piped.stdout.startswith("venue\tneighborhood\tcuisine\tlist\tlast drop")
    assert "source: " in piped.stderr


def test_notify_for_all_of_them_files_each_venue_once(cli: Any, env: dict[str, str]) -> None:
    day = str(local_today(datetime.now(UTC), load_settings(environ=env).timezone))
    ask = ["notify", "add", "--hard-to-get", "--date", day, "--party", "2"]
    first = run_json(cli, *ask, env=env)
    assert len(first["created"]) + len(first["skipped"]) == len(LISTED)
    assert len(first["created"]) >= len(LISTED) - 2, first["skipped"]
    assert all(r["title"].startswith("Hard to get: ") for r in first["created"])

    again = run_json(cli, *ask, env=env)
    assert again["created"] == []
    assert sorted(r["id"] for r in again["already_pending"]) == sorted(
        r["id"] for r in first["created"]
    )
    listed = run_json(cli, "notify", "list", env=env)["notify_requests"]
    assert len(listed) == len(first["created"])

    for bad in (
        [*ask, "--venue", "Carbone"],
        [*ask, "--auto-book"],
        ["notify", "add", "--date", day, "--party", "2"],
        ["notify", "add", "--hard-to-get", "--date", "2020-01-01", "--party", "2"],
        [*ask, "--title", " "],
    ):
        refused = cli(*bad, "--json", env=env, expect=2)
        assert json.loads(refused.stdout)["error"]["code"] == "bad_input"
    assert len(run_json(cli, "notify", "list", env=env)["notify_requests"]) == len(listed)
