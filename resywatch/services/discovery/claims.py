"""Bucket leases: how several workers share a discovery cycle without doubling a scan.

A worker claims a few buckets at a time with one conditional UPDATE (on PostgreSQL over
rows picked `FOR UPDATE SKIP LOCKED`, so workers never queue behind each other; SQLite has
one writer at a time anyway). A bucket is claimable when nobody holds a live lease on it
and, for a scheduled pass, its last scan belongs to a cycle that started earlier. Every
claim bumps the bucket's epoch; the scan is applied only if that epoch still stands (see
`scan.apply_scan`), so a worker that was paused past its lease cannot write. A holder killed
on this machine is recognised at once; one on another machine is waited out for the lease's
TTL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlmodel import Session

from resywatch.db.engine import Database, rows_changed
from resywatch.db.models import DiscoveryBucket
from resywatch.services.owners import dead_here

_BUCKET = DiscoveryBucket.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class BucketLease:
    bucket_id: str
    epoch: int
    owner: str
    cycle: datetime  # recorded as the bucket's last_cycle_start when its scan is applied


def cycle_of(now: datetime, interval_s: float) -> datetime:
    """When the discovery cycle `now` falls in started: cycles start every interval, on the
    clock. Its start, not its number, is what a bucket records: a number counts in units
    of the interval, so after the interval changes it would compare old units with new."""
    return datetime.fromtimestamp(now.timestamp() // interval_s * interval_s, UTC)


def claim(
    db: Database,
    candidates: Sequence[str],
    *,
    owner: str,
    now: datetime,
    ttl: timedelta,
    limit: int,
    cycle: datetime,
    due_only: bool,
    stamp: datetime | None = None,
    dead: Sequence[str] = (),
) -> list[BucketLease]:
    """Lease up to `limit` of the candidate buckets (the least recently scanned first),
    skipping those another worker holds and, when `due_only`, those already scanned in
    `cycle` (the pass's). The leases record `stamp` (the cycle now, which is later than the
    pass's when the pass overran it), so a pass that starts in that later cycle does not
    rescan what this one scanned moments ago. Leases of the `dead` owners (`dead_holders`,
    read once per pass) are free too."""
    if not candidates or limit <= 0:
        return []
    b = _BUCKET.c
    free = or_(b.lease_until.is_(None), b.lease_until < now)
    if dead:
        free = or_(free, b.lease_owner.in_(dead))
    claimable = and_(b.id.in_(candidates), free)
    if due_only:
        claimable = and_(claimable, or_(b.last_cycle_start.is_(None), b.last_cycle_start < cycle))
    # Stalest first: when a cycle overruns into the next, the buckets it never reached go
    # before those it did (then date order).
    stalest = (b.last_cycle_start.asc().nulls_first(), b.id)
    chosen = (
        select(b.id)
        .where(claimable)
        .order_by(*stalest)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    with db.write() as session:
        taken = session.execute(
            update(_BUCKET)
            .where(b.id.in_(chosen.scalar_subquery()))
            .values(lease_owner=owner, lease_until=now + ttl, lease_epoch=b.lease_epoch + 1)
            .returning(b.id, b.lease_epoch)
        ).all()
    return sorted(
        (
            BucketLease(bucket_id, epoch, owner, max(cycle, stamp or cycle))
            for bucket_id, epoch in taken
        ),
        key=lambda lease: lease.bucket_id,
    )


def renew(
    db: Database, leases: Iterable[BucketLease], *, now: datetime, ttl: timedelta
) -> list[str]:
    """Extend the leases still held; the ids of those lost (taken over after the TTL)."""
    lost = []
    with db.write() as session:
        for lease in leases:
            kept = rows_changed(
                session.execute(update(_BUCKET).where(*_held(lease)).values(lease_until=now + ttl))
            )
            if not kept:
                lost.append(lease.bucket_id)
    return lost


def release(db: Database, leases: Iterable[BucketLease]) -> None:
    """Give leases back unscanned (a stopping worker): others may claim them at once."""
    with db.write() as session:
        for lease in leases:
            session.execute(
                update(_BUCKET).where(*_held(lease)).values(lease_owner=None, lease_until=None)
            )


def _held(lease: BucketLease) -> tuple[ColumnElement[bool], ...]:
    """The lease still stands: nobody claimed the bucket since, and it was not ended."""
    b = _BUCKET.c
    return (b.id == lease.bucket_id, b.lease_epoch == lease.epoch, b.lease_owner == lease.owner)


def dead_holders(db: Database, now: datetime) -> list[str]:
    """Owners of live leases that are processes of this machine no longer running."""
    b = _BUCKET.c
    with db.read() as session:
        holders = session.scalars(
            select(b.lease_owner).where(b.lease_until >= now).distinct()
        ).all()
    return [owner for owner in holders if owner and dead_here(owner)]


def settle(session: Session, lease: BucketLease) -> bool:
    """The fence, run first in the transaction that applies a scan: end the lease and record
    the cycle, only if the lease still stands. False: the lease was lost, and the
    caller must write nothing (its transaction rolls back). On PostgreSQL the row stays
    locked until commit, so nobody can claim the bucket half-way through the apply."""
    return bool(
        rows_changed(
            session.execute(
                update(_BUCKET)
                .where(*_held(lease))
                .values(lease_owner=None, lease_until=None, last_cycle_start=lease.cycle)
            )
        )
    )
