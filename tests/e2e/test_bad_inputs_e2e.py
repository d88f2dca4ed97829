"""Against the sandbox, on each backend: what Resy's rate limiting does to a booking command,
and venue names that name nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from booking_support import book_requests, bookable, fault
from sandbox_tools import live_config

from resywatch.config import load_settings
from resywatch.db.engine import Database
from resywatch.db.plain import host_states
from resywatch.sandbox import SandboxConfig, SandboxHandle
from resywatch.services.vocabulary import local_today


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return live_config()


def test_booking_commands_under_rate_limiting_exit_17(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle, database_url: str
) -> None:
    day = local_today(datetime.now(UTC), load_settings(environ=env).timezone) + timedelta(2)
    unknown, known = bookable(sandbox, day), bookable(sandbox, day, skip=1)
    cli("venue", "show", str(known.venue.id), env=env)  # remembered: booking it asks no venue

    def refused(*argv: str, venue: int = unknown.venue.id) -> dict[str, Any]:
        wanted = ["--venue", str(venue), "--date", str(day), "--party", "2"]
        result = cli(*argv, *wanted, "--json", env=env, expect=17)
        error: dict[str, Any] = json.loads(result.stdout)["error"]
        assert error["code"] == "rate_limited"
        assert error["exit_code"] == 17
        assert "429" in error["message"]
        return error

    # A 429 telling us to stay away an hour, met while finding the venue: the shared breaker
    # opens for that long.
    fault(sandbox, "/3/venue", fail_next=1, fail_status=429, retry_after=3600)
    refused("book", "now")
    db = Database(database_url)
    try:
        (host,) = host_states(db)
    finally:
        db.dispose()
    assert host.open_until is not None and host.last_error is not None
    assert host.last_error.startswith("rate_limited:")

    # With the breaker open nothing is sent, and every booking command says why: finding the
    # venue, the release, or (venue known) the slots.
    assert "until" in refused("book", "now", venue=known.venue.id)["message"]
    assert "until" in refused("book", "now")["message"]
    refused("book", "snipe", "--lead-days", "1", "--release-time", "09:00")
    refused("book", "schedule", "add", "--at", f"{day} 09:00")
    assert book_requests(sandbox) == 0


@pytest.mark.parametrize(("name", "expect"), [("²", 3), ("%", 2), ("_", 2)])
def test_a_venue_name_that_names_nothing(
    cli: Any, cli_env: dict[str, str], name: str, expect: int
) -> None:
    result = cli("venue", "show", name, "--json", env=cli_env, expect=expect)
    assert name in json.loads(result.stdout)["error"]["message"]


def test_every_booking_command_takes_yes(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    day = local_today(datetime.now(UTC), load_settings(environ=env).timezone) + timedelta(2)
    target = bookable(sandbox, day)
    wanted = ["--venue", str(target.venue.id), "--date", str(day), "--party", "2"]
    a_moment_ago = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    for argv in (
        ["book", "now"],
        ["book", "snipe", "--at", a_moment_ago],
        ["book", "schedule", "add", "--at", a_moment_ago],
    ):
        result = cli(*argv, *wanted, "--dry-run", "--yes", "--json", env=env)
        assert json.loads(result.stdout)["dry_run"] is True
    assert book_requests(sandbox) == 0


def _rows(cli: Any, env: dict[str, str]) -> dict[str, int]:
    """Rows per table, but the Resy call log and host state (looking a venue up is a call)."""
    info = json.loads(cli("admin", "db-info", "--json", env=env).stdout)["row_counts"]
    return {t: n for t, n in info.items() if t not in ("api_call_log", "resy_host")}


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--budget", "99999999999"], "99999999999"),
        (["--lead", "1h"], "--lead"),
        (["--interval", "2m"], "--interval"),
        (["--max-total", "inf"], "--max-total"),
        (["--at", "9999-12-31 23:59"], "9999-12-31"),
        (["--at", "{after}"], "after the reservation date"),
        (["--date", "9999-12-31"], "9999-12-31"),
    ],
)
def test_snipe_numbers_and_instants_beyond_their_bounds_are_exit_2(
    cli: Any, cli_env: dict[str, str], extra: list[str], named: str
) -> None:
    day = local_today(datetime.now(UTC), load_settings(environ=cli_env).timezone) + timedelta(9)
    extra = [e.replace("{after}", f"{day + timedelta(3)} 10:00") for e in extra]
    argv = ["book", "schedule", "add", "--venue", "Carbone", "--date", str(day), "--party", "2"]
    argv += ["--at", f"{day - timedelta(1)} 10:00"] if "--at" not in extra else []
    before = _rows(cli, cli_env)
    result = cli(*argv, *extra, "--json", env=cli_env, expect=2)
    assert named in json.loads(result.stdout)["error"]["message"]
    assert _rows(cli, cli_env) == before
