"""Claiming. A relay claims a batch of due rows in one write transaction: it selects them
(`FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent relays take different rows; on SQLite
the transaction is BEGIN IMMEDIATE, so claimers take turns), then sets a lease with an UPDATE
that repeats the "due and free" condition (`claimed_by` = a token unique to this batch,
`claimed_until`), and reads back only the rows carrying its token. A row is therefore held by
one relay at a time, and a relay that dies leaves its rows claimable once the lease expires
(at once, when it was killed on this machine).
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import and_
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

from resywatch.db import leases
from resywatch.db.models import Notification, NotificationDelivery, NotificationStatus

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement

    from resywatch.db.engine import Database


@dataclass
class Claim:
    token: str
    rows: list[Notification]
    deliveries: dict[int, dict[str, NotificationDelivery]]
    busy: set[int]
    renewed_at: datetime  # when the batch's lease was last set
    held: list[int] = field(default_factory=list)  # ids still under this claim's lease


def _due(at: datetime) -> ColumnElement[bool]:
    due = col(Notification.next_attempt_at) <= at
    return and_(col(Notification.status) == NotificationStatus.PENDING, due)


def batch_token(worker: str) -> str:
    """A batch's name, the lease holder of its rows: the worker's name (a whole one fits the
    64 characters of `claimed_by`) and a suffix of its own, so the fence tells apart two
    batches of one process."""
    return f"{worker[:51]}:{secrets.token_hex(6)}"


LEASES = leases.LeaseColumns(
    Notification.__table__,  # type: ignore[attr-defined]
    key="id",
    owner="claimed_by",
    until="claimed_until",
)


def claim_batch(db: Database, size: int, token: str, at: datetime, lease: timedelta) -> Claim:
    """Lease up to `size` due rows to `token`, oldest first, in one write transaction."""
    rows: list[Notification] = []
    deliveries: dict[int, dict[str, NotificationDelivery]] = {}
    busy: set[int] = set()
    oldest_first = (col(Notification.next_attempt_at), col(Notification.id))
    with db.write() as session:
        # Rows of relays killed on this machine need not wait out the lease; the fence on
        # recording keeps a dead relay out anyway.
        dead = leases.dead_holders(session, LEASES, at)
        taken = leases.claim(
            session,
            LEASES,
            where=and_(_due(at), leases.free(LEASES, at, dead)),
            owner=token,
            values={"claimed_until": at + lease},
            order_by=oldest_first,
            limit=size,
        )
        ids = [lease.key for lease in taken]
        if ids:
            rows = list(
                session.exec(
                    select(Notification)
                    .where(col(Notification.id).in_(ids))
                    .order_by(*oldest_first)
                )
            )
            for delivery in session.exec(
                select(NotificationDelivery).where(
                    col(NotificationDelivery.notification_id).in_(ids)
                )
            ):
                deliveries.setdefault(delivery.notification_id, {})[delivery.channel] = delivery
        if len(ids) < size:  # the free rows ran out: count the ones others hold
            held_by_others = (
                select(Notification.id)
                .where(_due(at), col(Notification.claimed_until) > at)
                .where(col(Notification.claimed_by) != token)
                .limit(10_000)
            )
            busy = {i for i in session.exec(held_by_others) if i is not None}
    claim = Claim(token, rows, deliveries, busy, renewed_at=at)
    claim.held = [row.id for row in rows if row.id is not None]
    return claim


def held(claim: Claim, notification_id: int) -> leases.Lease:
    return leases.Lease(notification_id, claim.token)


def release(db: Database, claim: Claim) -> None:
    """Give back the rows not started (stop or error): claimable again at once."""
    with contextlib.suppress(SQLAlchemyError), db.write() as session:  # else the lease expires
        leases.release(session, LEASES, [held(claim, i) for i in claim.held])
