"""Leasing a row to one worker: the one mechanism under job runs, discovery buckets,
notification batches and scheduled snipes. Each of those keeps only its own rules (which
rows are claimable, what a claim records, when it renews); the mechanics live here.

Who. A worker is named `host:pid:nonce` (`WorkerId`): the nonce is drawn once per process,
so two processes that share a hostname and a pid (two containers, each its own pid 1) still
have different names, and neither can mistake the other's lease for its own.

Dead here. A holder is recognised as dead at once, without waiting out its lease, only when
its host is this host and its pid is gone. Deliberately not "its pid now runs something
with another nonce": we cannot read another process's nonce, and a holder with our host and
a live pid may as well be a sibling container sharing our hostname (its own pid namespace)
as a previous incarnation of a reused pid. Such a holder is waited out for its TTL: slower,
never wrong. Anything after the pid (the nonce, a batch suffix) is ignored here, so names in
the older `host:pid` form are understood too.

How. `claim` is one UPDATE over the rows picked `FOR UPDATE SKIP LOCKED` (on PostgreSQL
concurrent claimers take different rows instead of queueing; SQLite has one writer at a
time anyway) that repeats the caller's condition and returns what it took: losing a race is
an empty list, not an error. Tables with an epoch column bump it on every claim, and
`renew`, `release` and `fence` require the holder (and the epoch) still to stand, so a worker
paused past its lease cannot write over the one that took the row over. `fence` is run first
in the transaction that writes a worker's result: on PostgreSQL the row then stays locked
until commit. Every function works inside the caller's transaction (its session). No
session advisory locks: they break behind PgBouncer.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, or_, select, true, update
from sqlalchemy.orm import Session

from resywatch.db.engine import rows_changed

#: The longest host part of a worker name: names must fit the 64-character claim column of
#: notifications with a batch suffix (`host:pid:nonce:batch`); longer hostnames are cut and
#: end in a hash of the whole name, so two long names sharing a prefix stay apart.
HOST_MAX = 32


@dataclass(frozen=True)
class WorkerId:
    host: str
    pid: int
    nonce: str

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.nonce}"

    @classmethod
    def parse(cls, name: str) -> WorkerId | None:
        """The worker a lease holder's name starts with, or None when it names none
        (`host:pid` of older versions parses with an empty nonce)."""
        host, _, rest = name.partition(":")
        pid, _, rest = rest.partition(":")
        if not host or not pid.isdigit():
            return None
        return cls(host, int(pid), rest.partition(":")[0])


def host_label(hostname: str | None = None) -> str:
    """This host (or `hostname`) as worker names spell it (at most HOST_MAX characters)."""
    name = socket.gethostname() if hostname is None else hostname
    name = name.replace(":", "_")  # the separator
    if len(name) <= HOST_MAX:
        return name
    return f"{name[: HOST_MAX - 9]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


@cache
def _nonce(pid: int) -> str:
    # Keyed by pid so that a forked child draws its own.
    return secrets.token_hex(4)


def this_worker() -> WorkerId:
    pid = os.getpid()
    return WorkerId(host_label(), pid, _nonce(pid))


def this_process() -> str:
    """This process's worker name, `host:pid:nonce`: the same for its whole life."""
    return str(this_worker())


