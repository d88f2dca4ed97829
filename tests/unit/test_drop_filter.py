"""Which drops become notifications (`[notify] drops`, `drop_venues`, `drop_party_sizes`,
`drop_window`)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from resywatch.config import load_settings
from resywatch.db.models import DropEvent
from resywatch.services.discovery.apply import wants_notification


def event(name: str = "Don Angie", hot: bool = True, parties: list[int] | None = None,
          hour: int = 19) -> DropEvent:  # fmt: skip
    return DropEvent(
        slot_id="s", bucket_id="b", venue_id=1, venue_name=name,
        starts_at=datetime(2026, 12, 1, hour, 30), slot_date=date(2026, 12, 1),
        party_sizes=parties or [2, 4], is_hotspot=hot,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("env", "drop", "wanted"),
    [
        ({}, event(hot=False), True),
        ({"NOTIFY_DROPS": "none"}, event(), False),
        ({"NOTIFY_DROPS": "hotspots"}, event(hot=False), False),
        ({"NOTIFY_DROPS": "hotspots"}, event(hot=True), True),
        ({"NOTIFY_DROP_VENUES": "carbone,don angie"}, event("Don Angie"), True),
        ({"NOTIFY_DROP_VENUES": "carbone"}, event("Don Angie"), False),
        ({"NOTIFY_DROP_PARTY_SIZES": "6"}, event(parties=[2, 4]), False),
        ({"NOTIFY_DROP_PARTY_SIZES": "4,6"}, event(parties=[2, 4]), True),
        ({"NOTIFY_DROP_WINDOW": "18:00-21:00"}, event(hour=19), True),
        ({"NOTIFY_DROP_WINDOW": "9:00-12:00"}, event(hour=19), False),
    ],
)
def test_drop_filter(env: dict[str, str], drop: DropEvent, wanted: bool) -> None:
    settings = load_settings(environ={f"RESYWATCH_{k}": v for k, v in env.items()})
    assert wants_notification(drop, settings) is wanted
