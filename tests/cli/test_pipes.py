"""Output into a pipe, as a real process writes it: a reader that leaves early (`| head`)
ends the command quietly, and tables keep what their titles said as a column."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from resywatch.db.engine import Database
from resywatch.db.models import DiscoveryBucket, DropEvent, SlotSnapshot, Watch
from resywatch.errors import ExitCode


def _run_until_the_reader_leaves(database_url: str, *argv: str, lines: int) -> tuple[int, str]:
    """Run resywatch, read `lines` lines of its stdout, close the pipe, and wait."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESYWATCH_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "resywatch", "--database-url", database_url, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    for _ in range(lines):
        process.stdout.readline()
    process.stdout.close()
    with process.stderr:
        stderr = process.stderr.read().decode()
    return process.wait(timeout=60), stderr


def test_a_reader_gone_before_the_output_ends_it_quietly(database_url: str) -> None:
    db = Database(database_url)
    today = date.today()
    try:
        with db.write() as session:
            # More than a pipe holds (64 KiB), so the command is still writing when `head` goes.
            session.add_all(
                Watch(
                    kind="new-venues",
                    query=f"somewhere quite long to fill the pipe {n}",
                    date_from=today,
                    date_to=today,
                    party_size=2,
                )
                for n in range(1500)
            )
    finally:
        db.dispose()
    code, stderr = _run_until_the_reader_leaves(database_url, "watch", "list", lines=1)
    assert (code, stderr) == (ExitCode.BROKEN_PIPE, "")


@pytest.mark.parametrize("argv", [["admin", "db-info"], ["admin", "db-info", "--json"]])
def test_a_reader_gone_before_the_last_flush_ends_it_quietly(
    database_url: str, argv: list[str]
) -> None:
    code, stderr = _run_until_the_reader_leaves(database_url, *argv, lines=0)
    assert (code, stderr) == (ExitCode.BROKEN_PIPE, "")


def test_just_opened_in_a_pipe_keeps_the_date_as_a_column(cli: Any, database_url: str) -> None:
    now = datetime.now(UTC)
    days = [date.today() + timedelta(days=n) for n in (3, 1)]
    db = Database(database_url)
    try:
        with db.write() as session:
            for n, day in enumerate(days):
                bucket = f"{day}_19:00"
                starts = datetime.combine(day, datetime.min.time()).replace(hour=19, minute=n)
                session.add(
                    DiscoveryBucket(
                        id=bucket,
                        slot_date=day,
                        anchor="19:00",
                        baselined_at=now,
                        last_scan_at=now,
                    )
                )
                session.flush()
                session.add(
                    SlotSnapshot(
                        bucket_id=bucket,
                        slot_id=f"slot{n}",
                        venue_id=100 + n,
                        starts_at=starts,
                        in_baseline=False,
                        in_previous=True,
                    )
                )
                session.add(
                    DropEvent(
                        slot_id=f"slot{n}",
                        bucket_id=bucket,
                        venue_id=100 + n,
                        venue_name=f"Venue {n}",
                        starts_at=starts,
                        slot_date=day,
                        party_sizes=[2],
                        opened_at=now - timedelta(minutes=1),
                    )
                )
    finally:
        db.dispose()
    out = cli("--database-url", database_url, "discover", "just-opened").stdout
    header, *rows = [line.split("\t") for line in out.splitlines()]
    column = header.index("date")
    assert [(r[header.index("venue")], r[column]) for r in rows] == [
        ("Venue 1", str(days[1])),
        ("Venue 0", str(days[0])),
    ]
