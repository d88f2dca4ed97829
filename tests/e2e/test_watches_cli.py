"""Watches and notify requests through the CLI against the sandbox (clock frozen at the real
time, no background cancellations): each notifies exactly once, and bad input writes
nothing."""

from __future__ import annotations

import json
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


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env


def tomorrow(env: dict[str, str]) -> str:
    settings = load_settings(environ=env)
    return str(local_today(datetime.now(UTC), settings.timezone) + timedelta(days=1))


def counts(cli: Any, env: dict[str, str]) -> dict[str, int]:
    """Rows per table, but the API call log and the Resy host's shared state: looking a
    venue up is a real call to Resy, recorded even when the command then refuses the input."""
    info: dict[str, int] = run_json(cli, "admin", "db-info", env=env)["row_counts"]
    return {t: rows for t, rows in info.items() if t not in ("api_call_log", "resy_host")}


def test_a_venues_watch_notifies_once_for_a_slot_that_appears(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    day = tomorrow(env)
    target = SoldOutVenue(sandbox, datetime.fromisoformat(day).date(), load_settings(environ=env))
    watch = run_json(
        cli, "watch", "add", "venues", "--venue", str(target.venue.id), "--date", day,
        "--party", "2", "--window", "18:00-21:00", env=env,
    )  # fmt: skip
    assert watch["venues"] == [{"id": target.venue.id, "name": target.venue.name}]

    first = run_json(cli, "watch", "check", str(watch["id"]), env=env)
    assert first["hits"] == []
    target.open_one()
    second = run_json(cli, "watch", "check", str(watch["id"]), env=env)
    assert [(h["venue_id"], h["times"]) for h in second["hits"]] == [
        (target.venue.id, [target.slot.time[:5]])
    ]
    assert run_json(cli, "watch", "check", "--all", env=env)["hits"] == []
    notes = run_json(cli, "notify", "list", env=env)["notifications"]
    assert [n["kind"] for n in notes] == ["watch_hit"]
    assert target.venue.name in notes[0]["title"]

    # Not due again until its interval has passed: the scheduled check skips it.
    assert run_json(cli, "watch", "check", env=env)["checked"] == []


def test_a_new_venues_watch_baselines_then_notifies_once(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    day = tomorrow(env)
    target = SoldOutVenue(sandbox, datetime.fromisoformat(day).date(), load_settings(environ=env))
    watch = run_json(
        cli, "watch", "add", "new-venues", "--query", target.venue.name, "--date", day,
        "--party", "2", "--window", "18:00-21:00", "--every", "1m", env=env,
    )  # fmt: skip
    first = run_json(cli, "watch", "check", str(watch["id"]), env=env)
    assert first["checked"][0]["baseline"] is True and first["hits"] == []
    target.open_one()
    second = run_json(cli, "watch", "check", str(watch["id"]), env=env)
    assert [h["venue_name"] for h in second["hits"]] == [target.venue.name]
    assert run_json(cli, "watch", "check", str(watch["id"]), env=env)["hits"] == []


def test_a_notify_request_ends_after_its_hit(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    day = tomorrow(env)
    target = SoldOutVenue(sandbox, datetime.fromisoformat(day).date(), load_settings(environ=env))
    request = run_json(
        cli, "notify", "add", "--venue", target.venue.name, "--date", day, "--party", "2",
        "--window", "18:00-21:00", env=env,
    )  # fmt: skip
    assert request["status"] == "pending"
    assert run_json(cli, "notify", "check", env=env)["checked"][0]["status"] == "pending"
    target.open_one()
    done = run_json(cli, "notify", "check", env=env)["checked"]
    assert done[0]["status"] == "satisfied" and target.slot.time[:5] in done[0]["found"]
    assert run_json(cli, "notify", "check", env=env)["checked"] == []
    mine = run_json(cli, "notify", "list", "--active", env=env)
    assert mine["notify_requests"] == []
    assert [n["kind"] for n in mine["notifications"]] == ["notify_hit"]


def test_watch_lifecycle(cli: Any, env: dict[str, str], sandbox: SandboxHandle) -> None:
    day = tomorrow(env)
    watch = run_json(
        cli, "watch", "add", "venues", "--venue", "Carbone", "--date", day, "--party", "4",
        "--every", "60m", env=env,
    )  # fmt: skip
    assert watch["interval_s"] == 3600
    assert run_json(cli, "watch", "pause", str(watch["id"]), env=env)["status"] == "paused"
    assert run_json(cli, "watch", "check", "--all", env=env)["checked"] == []
    assert run_json(cli, "watch", "resume", str(watch["id"]), env=env)["status"] == "active"
    assert [w["id"] for w in run_json(cli, "watch", "list", env=env)["watches"]] == [watch["id"]]
    assert run_json(cli, "watch", "show", str(watch["id"]), env=env)["party_size"] == 4
    run_json(cli, "watch", "remove", str(watch["id"]), env=env)
    missing = cli("watch", "show", str(watch["id"]), "--json", env=env, expect=3)
    assert json.loads(missing.stdout)["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["watch", "add", "venues", "--venue", "No Such Place At All", "--party", "2"], "no venue"),
        (["watch", "add", "venues", "--venue", "Tavern", "--party", "2"], "several venues"),
        (["watch", "add", "venues", "--venue", "Carbone", "--party", "0"], "party size"),
        (["watch", "add", "venues", "--venue", "Carbone", "--party", "30"], "party size"),
        (["watch", "add", "venues", "--venue", "Carbone", "--party", "2", "--window",
          "21:00-18:00"], "ends before it starts"),
        (["watch", "add", "venues", "--venue", "Carbone", "--party", "2", "--every", "10s"],
         "between 1m and 24h"),
        (["watch", "add", "new-venues", "--party", "2", "--until", "2020-01-01"], "before --date"),
        (["notify", "add", "--venue", "Carbone", "--party", "2", "--window", "9pm-10pm"],
         "HH:MM"),
        (["notify", "add", "--venue", "No Such Place At All", "--party", "2"], "no venue"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_and_writes_nothing(
    cli: Any, env: dict[str, str], args: list[str], complaint: str
) -> None:
    day = tomorrow(env)
    before = counts(cli, env)
    result = cli(*args, "--date", day, "--json", env=env, expect=2)
    assert complaint in json.loads(result.stdout)["error"]["message"]
    assert counts(cli, env) == before


def test_a_past_date_is_refused(cli: Any, env: dict[str, str]) -> None:
    result = cli(
        "notify", "add", "--venue", "Carbone", "--date", "2020-01-01", "--party", "2", "--json",
        env=env, expect=2,
    )  # fmt: skip
    assert "in the past" in json.loads(result.stdout)["error"]["message"]
    assert counts(cli, env)["notify_request"] == 0


def notes(cli: Any, env: dict[str, str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = run_json(cli, "notify", "list", env=env)["notifications"]
    return found


def test_a_notify_request_added_after_one_was_removed_is_checked_and_announced(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    # SQLite once gave the removed request's id to the next one: its hit collided with the
    # old `notify:<id>` message and every `notify check` failed.
    day = tomorrow(env)
    target = SoldOutVenue(sandbox, datetime.fromisoformat(day).date(), load_settings(environ=env))
    ask = ("notify", "add", "--venue", target.venue.name, "--date", day, "--party", "2")
    first = run_json(cli, *ask, env=env)
    target.open_one()
    assert run_json(cli, "notify", "check", env=env)["checked"][0]["status"] == "satisfied"
    cli("notify", "deliver", env=env)
    run_json(cli, "notify", "remove", str(first["id"]), env=env)

    second = run_json(cli, *ask, env=env)
    assert second["id"] != first["id"]
    done = run_json(cli, "notify", "check", env=env)["checked"]
    assert [(c["id"], c["status"]) for c in done] == [(second["id"], "satisfied")]
    assert [n["kind"] for n in notes(cli, env)] == ["notify_hit", "notify_hit"]


def test_removing_a_notify_request_retires_its_undelivered_hit(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    day = tomorrow(env)
    target = SoldOutVenue(sandbox, datetime.fromisoformat(day).date(), load_settings(environ=env))
    request = run_json(
        cli, "notify", "add", "--venue", target.venue.name, "--date", day, "--party", "2", env=env
    )
    target.open_one()
    run_json(cli, "notify", "check", env=env)
    assert [n["status"] for n in notes(cli, env)] == ["pending"]
    run_json(cli, "notify", "remove", str(request["id"]), env=env)
    assert notes(cli, env) == []  # nothing about a removed request arrives later


def test_a_watch_added_again_after_removal_starts_with_no_history(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    # SQLite once gave the removed watch's id to the next one, which then inherited its
    # `watch:<id>:` messages and said "nothing new" about a slot open all along.
    day = tomorrow(env)
    target = SoldOutVenue(sandbox, datetime.fromisoformat(day).date(), load_settings(environ=env))
    add = ("watch", "add", "venues", "--venue", str(target.venue.id), "--date", day,
           "--party", "2", "--window", "18:00-21:00")  # fmt: skip
    first = run_json(cli, *add, env=env)
    target.open_one()
    assert run_json(cli, "watch", "check", str(first["id"]), env=env)["hits"]
    cli("notify", "deliver", env=env)
    run_json(cli, "watch", "remove", str(first["id"]), env=env)

    second = run_json(cli, *add, env=env)
    assert second["id"] != first["id"]
    hits = run_json(cli, "watch", "check", str(second["id"]), env=env)["hits"]
    assert [(h["venue_id"], h["times"]) for h in hits] == [
        (target.venue.id, [target.slot.time[:5]])
    ]


def test_removing_a_watch_retires_its_undelivered_hits_and_snapshots(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    day = tomorrow(env)
    target = SoldOutVenue(sandbox, datetime.fromisoformat(day).date(), load_settings(environ=env))
    watches = [
        run_json(cli, "watch", "add", "venues", "--venue", str(target.venue.id), "--date", day,
                 "--party", "2", "--window", "18:00-21:00", env=env),
        run_json(cli, "watch", "add", "new-venues", "--query", target.venue.name, "--date", day,
                 "--party", "2", "--window", "18:00-21:00", env=env),
    ]  # fmt: skip
    run_json(cli, "watch", "check", "--all", env=env)  # the new-venues baseline
    target.open_one()
    run_json(cli, "watch", "check", "--all", env=env)
    assert [n["status"] for n in notes(cli, env)] == ["pending", "pending"]
    for watch in watches:
        run_json(cli, "watch", "remove", str(watch["id"]), env=env)
    left = counts(cli, env)
    assert (left["notification"], left["venue_search_snapshot"], left["watch"]) == (0, 0, 0)
