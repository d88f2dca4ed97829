"""What hangs on a deleted row goes with it.

A watch, a notify request or a drop event names its messages in their dedupe keys
(built in `services/outbox.py`: `watch:<id>:...`, `notify:<id>`, `drop:<id>`). When the
row is deleted, its messages not yet delivered are deleted too: the user removed the
question, so nothing about it should arrive later. Delivered (or given-up) ones stay as
history; ids are never reused (see `db.base.NEVER_REUSED`), so no new row can inherit them.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, or_
from sqlmodel import Session, col

from resywatch.db.engine import rows_changed
from resywatch.db.models import Notification, NotificationStatus


def retire_pending(
    session: Session, *, keys: Iterable[str] = (), prefixes: Iterable[str] = ()
) -> int:
    """Delete the undelivered messages with one of these dedupe keys, or a key starting with
    one of these prefixes; how many. A relay sending one right now finds it gone when it
    records the outcome, and moves on (its write is fenced on the row)."""
    key = col(Notification.dedupe_key)
    matches = [key.in_(list(keys)), *(key.startswith(p, autoescape=True) for p in prefixes)]
    return rows_changed(
        session.execute(
            delete(Notification).where(
                col(Notification.status) == NotificationStatus.PENDING, or_(*matches)
            )
        )
    )
