"""Retention's batches read only what they judge by (both backends): the expired messages
go, the ones whose key still stops a repeat stay, and a batch of messages does not load
their titles, bodies and payloads (a process meant to stay small held 30 MB for a moment
for every 5,000 of them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from resywatch.config import load_settings
from resywatch.db.engine import Database
from resywatch.db.models import Notification, NotificationKind, NotificationStatus
from resywatch.services import retention
from tests.memory_peak import peak_bytes

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)
OLD = NOW - timedelta(days=90)
BATCH = 1_000


def message(key: str, kind: str, payload: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "dedupe_key": key,
        "kind": kind,
        "title": f"{key}: a table just opened",
        "body": f"{key} in the West Village: Thu Dec 3 at 7:30 PM, party of 2 (Dining Room).",
        "url": "https://resy.com/cities/ny/venue?date=2026-12-03&seats=2",
        "payload": payload,
        "status": NotificationStatus.SENT,
        "attempts": 1,
        "next_attempt_at": OLD,
        "created_at": OLD,
        **fields,
    }


def test_expired_messages_go_in_light_batches(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop = {
        "venue_name": "A venue with a long name",
        "starts_at": "2026-12-03T19:30:00",
        "party_sizes": [2, 4],
        "seating_types": ["Dining Room", "Bar"],
        "venue_id": 7,
    }
    drops = [
        message(f"drop:{n}", NotificationKind.DROP, drop | {"drop_event_id": n})
        for n in range(2 * BATCH)
    ]
    kept = [
        message("watch:future", NotificationKind.WATCH_HIT, {"day": "2026-12-04"}),
        message("account:lapsing", NotificationKind.ACCOUNT, {}),
        message("drop:pending", NotificationKind.DROP, drop, status=NotificationStatus.PENDING),
    ]
    gone = [message("watch:past", NotificationKind.WATCH_HIT, {"day": "2026-12-02"})]
    table = Notification.__table__  # type: ignore[attr-defined]
    with db.write() as session:
        session.execute(insert(table), drops + kept + gone)
    monkeypatch.setattr(retention, "BATCH", BATCH)
    monkeypatch.setattr(retention, "BATCH_PAUSE_S", 0.0)
    settings = load_settings(environ={"RESYWATCH_RETENTION_NOTIFICATIONS_DAYS": "1"})
    retention.prune(db, settings, NOW)  # warm: statements compiled, connections open
    with db.write() as session:
        session.execute(insert(table), drops)

    deleted, grown = peak_bytes(lambda: retention.prune(db, settings, NOW))

    assert deleted["notifications"] == 2 * BATCH
    with db.read() as session:
        left = set(session.scalars(select(Notification.dedupe_key)))
    assert left == {m["dedupe_key"] for m in kept}
    # Whole rows took about 6 kB each (6 MB a batch of 1,000); ids and kinds a tenth of it.
    assert grown < 2 * 2**20, f"{(grown) / 2**20:.1f} MB for a batch"
