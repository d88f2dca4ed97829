"""What a watch or a notify request found stays visible (the seed's "my watches"): `watch
show` and `watch list` give the last check and the last hits, `notify list` keeps satisfied
requests with what they found and when (`--active` hides them). On each backend."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sandbox_tools import SoldOutVenue, live_config, run_json

from resywatch.config import load_settings
from resywatch.sandbox import SandboxConfig, SandboxHandle
from resywatch.services.vocabulary import local_today


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return live_config()


def _tomorrow(env: dict[str, str]) -> date:
    return local_today(datetime.now(UTC), load_settings(environ=env).timezone) + timedelta(1)


def _instant(text: str) -> datetime:
    assert text.endswith("Z")  # ISO-8601 UTC
    return datetime.fromisoformat(text)


def test_watch_show_and_list_give_the_last_check_and_the_last_hits(
    cli: Any, cli_env: dict[str, str], sandbox: SandboxHandle
) -> None:
    env, day = cli_env, _tomorrow(cli_env)
    target = SoldOutVenue(sandbox, day, load_settings(environ=env))
    watch = run_json(
        cli, "watch", "add", "venues", "--venue", str(target.venue.id), "--date", str(day),
        "--party", "2", "--window", "18:00-21:00", env=env,
    )  # fmt: skip
    wid = str(watch["id"])
    run_json(cli, "watch", "check", wid, env=env)
    quiet = run_json(cli, "watch", "show", wid, env=env)
    assert quiet["last_checked_at"] is not None
    assert (quiet["last_hit_at"], quiet["last_hits"]) == (None, [])

    before = datetime.now(UTC)
    target.open_one()
    run_json(cli, "watch", "check", wid, env=env)
    run_json(cli, "watch", "check", wid, env=env)  # nothing new: the last hits stay
    shown = run_json(cli, "watch", "show", wid, env=env)
    (hit,) = shown["last_hits"]
    assert {k: hit[k] for k in ("kind", "venue_id", "venue_name", "day", "times")} == {
        "kind": "slots",
        "venue_id": target.venue.id,
        "venue_name": target.venue.name,
        "day": str(day),
        "times": [target.slot.time[:5]],
    }
    assert before <= _instant(hit["found_at"]) <= _instant(shown["last_checked_at"])
    assert shown["last_hit_at"] == hit["found_at"]
    (listed,) = run_json(cli, "watch", "list", env=env)["watches"]
    assert listed["last_hit_at"] == hit["found_at"]

    text = cli("watch", "show", wid, env=env).stdout  # in a pipe: ISO times, TSV rows
    assert f"last hit:     {hit['found_at']}" in text
    assert f"{hit['found_at']}\t{target.venue.name}\t{day}\t{target.slot.time[:5]}" in text
    assert hit["found_at"] in cli("watch", "list", env=env).stdout


def test_a_watch_added_after_one_was_removed_has_no_hits(
    cli: Any, cli_env: dict[str, str], sandbox: SandboxHandle
) -> None:
    env, day = cli_env, _tomorrow(cli_env)
    target = SoldOutVenue(sandbox, day, load_settings(environ=env))
    add = ["watch", "add", "new-venues", "--query", target.venue.name, "--date", str(day)]
    add += ["--party", "2", "--window", "18:00-21:00"]
    first = str(run_json(cli, *add, env=env)["id"])
    run_json(cli, "watch", "check", first, env=env)  # the baseline
    target.open_one()
    assert run_json(cli, "watch", "check", first, env=env)["hits"]
    (hit,) = run_json(cli, "watch", "show", first, env=env)["last_hits"]
    assert (hit["kind"], hit["venue_name"], hit["day"]) == (
        "new-venue",
        target.venue.name,
        str(day),
    )

    run_json(cli, "watch", "remove", first, env=env)
    second = run_json(cli, *add, env=env)
    assert str(second["id"]) != first  # ids are never handed out again (migration 0005)
    assert (
        second["last_hit_at"],
        run_json(cli, "watch", "show", str(second["id"]), env=env)["last_hits"],
    ) == (None, [])


def test_notify_list_keeps_satisfied_requests_with_what_and_when(
    cli: Any, cli_env: dict[str, str], sandbox: SandboxHandle
) -> None:
    env, day = cli_env, _tomorrow(cli_env)
    target = SoldOutVenue(sandbox, day, load_settings(environ=env))
    wanted = ["--date", str(day), "--party", "2", "--window", "18:00-21:00"]
    done = run_json(cli, "notify", "add", "--venue", str(target.venue.id), *wanted, env=env)
    waiting = run_json(cli, "notify", "add", "--venue", "Carbone", *wanted, env=env)
    target.open_one()
    run_json(cli, "notify", "check", str(done["id"]), env=env)

    requests = {r["id"]: r for r in run_json(cli, "notify", "list", env=env)["notify_requests"]}
    assert set(requests) == {done["id"], waiting["id"]}
    satisfied = requests[done["id"]]
    assert satisfied["status"] == "satisfied"
    assert satisfied["found"]["times"] == [f"{day} {target.slot.time[:5]}"]
    found_at = _instant(satisfied["satisfied_at"])
    assert datetime.now(UTC) - timedelta(minutes=1) < found_at <= datetime.now(UTC)
    assert requests[waiting["id"]]["status"] == "pending"

    active = run_json(cli, "notify", "list", "--active", env=env)["notify_requests"]
    assert [r["id"] for r in active] == [waiting["id"]]

    text = cli("notify", "list", env=env).stdout
    assert f"satisfied\t{day} {target.slot.time[:5]}\t{satisfied['satisfied_at']}" in text
    assert "satisfied" not in cli("notify", "list", "--active", env=env).stdout
