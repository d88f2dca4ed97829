"""Cheap passes on a small box (issue 19). A cron pass that finds nothing due answers from
the heartbeat table alone: it imports neither the table models, the services nor the HTTP
client; when a job is due, or comes due before the last of `--repeat` passes, the full path
runs. `health` reuses Resy's acceptance of the token for 10 minutes (no HTTP stack then),
never a refusal nor one from before a login; `--live` asks now."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from typer.testing import CliRunner

from resywatch.cli.app import app
from resywatch.db.engine import Database
from resywatch.db.models import ApiCallLog, JobHeartbeat
from resywatch.scheduler import due
from resywatch.scheduler.jobs import JOBS
from resywatch.services import health
from tests.imported import run_counting_imports

HEAVY = ("resywatch.db.models", "resywatch.resy.client", "resywatch.services", "httpx")


def set_next_runs(db: Database, next_run: datetime) -> None:
    with db.write() as session:
        for name in JOBS:
            session.execute(
                insert(JobHeartbeat.__table__).values(  # type: ignore[attr-defined]
                    job_name=name, updated_at=next_run, next_run_at=next_run
                )
            )


def run_due(database_url: str, *args: str) -> tuple[dict[str, object], set[str]]:
    """`resywatch run due --json` in a process of its own, and the modules it imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESYWATCH_")}
    env |= {"RESYWATCH_DATABASE_URL": database_url, "RESYWATCH_RESY_API_KEY": "k"}
    return run_counting_imports(env, "run", "due", "--json", *args)


def test_nothing_due_imports_nothing_heavy_and_writes_nothing(
    db: Database, database_url: str
) -> None:
    set_next_runs(db, datetime.now(UTC) + timedelta(hours=1))
    answer, imported = run_due(database_url)
    assert answer == {"passes": []}
    assert not [m for m in imported if m.startswith(HEAVY)]
    assert due.next_runs(db) and all(
        at is not None and at > datetime.now(UTC) for at in due.next_runs(db).values()
    )


def test_a_job_due_before_the_last_repeat_takes_the_full_path(
    db: Database, database_url: str
) -> None:
    """Due in 3 s, before the second pass starts (`--every 5s`): not answered early."""
    set_next_runs(db, datetime.now(UTC) + timedelta(hours=1))
    soon = datetime.now(UTC) + timedelta(seconds=3)
    with db.write() as session:
        session.execute(
            JobHeartbeat.__table__.update()  # type: ignore[attr-defined]
            .where(JobHeartbeat.__table__.c.job_name == "retention")  # type: ignore[attr-defined]
            .values(next_run_at=soon)
        )
    assert due.due_names(due.next_runs(db), JOBS, datetime.now(UTC)) == []
    assert due.due_names(due.next_runs(db), JOBS, soon) == ["retention"]
    answer, imported = run_due(database_url, "--repeat", "2", "--every", "5s")
    assert "resywatch.scheduler.runner" in imported
    assert [p["job"] for p in answer["passes"]] == ["retention"]  # type: ignore[index,union-attr]


@pytest.mark.parametrize("missing", ["no row", "no next run"])
def test_a_job_that_never_ran_is_due(db: Database, missing: str) -> None:
    set_next_runs(db, datetime.now(UTC) + timedelta(hours=1))
    with db.write() as session:
        table = JobHeartbeat.__table__  # type: ignore[attr-defined]
        where = table.c.job_name == "watches"
        if missing == "no row":
            session.execute(table.delete().where(where))
        else:
            session.execute(table.update().where(where).values(next_run_at=None))
    assert due.due_names(due.next_runs(db), JOBS, datetime.now(UTC)) == ["watches"]


def record_call(db: Database, endpoint: str, status: int, at: datetime) -> None:
    with db.write() as session:
        session.add(
            ApiCallLog(at=at, method="GET", endpoint=endpoint, status=status, latency_ms=40.0)
        )


def resy_auth(database_url: str, *args: str) -> dict[str, Any]:
    env = {
        "RESYWATCH_DATABASE_URL": database_url,
        "RESYWATCH_RESY_API_KEY": "k",
        "RESYWATCH_RESY_AUTH_TOKEN": "opaque-token",
        # Nothing listens there: a question to Resy would be a "connection" warning.
        "RESYWATCH_RESY_BASE_URL": "http://127.0.0.1:9",
    }
    result = CliRunner().invoke(app, ["health", "--json", *args], env=env)
    assert result.exit_code in (0, 1, 2), result.output  # whatever the jobs' checks say
    document = json.loads(result.stdout)
    [check] = [c for c in document["checks"] if c["name"] == "resy_auth"]
    return dict(check)