def dead_here(holder: str) -> bool:
    """Whether the lease holder named `holder` is a process of this host that no longer
    exists (see the module docstring for why a live pid is never taken for dead)."""
    worker = WorkerId.parse(holder)
    if worker is None or worker.host != host_label():
        return False
    try:
        os.kill(worker.pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


@dataclass(frozen=True)
class LeaseColumns:
    """Where a table keeps its leases: the row key, the holder's name and, when the table
    has them, the expiry (`until`) and the epoch bumped by every claim."""

    table: Table
    key: str
    owner: str
    until: str | None = None
    epoch: str | None = None

    def col(self, name: str) -> Any:
        return self.table.c[name]


@dataclass(frozen=True)
class Lease:
    key: Any
    owner: str
    epoch: int | None = None


def free(cols: LeaseColumns, now: datetime, dead: Sequence[str] = ()) -> ColumnElement[bool]:
    """Nobody holds the row: no expiry, an expiry passed, or a holder dead here."""
    assert cols.until is not None
    until = cols.col(cols.until)
    free_now: ColumnElement[bool] = or_(until.is_(None), until <= now)
    return or_(free_now, cols.col(cols.owner).in_(dead)) if dead else free_now


def claim(
    session: Session,
    cols: LeaseColumns,
    *,
    where: ColumnElement[bool],
    owner: str,
    values: Mapping[str, Any] | None = None,
    order_by: Sequence[Any] = (),
    limit: int | None = None,
) -> list[Lease]:
    """Lease to `owner` the rows matching `where` (which must say they are free); also set
    `values` and bump the epoch. With a `limit`, up to that many in `order_by` order, skipping
    rows another transaction has locked; without one, every matching row (one named by its
    key, say), waiting for a lock and then checking `where` again. The leases taken, in key
    order."""
    key = cols.col(cols.key)
    picked = where
    if limit is not None:
        chosen = select(key).where(where).order_by(*order_by).limit(limit)
        # Only `key IN (…)` outside: the picked rows are locked, so `where` still holds for
        # them, and more conditions out here can make PostgreSQL rescan the subquery for
        # every row, each rescan skipping the rows already taken (more than `limit`).
        picked = key.in_(chosen.with_for_update(skip_locked=True).scalar_subquery())
    changes: dict[str, Any] = {cols.owner: owner, **(values or {})}
    returned = [key]
    if cols.epoch is not None:
        changes[cols.epoch] = cols.col(cols.epoch) + 1
        returned.append(cols.col(cols.epoch))
    taken = session.execute(
        update(cols.table).where(picked).values(changes).returning(*returned)
    ).all()
    leases = [Lease(row[0], owner, row[1] if cols.epoch is not None else None) for row in taken]
    return sorted(leases, key=lambda lease: lease.key)


def held(cols: LeaseColumns, lease: Lease) -> ColumnElement[bool]:
    """The lease still stands: nobody claimed the row since, and it was not ended."""
    standing = and_(cols.col(cols.key) == lease.key, cols.col(cols.owner) == lease.owner)
    if cols.epoch is not None:
        standing = and_(standing, cols.col(cols.epoch) == lease.epoch)
    return standing


def fence(session: Session, cols: LeaseColumns, lease: Lease, **values: Any) -> bool:
    """Write `values` to the row only if the lease still stands. False: it was lost, and the
    caller must write nothing (let its transaction roll back)."""
    return bool(
        rows_changed(session.execute(update(cols.table).where(held(cols, lease)).values(values)))
    )


def renew(
    session: Session, cols: LeaseColumns, leases: Iterable[Lease], **values: Any
) -> list[Any]:
    """Extend the leases still held (by writing `values`, e.g. a later expiry); the keys of
    those lost."""
    return [lease.key for lease in leases if not fence(session, cols, lease, **values)]


def release(session: Session, cols: LeaseColumns, leases: Iterable[Lease], **values: Any) -> None:
    """End the leases still held (with `values`), so others may claim the rows at once."""
    ended: dict[str, Any] = {cols.owner: None, **values}
    if cols.until is not None:
        ended.setdefault(cols.until, None)
    for lease in leases:
        fence(session, cols, lease, **ended)


def dead_holders(
    session: Session, cols: LeaseColumns, now: datetime, where: ColumnElement[bool] | None = None
) -> list[str]:
    """Holders of live leases (matching `where`) that are processes of this host no longer
    running."""
    assert cols.until is not None
    owner = cols.col(cols.owner)
    live = and_(cols.col(cols.until) > now, where if where is not None else true())
    holders = session.scalars(select(owner).where(live).distinct()).all()
    return [holder for holder in holders if holder and dead_here(holder)]
