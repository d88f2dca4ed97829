"""Bad input ends as exit 2 (or 3 for what cannot exist) naming the value, with nothing
written, on each backend: never as an internal error (exit 1) or the SQL of one.

One test per class of value: ids, durations, venue-name filters.
"""

from __future__ import annotations

import json
import socket
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from resywatch.db.engine import Database
from resywatch.db.models import ApiCallLog
from resywatch.services.admin import db_info

BEYOND_64_BITS = "99999999999999999999999"
DAY = (date.today() + timedelta(days=5)).isoformat()
BOOK = ["--venue", "1", "--date", DAY, "--party", "2"]
SNIPE = [*BOOK, "--at", "2026-01-01 10:00"]
# No Resy is reachable: a command that would ask it fails (exit 1) instead of passing.
NO_RESY = {"RESYWATCH_RESY_BASE_URL": "http://127.0.0.1:9", "RESYWATCH_RESY_API_KEY": "k"}


def _rows(database_url: str) -> dict[str, int]:
    db = Database(database_url)
    try:
        return db_info(db).row_counts
    finally:
        db.dispose()


def _refused(cli: Any, database_url: str, argv: list[str], expect: int) -> dict[str, Any]:
    """Run `argv` with --json; check the exit code, the envelope and that nothing was written."""
    before = _rows(database_url)
    result = cli("--database-url", database_url, *argv, "--json", env=NO_RESY, expect=expect)
    error: dict[str, Any] = json.loads(result.stdout)["error"]
    assert error["exit_code"] == expect
    assert "Traceback" not in result.stderr
    assert "SELECT" not in error["message"]
    assert _rows(database_url) == before
    return error


BAD_IDS = [
    (["venue", "show", BEYOND_64_BITS], BEYOND_64_BITS),
    (["book", "schedule", "cancel", BEYOND_64_BITS], BEYOND_64_BITS),
    (["book", "schedule", "cancel", "٣"], "٣"),
    (["notify", "remove", BEYOND_64_BITS], BEYOND_64_BITS),
    (["notify", "check", "²"], "²"),
    (["notify", "rename", BEYOND_64_BITS, "A title"], BEYOND_64_BITS),
    (["notify", "read", "+1"], "+1"),
    (["watch", "show", BEYOND_64_BITS], BEYOND_64_BITS),
    (["watch", "remove", "²"], "²"),
    (["watch", "pause", "1_000"], "1_000"),
    (["watch", "resume", "+1"], "+1"),
    (["watch", "check", "9223372036854775808"], "9223372036854775808"),
    (["book", "now", "--venue", BEYOND_64_BITS, "--date", DAY, "--party", "2"], BEYOND_64_BITS),
    (["notify", "add", "--venue", BEYOND_64_BITS, "--date", DAY, "--party", "2"], BEYOND_64_BITS),
    (
        ["watch", "add", "venues", "--venue", BEYOND_64_BITS, "--date", DAY, "--party", "2"],
        BEYOND_64_BITS,
    ),
    (
        ["book", "now", *BOOK, "--payment-method", BEYOND_64_BITS],
        BEYOND_64_BITS,
    ),
    (
        ["book", "snipe", *BOOK, "--lead-days", "²"],
        "²",
    ),
]


@pytest.mark.parametrize(("argv", "value"), BAD_IDS, ids=[" ".join(a[:3]) for a, _ in BAD_IDS])
def test_an_id_that_is_not_one_is_exit_2_naming_it(
    cli: Any, database_url: str, argv: list[str], value: str
) -> None:
    error = _refused(cli, database_url, argv, expect=2)
    assert error["code"] == "bad_input"
    assert value in error["message"]


# Well-formed ids that no row can have: PostgreSQL's INTEGER id columns stop at 2**31 - 1.
ABSENT_IDS = [
    ["watch", "show", "3000000000"],
    ["watch", "check", "4294967296"],
    ["notify", "remove", "2147483648"],
    ["notify", "check", "9223372036854775807"],
    ["notify", "rename", "2147483648", "A title"],
    ["notify", "read", "9223372036854775807"],
    ["book", "schedule", "cancel", "9223372036854775807"],
    ["book", "now", "--venue", "3000000000", "--date", DAY, "--party", "2"],
]


@pytest.mark.parametrize("argv", ABSENT_IDS, ids=[" ".join(a[:3]) for a in ABSENT_IDS])
def test_a_well_formed_id_beyond_any_row_is_not_found(
    cli: Any, database_url: str, argv: list[str]
) -> None:
    error = _refused(cli, database_url, argv, expect=3)
    assert error["code"] == "not_found"
    assert next(a for a in argv if a.isdigit() and len(a) > 9) in error["message"]