def test_health_reuses_a_recent_acceptance_of_the_token_and_live_asks_again(
    db: Database, database_url: str
) -> None:
    record_call(db, "/2/user", 200, datetime.now(UTC) - timedelta(minutes=3))
    reused = resy_auth(database_url)
    ago = re.search(r"accepted the token (\d+) s ago", reused["message"])
    assert reused["status"] == "OK" and ago and 180 <= int(ago[1]) < 240
    live = resy_auth(database_url, "--live")
    assert live["status"] == "WARN" and "connection" in live["message"]


@pytest.mark.parametrize(
    "calls",
    [
        [("/2/user", 200, 11)],  # older than the 10 minutes it is trusted for
        [("/2/user", 419, 1)],  # a refusal is never reused: health asks again
        [("/2/user", 200, 3), ("/3/auth/password", 200, 2)],  # a login since: maybe a new token
    ],
)
def test_health_asks_resy_when_no_recent_acceptance_stands(
    db: Database, database_url: str, calls: list[tuple[str, int, int]]
) -> None:
    now = datetime.now(UTC)
    for endpoint, status, minutes_ago in calls:
        record_call(db, endpoint, status, now - timedelta(minutes=minutes_ago))
    assert health.recent_token_check(db, now) is None
    asked = resy_auth(database_url)
    assert asked["status"] == "WARN" and "connection" in asked["message"]


def health_after_a_recent_acceptance(db: Database, database_url: str) -> set[str]:
    """Run `health --json` in a process of its own a minute after Resy accepted the token;
    the modules it imported."""
    record_call(db, "/2/user", 200, datetime.now(UTC) - timedelta(minutes=1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESYWATCH_")}
    env |= {
        "RESYWATCH_DATABASE_URL": database_url,
        "RESYWATCH_RESY_API_KEY": "k",
        "RESYWATCH_RESY_AUTH_TOKEN": "opaque-token",
    }
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "resywatch", "health", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert '"resy_auth", "status": "OK"' in done.stdout
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines()}
    return imported


def test_health_with_a_recent_acceptance_imports_no_http_stack(
    db: Database, database_url: str
) -> None:
    imported = health_after_a_recent_acceptance(db, database_url)
    assert not [m for m in imported if m.startswith(("httpx", "resywatch.resy.client"))]


def health_with_config(database_url: str, config: Path) -> dict[str, Any]:
    """`health --json`'s resy_auth check with the token kept in `config` (as a login or a
    hand writes it), Resy unreachable."""
    env = {
        "RESYWATCH_DATABASE_URL": database_url,
        "RESYWATCH_RESY_API_KEY": "k",
        "RESYWATCH_RESY_BASE_URL": "http://127.0.0.1:9",
    }
    result = CliRunner().invoke(app, ["--config", str(config), "health", "--json"], env=env)
    assert result.exit_code in (0, 1, 2), result.output
    [check] = [c for c in json.loads(result.stdout)["checks"] if c["name"] == "resy_auth"]
    return dict(check)


def test_health_asks_resy_when_the_token_file_changed_since_the_acceptance(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    """A token edited by hand (no login) is not covered by an acceptance of the old one."""
    accepted = datetime.now(UTC) - timedelta(minutes=3)
    record_call(db, "/2/user", 200, accepted)
    config = tmp_path / "config.toml"
    config.write_text('[resy]\nauth_token = "edited-by-hand"\n', encoding="utf-8")
    asked = health_with_config(database_url, config)
    assert asked["status"] == "WARN" and "connection" in asked["message"]
    before = (accepted - timedelta(minutes=1)).timestamp()
    os.utime(config, (before, before))  # the file as it was when Resy accepted its token
    reused = health_with_config(database_url, config)
    assert reused["status"] == "OK" and "accepted the token" in reused["message"]
    now = datetime.now(UTC)
    assert health.recent_token_check(db, now, tokens_changed_at=now) is None
    assert health.recent_token_check(db, now, tokens_changed_at=accepted - timedelta(seconds=1))


def test_health_with_a_recent_acceptance_defines_no_table_class(
    db: Database, database_url: str
) -> None:
    """Its checks read with plain SQL (`db/plain.py`): the SQLModel tables cost more to
    define than every query health makes."""
    imported = health_after_a_recent_acceptance(db, database_url)
    assert "resywatch.services.health" in imported
    assert not [m for m in imported if m.startswith("resywatch.db.models")]
