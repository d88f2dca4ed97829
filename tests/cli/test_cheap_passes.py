"""A cron pass that finds nothing due answers from the heartbeat table alone: it imports
neither the table models, the services nor the HTTP client (issue 19: a pass every minute
on a small box). When a job is due, or comes due before the last of `--repeat` passes,
the full path runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from resywatch.db.engine import Database
from resywatch.db.models import JobHeartbeat
from resywatch.scheduler import due
from resywatch.scheduler.jobs import JOBS

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
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "resywatch", "run", "due", "--json", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    imported = {
        line.split("|")[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    return json.loads(done.stdout), imported


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
