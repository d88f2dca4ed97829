"""Which jobs are due, read from the one table that says so (`job_heartbeat`).

A crontab line runs `resywatch run due` every minute, and most of those passes find
nothing due: this check reads the heartbeats with a plain SQL statement, so such a pass
imports neither the table models, the services nor the HTTP client.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from resywatch.db.plain import job_heartbeat

if TYPE_CHECKING:
    from resywatch.db.engine import Database

DUE_SLACK = timedelta(seconds=1)  # cron and `--every` wake up a little early or late


def next_runs(db: Database) -> dict[str, datetime | None]:
    """Each job's next run as its heartbeat says (UTC), by job name."""
    with db.read() as session:
        rows = session.execute(select(job_heartbeat.c.job_name, job_heartbeat.c.next_run_at))
        return {name: at for name, at in rows}


def due_names(runs: dict[str, datetime | None], names: Iterable[str], at: datetime) -> list[str]:
    """The jobs among `names` due at `at` (give or take the slack): those whose next run has
    come, and those that never ran."""
    by = at + DUE_SLACK
    return [name for name in names if (next_run := runs.get(name)) is None or next_run <= by]
