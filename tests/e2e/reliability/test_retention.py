"""Retention in bounded batches never stalls a scan (both backends): while a large prune
runs, a worker keeps writing (short transactions, as a bucket's scan does) and none of
its writes waits long. Every expired row goes; nothing younger does."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update

from resywatch.config import load_settings
from resywatch.db.engine import Database
from resywatch.db.models import ApiCallLog, JobHeartbeat, JobRun
from resywatch.services.retention import BATCH, prune

NOW = datetime.now(UTC)


def add_rows(db: Database, expired: int, kept: int) -> None:
    old, recent = NOW - timedelta(days=30), NOW - timedelta(hours=1)
    calls = ApiCallLog.__table__  # type: ignore[attr-defined]
    runs = JobRun.__table__  # type: ignore[attr-defined]
    for at, count in ((old, expired), (recent, kept)):
        for start in range(0, count, 10_000):
            size = min(10_000, count - start)
            with db.write() as session:
                session.execute(
                    insert(calls),
                    [{"at": at, "method": "POST", "endpoint": "/3/venuesearch/search",
                      "status": 200, "latency_ms": 50.0, "attempt": 1}] * size,
                )  # fmt: skip
                session.execute(
                    insert(runs),
                    [{"job_name": "discovery", "started_at": at, "status": "ok",
                      "counts": {}}] * (size // 10),
                )  # fmt: skip


def count(db: Database, model: Any) -> int:
    with db.read() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_a_large_prune_never_stalls_a_scan(db: Database, figures: Any, full_run: bool) -> None:
    expired, kept = (300_000, 20_000) if full_run else (60_000, 5_000)
    add_rows(db, expired, kept)
    with db.write() as session:
        session.add(JobHeartbeat(job_name="discovery"))
    heartbeat = JobHeartbeat.__table__  # type: ignore[attr-defined]
    waits: list[float] = []
    done = threading.Event()

    def scanning_worker() -> None:  # a write every 20 ms, as bucket scans land
        while not done.is_set():
            started = time.monotonic()
            with db.write() as session:
                session.execute(
                    update(heartbeat)
                    .where(heartbeat.c.job_name == "discovery")
                    .values(updated_at=datetime.now(UTC))
                )
            waits.append(time.monotonic() - started)
            time.sleep(0.02)

    worker = threading.Thread(target=scanning_worker)
    worker.start()
    started = time.monotonic()
    try:
        deleted = prune(db, load_settings(environ={}), NOW)
    finally:
        took = time.monotonic() - started
        done.set()
        worker.join(timeout=30)

    waits.sort()
    p95 = waits[int(len(waits) * 0.95)]
    figures.report(
        "15: retention beside a scanning worker",
        deleted=deleted,
        prune_s=round(took, 2),
        batch_rows=BATCH,
        worker_writes=len(waits),
        worker_write_p95_ms=round(p95 * 1000, 1),
        worker_write_max_ms=round(waits[-1] * 1000, 1),
    )
    assert deleted["api_calls"] == expired and deleted["job_runs"] == expired // 10
    assert count(db, ApiCallLog) == kept and count(db, JobRun) == kept // 10
    assert waits  # the worker wrote while the prune ran
    assert waits[-1] < 1.0  # no write waited as long as a second: batches are short
