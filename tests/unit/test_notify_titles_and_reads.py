"""Notify requests as the seed kept them: a title, and a read state for what they found."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from resywatch.db.engine import Database
from resywatch.db.models import NotifyRequest, RequestStatus
from resywatch.errors import InvalidInput, NotFound
from resywatch.services import notify_requests
from resywatch.services.vocabulary import Want

NOW = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)


def add(db: Database, *, status: str = RequestStatus.PENDING, title: str | None = "t") -> int:
    with db.write() as session:
        row = NotifyRequest(
            venue_id=7,
            venue_name="Carbone",
            title=title,
            date_from=date(2026, 12, 4),
            date_to=date(2026, 12, 4),
            party_size=2,
            status=status,
            result={"times": ["2026-12-04 19:00"]} if status == RequestStatus.SATISFIED else None,
            satisfied_at=NOW if status == RequestStatus.SATISFIED else None,
            created_at=NOW,
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id


def test_default_title_is_the_seeds_party_date_window() -> None:
    one_day = Want(date(2026, 12, 4), date(2026, 12, 4), 2, time(19), time(21))
    assert notify_requests.default_title(one_day) == "2 - 2026-12-04 - 19:00-21:00"
    span = Want(date(2026, 12, 4), date(2026, 12, 6), 4)
    assert notify_requests.default_title(span) == "4 - 2026-12-04..2026-12-06 - any"


def test_rename_keeps_the_new_title_and_refuses_bad_ones(db: Database) -> None:
    request_id = add(db)
    view = notify_requests.rename_request(db, request_id, "  Anniversary  ")
    assert view.title == "Anniversary"
    assert notify_requests.list_requests(db)[0].title == "Anniversary"
    for bad in ("", "   ", "x" * 256, "two\nlines"):
        with pytest.raises(InvalidInput):
            notify_requests.rename_request(db, request_id, bad)
    assert notify_requests.list_requests(db)[0].title == "Anniversary"  # nothing written
    with pytest.raises(NotFound):
        notify_requests.rename_request(db, request_id + 100, "x")


def test_found_results_are_unread_until_marked_read(db: Database) -> None:
    pending = add(db)
    first, second = add(db, status=RequestStatus.SATISFIED), add(db, status=RequestStatus.SATISFIED)
    unread = notify_requests.list_requests(db, unread_only=True)
    assert {r.id for r in unread} == {first, second} and all(r.unread for r in unread)

    assert notify_requests.mark_read(db, NOW, request_id=first) == [first]
    assert notify_requests.mark_read(db, NOW, request_id=first) == []  # already read
    assert [r.id for r in notify_requests.list_requests(db, unread_only=True)] == [second]
    with pytest.raises(InvalidInput, match="found nothing yet"):
        notify_requests.mark_read(db, NOW, request_id=pending)
    with pytest.raises(NotFound):
        notify_requests.mark_read(db, NOW, request_id=second + 100)

    later = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)
    assert notify_requests.mark_read(db, later, request_id=None) == [second]
    assert notify_requests.mark_read(db, later, request_id=None) == []
    views = {r.id: r for r in notify_requests.list_requests(db)}
    assert views[first].read_at == NOW and views[second].read_at == later  # first read kept
    assert not any(v.unread for v in views.values())


def test_unread_with_active_is_refused(db: Database) -> None:
    with pytest.raises(InvalidInput):
        notify_requests.my_watches(db, active_only=True, unread_only=True)
