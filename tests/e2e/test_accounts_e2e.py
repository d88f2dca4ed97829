"""Several Resy accounts against the sandbox, on both backends: logging in to each, acting
for one with --account, a supervisor booking for two accounts at once, and bad or unknown
accounts refused with nothing written. No token or refresh cookie in any output."""

from __future__ import annotations

import json
import stat
import time as wall
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from booking_support import bookable, soon, unreleased
from sandbox_tools import live_config
from typer.testing import CliRunner

from resywatch.cli.app import app
from resywatch.config import default_config_path, read_config_file
from resywatch.sandbox import SandboxConfig, SandboxHandle
from resywatch.sandbox.config import DEMO_EMAIL, DEMO_PASSWORD

FRIEND_EMAIL, FRIEND_PASSWORD = "friend@resywatch.test", "friend-password"


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return live_config(speed=1.0)  # real time: the supervisor runs on the wall clock


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env  # no token from the environment: the accounts log in


def login(cli: Any, env: dict[str, str], email: str, password: str, *account: str) -> Any:
    result = cli(
        "auth", "login", "--email", email, "--password-stdin", *account, "--json",
        env=env, input=f"{password}\n",
    )  # fmt: skip
    return json.loads(result.stdout)


def secrets_on_file() -> list[str]:
    values = read_config_file(default_config_path())
    found = [values.get("resy_auth_token"), values.get("resy_refresh_token")]
    for table in values.get("accounts", {}).values():
        found += [table.get("auth_token"), table.get("refresh_token")]
    return [s for s in found if s]


def iso(instant: float) -> str:
    return datetime.fromtimestamp(instant, UTC).isoformat().replace("+00:00", "Z")


def test_each_account_logs_in_and_status_lists_them(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    friend = sandbox.state.add_user(FRIEND_EMAIL, FRIEND_PASSWORD, "Friend")
    outputs = []
    mine = login(cli, env, DEMO_EMAIL, DEMO_PASSWORD)
    theirs = login(cli, env, FRIEND_EMAIL, FRIEND_PASSWORD, "--account", "friend")
    assert (mine["account_name"], theirs["account_name"]) == ("default", "friend")
    assert mine["refresh_kept"] and theirs["refresh_kept"]
    config = default_config_path()
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert len(secrets_on_file()) == 4  # two tokens, two refresh cookies

    status = cli("auth", "status", "--json", env=env)
    document = json.loads(status.stdout)
    assert document["account_name"] == "default"
    assert document["account"]["email"] == DEMO_EMAIL
    assert [(a["name"], a["refreshable"]) for a in document["accounts"]] == [
        ("default", True),
        ("friend", True),
    ]
    assert all(44 < a["expires_in_days"] <= 45 for a in document["accounts"])
    other = cli("auth", "status", "--account", "friend", "--json", env=env)
    assert json.loads(other.stdout)["account"]["user_id"] == friend.uid
    # RESYWATCH_ACCOUNT chooses the account as --account does.
    chosen = cli("auth", "status", "--json", env=env | {"RESYWATCH_ACCOUNT": "friend"})
    assert json.loads(chosen.stdout)["account"]["email"] == FRIEND_EMAIL
    human = cli("auth", "status", env=env)
    assert "friend" in human.stdout
    outputs += [status, other, chosen, human]

    out = cli("auth", "logout", "--account", "friend", "--json", env=env)
    assert json.loads(out.stdout)["removed"] is True
    outputs.append(out)
    assert "friend" not in config.read_text()
    assert "[resy]" in config.read_text()  # the default account is left alone
    gone = cli("auth", "status", "--account", "friend", "--json", env=env, expect=2)
    assert json.loads(gone.stdout)["error"]["code"] == "unknown_account"
    for result in outputs:
        for secret in secrets_on_file():
            assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["reservations", "list"],
        ["reservations", "cancel", "123", "--yes"],
        ["book", "now", "--venue", "1", "--date", "2030-01-01", "--party", "2", "--dry-run"],
        ["notify", "add", "--venue", "1", "--date", "2030-01-01", "--party", "2"],
        ["watch", "add", "venues", "--venue", "1", "--date", "2030-01-01", "--party", "2"],
        [
            "book",
            "schedule",
            "add",
            "--venue",
            "1",
            "--date",
            "2030-01-01",
            "--party",
            "2",
            "--at",
            "2029-12-01 10:00",
        ],
    ],
)
@pytest.mark.parametrize(("account", "code"), [("nobody", "unknown_account"), ("Bad Name", "")])
def test_an_unknown_or_bad_account_is_refused_and_nothing_is_written(
    cli: Any,
    env: dict[str, str],
    sandbox: SandboxHandle,
    command: list[str],
    account: str,
    code: str,
) -> None:
    login(cli, env, DEMO_EMAIL, DEMO_PASSWORD)
    result = cli(*command, "--account", account, "--json", env=env, expect=2)
    error = json.loads(result.stdout)["error"]
    assert account in error["message"]
    if code:
        assert error["code"] == code and "auth login --account nobody" in error["message"]
    for listing in (["watch", "list"], ["notify", "list"], ["book", "schedule", "list", "--all"]):
        document = json.loads(cli(*listing, "--json", env=env).stdout)
        assert not any(document.values()), listing
    assert sandbox.state.traffic.snapshot()["counters"].get("/3/cancel", 0) == 0
    assert sandbox.state.traffic.snapshot()["counters"].get("/3/book", 0) == 0


