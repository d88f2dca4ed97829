"""The curated hard-to-get list with each venue's last drop, and "notify me for all of
them": one request per listed venue, filed once however often it is asked."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

import pytest
from sqlmodel import select

from resywatch.clock import ManualClock
from resywatch.config import load_settings
from resywatch.data import load_hard_to_get
from resywatch.db.engine import Database
from resywatch.db.models import DropEvent, NotifyRequest, Venue
from resywatch.errors import InvalidInput
from resywatch.resy.client import ResyClient
from resywatch.runtime import Runtime
from resywatch.services.hard_to_get import hard_to_get, notify_all
from resywatch.services.vocabulary import Want

NOW = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
DAY = date(2026, 12, 4)
LISTED = [v.name for v in load_hard_to_get()]


class NoResy:
    """Every listed venue is known locally, so no Resy call may happen."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"Resy was asked ({name})")


def runtime(db: Database) -> Runtime:
    return Runtime(load_settings(environ={}), db, cast(ResyClient, NoResy()), ManualClock(NOW))


def drop(venue_id: int, name: str, opened: datetime, *, closed: bool = False) -> DropEvent:
    return DropEvent(
        slot_id=f"{venue_id:08d}{int(opened.timestamp()):024d}",
        bucket_id="2026-12-04_19:00",
        venue_id=venue_id,
        venue_name=name,
        starts_at=datetime(2026, 12, 4, 19, 30),
        slot_date=DAY,
        opened_at=opened,
        closed_at=opened + timedelta(minutes=3) if closed else None,
    )


def test_the_list_has_its_source_and_each_venues_last_drop(db: Database) -> None:
    with db.write() as session:
        session.add(drop(6194, "Carbone", NOW - timedelta(days=2), closed=True))
        session.add(drop(6194, "Carbone", NOW - timedelta(hours=1)))
        session.add(drop(77, "Burger King", NOW))  # not "King"
    board = hard_to_get(db)
    assert board.source and board.as_of == "2026-11-26"
    assert [v.name for v in board.venues] == LISTED
    by_name = {v.name: v for v in board.venues}
    carbone = by_name["Carbone"]
    assert carbone.drops == 2 and carbone.last_drop is not None
    assert carbone.last_drop.opened_at == NOW - timedelta(hours=1) and carbone.last_drop.open
    assert by_name["King"].last_drop is None and by_name["King"].drops == 0


def test_notify_all_files_one_request_per_venue_once(db: Database) -> None:
    with db.write() as session:
        for n, name in enumerate(LISTED, start=1):
            session.add(Venue(id=n, name=name))
    rt = runtime(db)
    want = Want(DAY, DAY + timedelta(days=2), 2, time(19), time(21))
    first = asyncio.run(notify_all(rt, want))
    assert len(first.created) == len(LISTED) and not first.skipped
    assert first.created[0].title == f"Hard to get: {LISTED[0]}"
    assert {r.window for r in first.created} == {"19:00-21:00"}

    again = asyncio.run(notify_all(rt, want))
    assert again.created == [] and len(again.already_pending) == len(LISTED)
    with db.read() as session:
        assert len(session.exec(select(NotifyRequest)).all()) == len(LISTED)

    other = asyncio.run(notify_all(rt, Want(DAY, DAY, 4), prefix="Birthday"))
    assert len(other.created) == len(LISTED)
    assert other.created[-1].title == f"Birthday: {LISTED[-1]}"


def test_bad_input_writes_nothing(db: Database) -> None:
    rt = runtime(db)
    for want, prefix in [
        (Want(date(2020, 1, 1), date(2020, 1, 1), 2), None),
        (Want(DAY, DAY, 0), None),
        (Want(DAY, DAY, 2), "  "),
    ]:
        with pytest.raises(InvalidInput):
            asyncio.run(notify_all(rt, want, prefix=prefix))
    with db.read() as session:
        assert session.exec(select(NotifyRequest)).all() == []


def test_filings_at_the_same_moment_file_each_venue_once(db: Database) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with db.write() as session:
        for n, name in enumerate(LISTED, start=1):
            session.add(Venue(id=n, name=name))
    want = Want(DAY, DAY, 2)

    def file() -> int:
        own = Database(db.url.render_as_string(hide_password=False))  # as another process
        try:
            return len(asyncio.run(notify_all(runtime(own), want)).created)
        finally:
            own.dispose()

    with ThreadPoolExecutor(max_workers=4) as pool:
        created = list(pool.map(lambda _: file(), range(4)))
    assert sum(created) == len(LISTED)
    with db.read() as session:
        assert len(session.exec(select(NotifyRequest)).all()) == len(LISTED)