BAD_DURATIONS = [
    ["watch", "add", "venues", *BOOK, "--every", "99999999999w"],
    ["discover", "feed", "--since", "99999999999w"],
    ["discover", "feed", "--since", "5000000w"],
    ["discover", "feed", "--since", "9999-12-31T23:59:59-01:00"],
    ["book", "attempts", "--since", "5000000w"],
    ["admin", "logs", "--since", "99999999999d"],
    ["admin", "booking-errors", "--since", "5000000w"],
    ["run", "due", "--every", "5000000w"],
    ["book", "snipe", *SNIPE, "--deadline", "99999999999999999ms"],
    ["book", "schedule", "add", *SNIPE, "--late", "5000000w"],
]


@pytest.mark.parametrize(
    "argv", BAD_DURATIONS, ids=[" ".join(a[:2] + a[-2:]) for a in BAD_DURATIONS]
)
def test_a_duration_beyond_the_calendar_is_exit_2_naming_it(
    cli: Any, database_url: str, argv: list[str]
) -> None:
    error = _refused(cli, database_url, argv, expect=2)
    assert error["code"] == "bad_input"
    assert argv[-1] in error["message"]
    assert argv[-2] in error["message"]  # the option it was given to


@pytest.mark.parametrize(
    "argv",
    [
        ["discover", "feed", "--venue", "%"],
        ["discover", "patterns", "--venue", "_"],
        ["discover", "explain", "--venue", "%", "--date", DAY, "--time", "19:00"],
        ["book", "now", "--venue", "%", "--date", DAY, "--party", "2"],
        ["notify", "add", "--venue", "%%", "--date", DAY, "--party", "2"],
        ["venue", "show", " ! "],
    ],
    ids=["feed", "patterns", "explain", "book now", "notify add", "venue show"],
)
def test_a_venue_filter_with_nothing_to_match_is_exit_2(
    cli: Any, database_url: str, argv: list[str]
) -> None:
    error = _refused(cli, database_url, argv, expect=2)
    assert "no letters or digits" in error["message"]


def test_like_wildcards_in_a_filter_are_characters(cli: Any, database_url: str) -> None:
    db = Database(database_url)
    try:
        with db.write() as session:
            for endpoint in ("/3/find", "/3/book"):
                session.add(
                    ApiCallLog(at=datetime.now(UTC), method="GET", endpoint=endpoint, latency_ms=1)
                )
    finally:
        db.dispose()

    def endpoints(text: str) -> list[str]:
        argv = ["--database-url", database_url, "admin", "logs", "--endpoint", text, "--json"]
        return sorted(c["endpoint"] for c in json.loads(cli(*argv).stdout)["calls"])

    assert endpoints("%") == []
    assert endpoints("/3/_ook") == []
    assert endpoints("/3/b") == ["/3/book"]


@pytest.mark.parametrize("port", ["abc", "99999", "-1", "5432x"])
def test_a_database_url_port_that_is_not_one_is_exit_2(cli: Any, port: str) -> None:
    url = f"postgresql+psycopg://someone:pa55-word-xyz@127.0.0.1:{port}/resywatch"
    result = cli("admin", "db-info", "--json", env={"RESYWATCH_DATABASE_URL": url}, expect=2)
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "bad_config"
    assert "RESYWATCH_DATABASE_URL" in error["message"]
    assert port in error["message"]
    assert "pa55-word-xyz" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_on_a_database_from_a_newer_resywatch_says_upgrade(
    cli: Any, database_url: str
) -> None:
    db = Database(database_url)
    try:
        with db.write() as session:
            session.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    finally:
        db.dispose()
    refusals = [
        json.loads(cli("--database-url", database_url, *argv, "--json", expect=1).stdout)["error"]
        for argv in (["admin", "migrate"], ["watch", "list"])
    ]
    assert refusals[0] == refusals[1]
    assert refusals[0]["code"] == "database_not_ready"
    assert "9999_future" in refusals[0]["message"]
    assert "upgrade resywatch" in refusals[0]["message"]
    assert "revision 9999_future" in refusals[0]["message"]
    db = Database(database_url)
    try:
        with db.read() as session:
            assert session.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
                "9999_future"
            )
    finally:
        db.dispose()


def test_sandbox_serve_on_a_port_in_use_prints_one_json_document(cli: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = cli("sandbox", "serve", "--port", port, "--json", expect=1)
    document = json.loads(result.stdout)  # one document: anything more would not parse
    assert document["error"]["exit_code"] == 1
    assert f"127.0.0.1:{port}" in document["error"]["message"]
    assert "listening" not in result.stderr
