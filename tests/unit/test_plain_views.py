"""The plain SQL views (`db/plain.py`) that short commands read instead of the SQLModel
tables: each column is a column of its table with the same kind of type, and reads back
what the table class wrote (timestamps aware UTC, dates and JSON decoded), on both
backends."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select

from resywatch.db import plain
from resywatch.db.engine import Database
from resywatch.db.models import DiscoveryBucket, JobRun, ResyHost, metadata

AT = datetime(2026, 12, 3, 12, 30, 15, 250000, tzinfo=UTC)


def test_every_view_column_is_its_tables_column_with_the_same_type() -> None:
    for view in plain.VIEWS:
        table = metadata.tables[view.name]
        for column in view.columns:
            assert column.name in table.c, f"{view.name}.{column.name}"
            kind = type(column.type)
            assert type(table.c[column.name].type) is kind, f"{view.name}.{column.name}"


def test_views_read_back_what_the_tables_wrote(db: Database) -> None:
    with db.write() as session:
        session.add(ResyHost(host="api.resy.test", paused_until=AT, consecutive_failures=2))
        session.add(JobRun(job_name="discovery", started_at=AT, counts={"buckets": 3}))
        session.add(
            DiscoveryBucket(
                id="2026-12-04_19:00", slot_date=date(2026, 12, 4), anchor="19:00", created_at=AT
            )
        )
    [host] = plain.host_states(db)
    assert (host.host, host.paused_until, host.consecutive_failures) == ("api.resy.test", AT, 2)
    assert host.paused_until is not None and host.paused_until.utcoffset() is not None
    with db.read() as session:
        run = session.execute(select(plain.job_run)).one()
        bucket = session.execute(select(plain.discovery_bucket)).one()
    assert (run.started_at, run.counts) == (AT, {"buckets": 3})
    assert (bucket.slot_date, bucket.created_at, bucket.last_scan_at) == (
        date(2026, 12, 4),
        AT,
        None,
    )
