"""How a reservation from Resy's list reads: its cancel terms, whatever shape Resy sends."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from resywatch.resy.models import Reservation
from resywatch.services.reservations import CancelQuote, view

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def reservation(**fields: Any) -> Reservation:
    body: dict[str, Any] = {
        "reservation_id": 7,
        "resy_token": "tok",
        "day": "2026-12-05",
        "time_slot": "19:30:00",
        "num_seats": 2,
        "venue": {"id": {"resy": 5286}},
        "config": {"type": "Dining Room"},
    }
    return Reservation.model_validate(body | fields)


def fee(amount: float | None, cut_off: str | None, applies: bool | None = True) -> dict[str, Any]:
    return {"fee": {"amount": amount, "date_cut_off": cut_off, "applies": applies}}


def test_a_reservation_reads_its_venue_time_and_seating() -> None:
    r = view(reservation(), upcoming=True)
    assert (r.venue_id, r.time, r.party_size, r.seating_type) == (
        5286,
        time(19, 30),
        2,
        "Dining Room",
    )
    assert r.cancellable and r.cancel_fee == 0 and r.fee_if_cancelled(NOW) == 0


@pytest.mark.parametrize(
    ("cancellation", "due_now"),
    [
        (fee(100.0, "2026-12-04T19:30:00Z"), 0.0),  # free until tomorrow
        (fee(100.0, "2026-12-03T11:00:00Z"), 100.0),  # the cut-off has passed
        (fee(100.0, "2026-12-03T11:00:00"), 100.0),  # no zone: read as UTC
        (fee(100.0, "next Tuesday"), 100.0),  # unreadable: the safe reading, it costs
        (fee(100.0, None), 100.0),  # no cut-off given: it costs
        (fee(100.0, "2026-12-03T11:00:00Z", applies=False), 0.0),  # Resy says it does not apply
        (fee(None, None), 0.0),
    ],
)
def test_what_a_cancel_costs_now(cancellation: dict[str, Any], due_now: float) -> None:
    r = view(reservation(cancellation=cancellation), upcoming=True)
    assert r.fee_if_cancelled(NOW) == due_now
    quote = CancelQuote(r, r.fee_if_cancelled(NOW))
    assert ("costs $100.00 now" in quote.summary) is (due_now > 0)


def test_a_past_or_refused_reservation_is_not_cancellable() -> None:
    assert not view(reservation(), upcoming=False).cancellable
    refused = view(reservation(cancellation={"allowed": False}), upcoming=True)
    assert not refused.cancellable


def test_a_quote_before_the_cut_off_says_until_when_it_is_free() -> None:
    r = view(reservation(cancellation=fee(50.0, "2026-12-04T19:30:00Z")), upcoming=True)
    summary = CancelQuote(r, r.fee_if_cancelled(NOW)).summary
    assert summary == (
        "cancelling reservation 7 (venue 5286, Sat Dec 5 19:30, party of 2) is free until "
        "2026-12-04 19:30 UTC ($50.00 after)"
    )
    assert r.fee_if_cancelled(NOW + timedelta(days=2)) == 50.0
