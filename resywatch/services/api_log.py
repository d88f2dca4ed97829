"""Write the Resy client's calls to `api_call_log`."""

from __future__ import annotations

from collections.abc import Iterable

from resywatch.db.engine import Database
from resywatch.db.models import ApiCallLog
from resywatch.resy.transport import ApiCall


def record_calls(db: Database, calls: Iterable[ApiCall]) -> int:
    """Append the calls in one transaction; how many were written."""
    rows = [
        ApiCallLog(
            at=call.at,
            method=call.method,
            endpoint=call.endpoint,
            status=call.status,
            latency_ms=round(call.latency_ms, 3),
            error_kind=call.error_kind,
            attempt=call.attempt,
        )
        for call in calls
    ]
    if rows:
        with db.write() as session:
            session.add_all(rows)
    return len(rows)
