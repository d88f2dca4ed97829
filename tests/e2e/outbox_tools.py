"""Outbox rows for delivery tests: notifications shaped like discovery's drop alerts."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select

from resywatch.db.engine import Database
from resywatch.db.models import Notification


def add_notifications(db: Database, count: int, at: datetime, start: int = 0) -> list[str]:
    """`count` drop notifications due at `at`, keyed drop:<start>... ; their keys."""
    keys = [f"drop:{i}" for i in range(start, start + count)]
    with db.write() as session:
        for i, key in enumerate(keys, start):
            session.add(
                Notification(
                    dedupe_key=key,
                    kind="drop",
                    title=f"Venue {i}: a table just opened",
                    body=f"Venue {i} in SoHo: Fri Mar 6 at 7:30 PM, party of 2 (Dining Room).",
                    url=f"https://resy.com/cities/ny/venue-{i}?date=2026-03-06&seats=2",
                    payload={"drop_event_id": i},
                    created_at=at,
                    next_attempt_at=at,
                )
            )
    return keys


def outbox(db: Database) -> dict[str, Notification]:
    """Every notification, by dedupe key."""
    with db.read() as session:
        return {n.dedupe_key: n for n in session.exec(select(Notification))}
