"""Who runs a job right now: a lease on the job's heartbeat row.

A pass claims the job with one conditional UPDATE (the row is free, or its lease was not
renewed within the TTL) and checks the row count: losing the race is normal, not an error.
The holder renews the lease while it works. When the holder was killed (`kill -9`) on this
same machine, its process is gone and the lease is taken at once; a holder on another
machine is waited out for the TTL. No session advisory locks: they break behind PgBouncer.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from resywatch.db.engine import Database, rows_changed
from resywatch.db.models import JobHeartbeat, JobRun

_HEARTBEAT = JobHeartbeat.__table__  # type: ignore[attr-defined]


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Lease:
    job: str
    owner: str
    started_at: datetime


def claim(db: Database, job: str, now: datetime, ttl: timedelta, owner: str) -> Lease | None:
    """The job's lease, or None when another live pass holds it."""
    _ensure_row(db, job, now)
    heartbeat = _HEARTBEAT.c
    with db.write() as session:
        taken = rows_changed(
            session.execute(
                update(_HEARTBEAT)
                .where(
                    heartbeat.job_name == job,
                    (heartbeat.running_since.is_(None)) | (heartbeat.updated_at < now - ttl),
                )
                .values(running_since=now, owner=owner, updated_at=now, last_started_at=now)
            )
        )
        if not taken:
            holder = session.get(JobHeartbeat, job)
            if holder is not None and holder.owner and _dead_here(holder.owner):
                taken = rows_changed(
                    session.execute(
                        update(_HEARTBEAT)
                        .where(heartbeat.job_name == job, heartbeat.owner == holder.owner)
                        .values(running_since=now, owner=owner, updated_at=now, last_started_at=now)
                    )
                )
    return Lease(job, owner, now) if taken else None


def renew(db: Database, lease: Lease, now: datetime) -> bool:
    """Extend the lease; False when it was lost (taken over after the TTL)."""
    heartbeat = _HEARTBEAT.c
    with db.write() as session:
        kept = rows_changed(
            session.execute(
                update(_HEARTBEAT)
                .where(heartbeat.job_name == lease.job, heartbeat.owner == lease.owner)
                .values(updated_at=now)
            )
        )
    return bool(kept)


def release(
    db: Database,
    lease: Lease,
    now: datetime,
    *,
    status: str,
    error: str | None,
    counts: dict[str, int],
    next_run_at: datetime,
) -> None:
    """Record the pass (a `job_run` row and the heartbeat) and free the job."""
    heartbeat = _HEARTBEAT.c
    with db.write() as session:
        session.execute(
            update(_HEARTBEAT)
            .where(heartbeat.job_name == lease.job, heartbeat.owner == lease.owner)
            .values(
                running_since=None,
                last_finished_at=now,
                last_status=status,
                last_error=error,
                next_run_at=next_run_at,
                updated_at=now,
            )
        )
        session.add(
            JobRun(
                job_name=lease.job,
                started_at=lease.started_at,
                finished_at=now,
                status=status,
                error=error,
                counts=counts,
                owner=lease.owner,
            )
        )


def heartbeats(db: Database) -> dict[str, JobHeartbeat]:
    """Each job's heartbeat row, by job name."""
    with db.read() as session:
        return {row.job_name: row for row in session.exec(select(JobHeartbeat))}


def _ensure_row(db: Database, job: str, now: datetime) -> None:
    with db.read() as session:
        if session.get(JobHeartbeat, job) is not None:
            return
    try:
        with db.write() as session:
            session.execute(insert(_HEARTBEAT).values(job_name=job, updated_at=now))
    except IntegrityError:
        pass  # another pass created it first


def _dead_here(owner: str) -> bool:
    """Whether the owner is a process of this machine that no longer exists."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
