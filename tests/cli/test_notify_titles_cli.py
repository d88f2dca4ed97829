"""`notify rename`, `notify read` and `notify list --unread` through the CLI, on each backend
(no Resy needed: the requests are written directly)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from resywatch.db.engine import Database
from resywatch.db.models import NotifyRequest, RequestStatus


def add(db: Database, *, status: str = RequestStatus.PENDING, title: str | None = "t") -> int:
    satisfied = status == RequestStatus.SATISFIED
    with db.write() as session:
        row = NotifyRequest(
            venue_id=7, venue_name="Carbone", title=title, date_from=date(2026, 12, 4),
            date_to=date(2026, 12, 4), party_size=2, status=status,
            result={"times": ["2026-12-04 19:00"]} if satisfied else None,
            satisfied_at=datetime.now(UTC) if satisfied else None,
        )  # fmt: skip
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id


def test_cli_rename_read_and_unread_list(cli: Any, database_url: str) -> None:
    db = Database(database_url)
    try:
        pending, found = add(db), add(db, status=RequestStatus.SATISFIED, title=None)
    finally:
        db.dispose()
    env = {"RESYWATCH_DATABASE_URL": database_url}

    def run(*args: str, expect: int = 0) -> Any:
        return json.loads(cli(*args, "--json", env=env, expect=expect).stdout)

    assert run("notify", "rename", str(found), "Date night")["title"] == "Date night"
    unread = run("notify", "list", "--unread")
    assert [r["id"] for r in unread["notify_requests"]] == [found]
    assert unread["notify_requests"][0]["unread"] is True
    assert unread["interval_watches"] == [] and unread["notifications"] == []
    piped = cli("notify", "list", "--unread", env=env).stdout
    assert "Date night" in piped and "unread" in piped

    assert run("notify", "read", str(pending), expect=2)["error"]["code"] == "bad_input"
    assert run("notify", "read", expect=2)["error"]["code"] == "bad_input"
    assert run("notify", "read", str(found), "--all", expect=2)["error"]["code"] == "bad_input"
    assert run("notify", "read", "999", expect=3)["error"]["code"] == "not_found"
    assert run("notify", "rename", "999", "x", expect=3)["error"]["code"] == "not_found"
    assert run("notify", "rename", str(found), " ", expect=2)["error"]["code"] == "bad_input"

    assert run("notify", "read", "--all") == {"marked_read": [found]}
    assert run("notify", "list", "--unread")["notify_requests"] == []
    assert "nothing unread" in cli("notify", "list", "--unread", env=env).stderr
    listed = {r["id"]: r for r in run("notify", "list")["notify_requests"]}
    assert listed[found]["read_at"] is not None and listed[found]["title"] == "Date night"
    assert listed[pending]["unread"] is False
