"""Bucket leases: how several workers share a discovery cycle without doubling a scan.

A worker claims a few buckets at a time with one conditional UPDATE (on PostgreSQL over
rows picked `FOR UPDATE SKIP LOCKED`, so workers never queue behind each other; SQLite has
one writer at a time anyway). A bucket is claimable when nobody holds a live lease on it
and, for a scheduled pass, its last scan belongs to a cycle that started earlier. Every
claim bumps the bucket's epoch; the scan is applied only if that epoch still stands (see
`apply.apply_scan`), so a worker that was paused past its lease cannot write. A holder killed
on this machine is recognised at once; one on another machine is waited out for the lease's
TTL. The mechanics are `resywatch.db.leases`; the cycle rules are the buckets' own.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_
from sqlmodel import Session

from resywatch.db import leases
from resywatch.db.engine import Database
from resywatch.db.models import DiscoveryBucket

_BUCKET = DiscoveryBucket.__table__  # type: ignore[attr-defined]
_COLUMNS = leases.LeaseColumns(
    _BUCKET, key="id", owner="lease_owner", until="lease_until", epoch="lease_epoch"
)


@dataclass(frozen=True)
class BucketLease:
    bucket_id: str
    epoch: int
    owner: str
    cycle: datetime  # recorded as the bucket's last_cycle_start when its scan is applied


@dataclass(frozen=True)
class Cycle:
    """The cycle a pass is in (its start), the buckets due at every part of a cycle (the
    hot ones), and the part the pass is in."""

    start: datetime
    hot: Collection[str] = ()
    part: datetime | None = None


def cycle_of(now: datetime, interval_s: float, parts: int = 1) -> datetime:
    """When the discovery cycle `now` falls in started: cycles start every interval, on the
    clock. Its start, not its number, is what a bucket records: a number counts in units
    of the interval, so after the interval changes it would compare old units with new.
    With `parts` > 1, the start of the part of that cycle `now` falls in: the parts cut each
    cycle evenly from its start, so a cycle's start is always a part's start too."""
    start = now.timestamp() // interval_s * interval_s
    if parts > 1:
        step = interval_s / parts
        start += min((now.timestamp() - start) // step, parts - 1) * step
    return datetime.fromtimestamp(start, UTC)


def claim(
    db: Database,
    candidates: Sequence[str],
    *,
    owner: str,
    now: datetime,
    ttl: timedelta,
    limit: int,
    cycle: datetime | Cycle,
    due_only: bool,
    stamp: datetime | None = None,
    dead: Sequence[str] = (),
) -> list[BucketLease]:
    """Lease up to `limit` of the candidate buckets (the least recently scanned first),
    skipping those another worker holds and, when `due_only`, those already scanned in
    `cycle` (the pass's). The leases record `stamp` (the cycle now, which is later than the
    pass's when the pass overran it), so a pass that starts in that later cycle does not
    rescan what this one scanned moments ago. Leases of the `dead` owners (`dead_holders`,
    read once per pass) are free too. A `Cycle`'s hot buckets are due again once the part
    of the cycle the pass is in is later than their last scan's."""
    if not candidates or limit <= 0:
        return []
    cycle = cycle if isinstance(cycle, Cycle) else Cycle(cycle)
    b = _BUCKET.c
    claimable = and_(b.id.in_(candidates), leases.free(_COLUMNS, now, dead))
    if due_only:
        due = or_(b.last_cycle_start.is_(None), b.last_cycle_start < cycle.start)
        if cycle.hot and cycle.part is not None:
            hot = b.id.in_(sorted(cycle.hot))
            due = or_(due, and_(hot, b.last_cycle_start < cycle.part))
        claimable = and_(claimable, due)
    with db.write() as session:
        taken = leases.claim(
            session,
            _COLUMNS,
            where=claimable,
            owner=owner,
            values={"lease_until": now + ttl},
            # Stalest first: when a cycle overruns into the next, the buckets it never
            # reached go before those it did (then date order).
            order_by=(b.last_cycle_start.asc().nulls_first(), b.id),
            limit=limit,
        )
    return [
        BucketLease(lease.key, lease.epoch or 0, owner, max(cycle.start, stamp or cycle.start))
        for lease in taken
    ]


def renew(
    db: Database, leases_held: Iterable[BucketLease], *, now: datetime, ttl: timedelta
) -> list[str]:
    """Extend the leases still held; the ids of those lost (taken over after the TTL)."""
    with db.write() as session:
        return leases.renew(session, _COLUMNS, map(_lease, leases_held), lease_until=now + ttl)


def release(db: Database, leases_held: Iterable[BucketLease]) -> None:
    """Give leases back unscanned (a stopping worker): others may claim them at once."""
    with db.write() as session:
        leases.release(session, _COLUMNS, map(_lease, leases_held))


def _lease(lease: BucketLease) -> leases.Lease:
    return leases.Lease(lease.bucket_id, lease.owner, lease.epoch)


def dead_holders(db: Database, now: datetime) -> list[str]:
    """Owners of live leases that are processes of this machine no longer running."""
    with db.read() as session:
        return leases.dead_holders(session, _COLUMNS, now)


def settle(session: Session, lease: BucketLease) -> bool:
    """The fence, run first in the transaction that applies a scan: end the lease and record
    the cycle, only if the lease still stands. False: the lease was lost, and the
    caller must write nothing (its transaction rolls back). On PostgreSQL the row stays
    locked until commit, so nobody can claim the bucket half-way through the apply."""
    return leases.fence(
        session,
        _COLUMNS,
        _lease(lease),
        lease_owner=None,
        lease_until=None,
        last_cycle_start=lease.cycle,
    )
