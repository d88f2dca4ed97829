"""`--time` lists and `--repeat` through the CLI on each backend: a bad list or rule is exit 2
naming what is wrong, before any Resy call, with nothing written."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest

from resywatch.db.engine import Database
from resywatch.services.admin import db_info

DAY = date.today() + timedelta(days=5)
BOOK = ["--venue", "1", "--date", DAY.isoformat(), "--party", "2"]
# No Resy is reachable: a command that got as far as asking it would fail (exit 1), not 2.
NO_RESY = {"RESYWATCH_RESY_BASE_URL": "http://127.0.0.1:9", "RESYWATCH_RESY_API_KEY": "k"}
COMMANDS = {
    "book now": ["book", "now", *BOOK],
    "book snipe": ["book", "snipe", *BOOK, "--lead-days", "14", "--release-time", "09:00"],
    "schedule add": ["book", "schedule", "add", *BOOK, "--at", f"{DAY} 09:00"],
    "watch add": ["watch", "add", "venues", *BOOK, "--auto-book"],
    "notify add": ["notify", "add", *BOOK, "--auto-book"],
}
BAD_TIMES = [
    (["--time", "19:75"], "'19:75' is not a time of day"),
    (["--time", "19:00,,20:00"], "has an empty item"),
    (["--time", "19:30,"], "has an empty item"),
    (["--time", "19:30,19:00,19:30"], "lists 19:30 twice"),
    (["--time", "19:30,22:00", "--window", "18:00-21:00"], "22:00 is outside --window"),
]


def rows(database_url: str) -> dict[str, int]:
    db = Database(database_url)
    try:
        return db_info(db).row_counts
    finally:
        db.dispose()


def refused(cli: Any, database_url: str, argv: list[str]) -> str:
    before = rows(database_url)
    result = cli("--database-url", database_url, *argv, "--json", env=NO_RESY, expect=2)
    error = json.loads(result.stdout)["error"]
    assert (error["exit_code"], error["code"]) == (2, "bad_input")
    assert "Traceback" not in result.stderr
    assert rows(database_url) == before
    return str(error["message"])


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("extra", "words"), BAD_TIMES, ids=[w for _, w in BAD_TIMES])
def test_a_bad_time_list_is_exit_2_on_every_command_that_books(
    cli: Any, database_url: str, command: str, extra: list[str], words: str
) -> None:
    assert words in refused(cli, database_url, [*COMMANDS[command], *extra])


FRIDAY = DAY + timedelta(days=(4 - DAY.weekday()) % 7)
SERIES = ["book", "schedule", "add", "--venue", "1", "--date", FRIDAY.isoformat(), "--party", "2",
          "--release-time", "09:00"]  # fmt: skip
BAD_SERIES = [
    (["--repeat", "monthly", "--days-ahead", "14"], "is not a rule"),
    (["--repeat", "weekly:fri,funday", "--days-ahead", "14"], "'funday' is not a weekday"),
    (["--repeat", "weekly:mon", "--days-ahead", "14"], "is a Friday, not a day --repeat"),
    (["--repeat", "daily"], "--repeat and --days-ahead go together"),
    (["--days-ahead", "14"], "--repeat and --days-ahead go together"),
    (["--repeat", "daily", "--days-ahead", "400"], "--days-ahead is a number of days, 0 to 365"),
    (["--repeat", "daily", "--days-ahead", "14", "--lead-days", "14"], "not --at or --lead-days"),
    (["--repeat", "daily", "--days-ahead", "14", "--at", f"{DAY} 09:00"], "not --at"),
]


@pytest.mark.parametrize(("extra", "words"), BAD_SERIES, ids=[w for _, w in BAD_SERIES])
def test_a_bad_series_is_exit_2_and_saves_nothing(
    cli: Any, database_url: str, extra: list[str], words: str
) -> None:
    argv = SERIES[:-2] if "--at" in extra else SERIES  # --at with --release-time: not both
    assert words in refused(cli, database_url, [*argv, *extra])


def test_the_help_says_how_a_time_list_ranks(cli: Any) -> None:
    for command in (["book", "now"], ["book", "snipe"], ["book", "schedule", "add"]):
        text = " ".join(cli(*command, "--help").stdout.split())
        assert "ranked list 19:30,19:00,20:15" in text
        assert "the first listed time open wins" in text
    for command in (["watch", "add", "venues"], ["notify", "add"]):
        text = " ".join(cli(*command, "--help").stdout.split())
        assert "ranked list 19:30,19:00" in text and "the first listed time open wins" in text
    text = " ".join(cli("book", "schedule", "add", "--help").stdout.split())
    assert "--repeat" in text and "weekly:DAYS" in text and "--days-ahead" in text