def test_two_accounts_book_different_slots_in_one_run_forever(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    friend = sandbox.state.add_user(FRIEND_EMAIL, FRIEND_PASSWORD, "Friend")
    login(cli, env, DEMO_EMAIL, DEMO_PASSWORD)
    login(cli, env, FRIEND_EMAIL, FRIEND_PASSWORD, "--account", "friend")
    (mine, day_a), (theirs, day_b) = unreleased(sandbox), unreleased(sandbox, skip=1)
    instant = wall.time() + 4
    for venue, day, account in ((mine, day_a, []), (theirs, day_b, ["--account", "friend"])):
        sandbox.state.force_release(venue, day, instant)
        added = cli(
            "book", "schedule", "add", "--venue", str(venue.id), "--date", str(day),
            "--party", "2", "--window", "18:00-21:00", "--at", iso(instant), "--lead", "1s",
            *account, "--json", env=env,
        )  # fmt: skip
        assert json.loads(added.stdout)["account"] == (account[1] if account else "default")

    # One supervisor, one pass of the snipes job: both snipes run in it, each with its
    # account's token.
    cli("run-forever", "--job", "snipes", "--max-passes", "1", env=env)

    snipes = json.loads(cli("book", "schedule", "list", "--all", "--json", env=env).stdout)
    assert sorted((s["account"], s["outcome"]) for s in snipes["snipes"]) == [
        ("default", "booked"),
        ("friend", "booked"),
    ]
    world, demo_uid = sandbox.state.world, sandbox.state.user.uid
    held = {
        uid: [r.venue_id for r in world.user_reservations(uid) if r.cancelled_at is None]
        for uid in (demo_uid, friend.uid)
    }
    assert held == {demo_uid: [mine.id], friend.uid: [theirs.id]}
    # Each account lists its own reservations.
    listed = json.loads(
        cli("reservations", "list", "--account", "friend", "--json", env=env).stdout
    )
    assert [r["venue_id"] for r in listed["reservations"]] == [theirs.id]
    assert sandbox.state.traffic.snapshot()["counters"].get("/3/book", 0) == 2


def test_the_sandbox_refresh_switch_and_cron_refresh(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle, tmp_path: Path
) -> None:
    """`resywatch run tokens` (cron) refreshes a token inside the margin and keeps the new
    token and cookie (0600); with the sandbox refusing refreshes, the pass says so."""
    sandbox.state.configure_auth(token_lifetime_s=3 * 86400)  # inside the 7-day margin
    login(cli, env, DEMO_EMAIL, DEMO_PASSWORD)
    before = read_config_file(default_config_path())
    result = cli("run", "tokens", "--json", env=env)
    (one,) = json.loads(result.stdout)["passes"]
    assert one["counts"] == {"accounts": 1, "refreshed": 1, "not_refreshed": 0, "notified": 0}
    after = read_config_file(default_config_path())
    assert after["resy_auth_token"] != before["resy_auth_token"]
    assert after["resy_refresh_token"] != before["resy_refresh_token"]
    assert stat.S_IMODE(default_config_path().stat().st_mode) == 0o600
    for secret in [*secrets_on_file(), before["resy_refresh_token"]]:
        assert secret not in result.stdout + result.stderr

    sandbox.state.configure_auth(refuse_refresh=True)
    refused = json.loads(cli("run", "tokens", "--json", env=env).stdout)["passes"][0]
    assert refused["counts"]["not_refreshed"] == 1 and refused["counts"]["notified"] == 1
    assert read_config_file(default_config_path()) == after  # nothing lost
    # `health` names the account whose token lapses unrefreshed (its exit code is the worst
    # check's: the jobs that never ran may be worse).
    report = json.loads(CliRunner().invoke(app, ["health", "--json"], env=env).stdout)
    (accounts,) = [c for c in report["checks"] if c["name"] == "accounts"]
    assert accounts["status"] == "WARN" and "default" in accounts["message"]


@pytest.mark.parametrize("kind", ["notify", "watch"])
def test_auto_book_books_as_the_account_it_was_added_for(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle, kind: str
) -> None:
    friend = sandbox.state.add_user(FRIEND_EMAIL, FRIEND_PASSWORD, "Friend")
    login(cli, env, DEMO_EMAIL, DEMO_PASSWORD)
    login(cli, env, FRIEND_EMAIL, FRIEND_PASSWORD, "--account", "friend")
    target = bookable(sandbox, soon(env))
    want = ["--venue", str(target.venue.id), "--date", str(target.day), "--party", "2",
            "--window", "18:00-21:00", "--auto-book", "--account", "friend"]  # fmt: skip
    add = ["notify", "add"] if kind == "notify" else ["watch", "add", "venues"]
    added = json.loads(cli(*add, *want, "--json", env=env).stdout)
    assert added["account"] == "friend"
    # The check runs as the default account (as cron's would); the booking is the friend's.
    cli(kind, "check", "--json", env=env)
    world = sandbox.state.world
    booked = [r.venue_id for r in world.user_reservations(friend.uid) if r.cancelled_at is None]
    assert booked == [target.venue.id]
    assert world.user_reservations(sandbox.state.user.uid) == []
