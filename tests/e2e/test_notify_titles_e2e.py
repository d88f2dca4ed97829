"""A notify request's title and the read state of what it found, end to end against the
sandbox: added with a title (or the seed's default), satisfied by a slot that opens, listed
as unread until read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sandbox_tools import SoldOutVenue, live_config, run_json

from resywatch.config import load_settings
from resywatch.sandbox import SandboxConfig, SandboxHandle
from resywatch.services.vocabulary import local_today


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return live_config()


def test_a_titled_request_is_unread_once_satisfied_until_read(
    cli: Any, cli_env: dict[str, str], sandbox: SandboxHandle
) -> None:
    env = cli_env
    settings = load_settings(environ=env)
    day = local_today(datetime.now(UTC), settings.timezone) + timedelta(days=1)
    target = SoldOutVenue(sandbox, day, settings)
    ask = ["notify", "add", "--venue", str(target.venue.id), "--date", str(day), "--party", "2"]
    titled = run_json(cli, *ask, "--window", "18:00-21:00", "--title", "Anniversary", env=env)
    plain = run_json(cli, *ask, "--until", str(day + timedelta(days=1)), env=env)
    assert titled["title"] == "Anniversary"
    assert plain["title"] == f"2 - {day}..{day + timedelta(days=1)} - any"
    assert run_json(cli, "notify", "list", "--unread", env=env)["notify_requests"] == []

    target.open_one()
    checked = run_json(cli, "notify", "check", str(titled["id"]), env=env)["checked"]
    assert checked[0]["status"] == "satisfied"
    unread = run_json(cli, "notify", "list", "--unread", env=env)["notify_requests"]
    assert [(r["id"], r["title"], r["unread"]) for r in unread] == [
        (titled["id"], "Anniversary", True)
    ]
    renamed = run_json(cli, "notify", "rename", str(titled["id"]), "Our anniversary", env=env)
    assert renamed["title"] == "Our anniversary" and renamed["unread"] is True

    assert run_json(cli, "notify", "read", str(titled["id"]), env=env) == {
        "marked_read": [titled["id"]]
    }
    assert run_json(cli, "notify", "list", "--unread", env=env)["notify_requests"] == []
    listed = {r["id"]: r for r in run_json(cli, "notify", "list", env=env)["notify_requests"]}
    assert listed[titled["id"]]["read_at"].endswith("Z")  # an ISO-8601 UTC instant
    assert listed[titled["id"]]["title"] == "Our anniversary"
