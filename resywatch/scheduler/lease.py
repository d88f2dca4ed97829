"""Who runs a job right now: a lease on the job's heartbeat row.

A pass claims the job with one conditional UPDATE (the row is free, or its lease was not
renewed within the TTL) and checks the row count: losing the race is normal, not an error.
The holder renews the lease while it works. When the holder was killed (`kill -9`) on this
same machine, its process is gone and the lease is taken at once; a holder on another
machine is waited out for the TTL. Every claim bumps the row's epoch, and renewals and the
release check it, so a pass paused past its lease (SIGSTOP, a frozen VM) cannot renew or
record over the pass that took the job over. The mechanics (worker names, dead holders,
claim, renew and the epoch fence) are `resywatch.db.leases`; what is the job's own is here:
a heartbeat lease (free when not running or not renewed within the TTL), the `due_by` rule
and the run record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, true
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from resywatch.db import leases
from resywatch.db.engine import Database
from resywatch.db.models import JobHeartbeat, JobRun

_HEARTBEAT = JobHeartbeat.__table__  # type: ignore[attr-defined]
_COLUMNS = leases.LeaseColumns(_HEARTBEAT, key="job_name", owner="owner", epoch="lease_epoch")


@dataclass(frozen=True)
class Lease:
    job: str
    owner: str
    started_at: datetime
    epoch: int


def claim(
    db: Database,
    job: str,
    now: datetime,
    ttl: timedelta,
    owner: str,
    *,
    due_by: datetime | None = None,
) -> Lease | None:
    """The job's lease, or None when another live pass holds it or, with `due_by`, when
    the job's next run is later than that (another worker ran it already: checking this
    in the same UPDATE is what makes a daily job run once a day across all workers)."""
    _ensure_row(db, job, now)
    heartbeat = _HEARTBEAT.c
    due = (
        (heartbeat.next_run_at.is_(None)) | (heartbeat.next_run_at <= due_by)
        if due_by is not None
        else true()
    )
    taking = {"running_since": now, "updated_at": now, "last_started_at": now}
    with db.write() as session:
        taken = leases.claim(
            session,
            _COLUMNS,
            where=(heartbeat.job_name == job)
            & due
            & ((heartbeat.running_since.is_(None)) | (heartbeat.updated_at < now - ttl)),
            owner=owner,
            values=taking,
        )
        if not taken:
            holder = session.get(JobHeartbeat, job)
            if holder is not None and holder.owner and leases.dead_here(holder.owner):
                taken = leases.claim(
                    session,
                    _COLUMNS,
                    where=(heartbeat.job_name == job) & due & (heartbeat.owner == holder.owner),
                    owner=owner,
                    values=taking,
                )
    return Lease(job, owner, now, taken[0].epoch or 0) if taken else None


def renew(db: Database, lease: Lease, now: datetime) -> bool:
    """Extend the lease; False when it was lost (taken over after the TTL)."""
    with db.write() as session:
        return leases.fence(session, _COLUMNS, _held(lease), updated_at=now)


def release(db: Database, lease: Lease, run: JobRun, *, next_run_at: datetime) -> None:
    """Record the pass (its `job_run` row and, while the lease stands, the heartbeat) and
    free the job."""
    with db.write() as session:
        leases.fence(
            session,
            _COLUMNS,
            _held(lease),
            running_since=None,
            last_finished_at=run.finished_at,
            last_status=run.status,
            last_error=run.error,
            next_run_at=next_run_at,
            updated_at=run.finished_at,
        )
        session.add(run)


def record(db: Database, run: JobRun) -> None:
    """Record a pass that held no job lease (a shared job's helper pass)."""
    with db.write() as session:
        session.add(run)


def heartbeats(db: Database) -> dict[str, JobHeartbeat]:
    """Each job's heartbeat row, by job name."""
    with db.read() as session:
        return {row.job_name: row for row in session.exec(select(JobHeartbeat))}


def _held(lease: Lease) -> leases.Lease:
    return leases.Lease(lease.job, lease.owner, lease.epoch)


def _ensure_row(db: Database, job: str, now: datetime) -> None:
    with db.read() as session:
        if session.get(JobHeartbeat, job) is not None:
            return
    try:
        with db.write() as session:
            session.execute(insert(_HEARTBEAT).values(job_name=job, updated_at=now))
    except IntegrityError:
        pass  # another pass created it first
