"""The snipe lane: the minute a year that matters is not a background scan.

Every caller of a Resy host shares one request budget (`services/politeness.py`: a database
row, `resy.max_rps`), which keeps the account and the address off Resy's firewall. A snipe's
requests instead draw on a lane of their own, `resy.snipe_max_rps` for all snipes together:

- **Reserved ahead.** When a snipe prepares, it reserves its window (from `lead` before the
  instant to WINDOW_AFTER_S past it) and the rate it wants in `snipe_window`; windows that
  overlap share the lane, and a snipe granted less than it wants polls slower and says so.
  Settled (the row deleted) when the snipe ends.
- **Off the hot path.** Inside the process, the snipes' requests pass one in-memory limiter at
  the lane's rate (a 429's Retry-After pauses it): no database round trip between a find that
  sees the drop and the book request. Their failures still reach the shared breaker.
- **Others yield.** While a window is open, every other caller of the host (discovery,
  watches, notify checks, on any worker) waits at the shared budget until it closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func
from sqlmodel import col, select

from resywatch.db.models import SnipeWindow
from resywatch.resy import errors
from resywatch.resy.gate import HostGate
from resywatch.resy.transport import RateLimiter
from resywatch.services.politeness import locked_host_row

if TYPE_CHECKING:
    from resywatch.resy.client import ResyClient
    from resywatch.runtime import Runtime

#: Other callers yield from the window's opening until this long past the instant (or until
#: the snipe ends): drops come on time or a little late; a later one is caught at the
#: interval, beside the others.
WINDOW_AFTER_S = 15.0
#: No snipe gets less than this, however full the lane (it says it cannot keep its interval).
MIN_RPS = 1.0


@dataclass(frozen=True)
class Grant:
    """The rate a snipe asked the lane for, and the rate it got."""

    wanted: float
    rps: float

    @property
    def stretch(self) -> float:
        """How many times slower than asked the snipe must poll (1.0: not at all)."""
        return max(1.0, self.wanted / self.rps)


class LaneGate:
    """The lane's `HostGate`: nothing to ask before a call, a transient failure reported to
    the shared breaker (so that the other callers learn Resy is in trouble)."""

    def __init__(self, shared: HostGate | None) -> None:
        self.shared = shared

    async def before_call(self, host: str) -> None:
        return None

    async def after_call(self, host: str, error: errors.ResyError | None) -> None:
        if error is not None and not error.permanent and self.shared is not None:
            await self.shared.after_call(host, error)


class SnipeLane:
    """One process's part of the lane: the limiter every snipe of the process passes, and the
    reservations its snipes hold in the database."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        rate = rt.settings.resy_snipe_max_rps
        self.rate = rate
        self.limiter = RateLimiter(
            rate, max(1, int(rate / 5)), clock=rt.resy.clock, sleep=rt.resy.sleep
        )

    def client(self, resy: ResyClient) -> ResyClient:
        """A view of `resy` (its warm connections, its account's token) whose requests go by
        the lane; each snipe has its own, so that its budget waits are its own."""
        return resy.in_lane(self.limiter, LaneGate(resy.gate))

    def reserve(
        self, snipe_id: int, opens_at: datetime, closes_at: datetime, wanted: float
    ) -> Grant:
        """Reserve `wanted` requests a second from `opens_at` to `closes_at`, or what the
        windows already overlapping it leave (MIN_RPS at least)."""
        host = self.rt.resy.host
        with self.rt.db.write() as session:
            now = self.rt.clock.now()
            locked_host_row(session, host, now)  # one reservation at a time, every worker
            used = session.exec(
                select(func.coalesce(func.sum(SnipeWindow.rps), 0.0)).where(
                    col(SnipeWindow.host) == host,
                    col(SnipeWindow.snipe_id) != snipe_id,
                    col(SnipeWindow.opens_at) < closes_at,
                    col(SnipeWindow.closes_at) > max(opens_at, now),
                )
            ).one()
            grant = Grant(wanted, min(wanted, max(MIN_RPS, self.rate - float(used))))
            row = session.get(SnipeWindow, snipe_id) or SnipeWindow(
                snipe_id=snipe_id, host=host, opens_at=opens_at, closes_at=closes_at, rps=0.0
            )
            row.opens_at, row.closes_at, row.rps = opens_at, closes_at, grant.rps
            session.add(row)
        return grant

    def settle(self, snipe_id: int) -> None:
        """The snipe ended: its window closes, the others stop yielding to it."""
        with self.rt.db.write() as session:
            row = session.get(SnipeWindow, snipe_id)
            if row is not None:
                session.delete(row)


def window_for(release: datetime, lead: timedelta) -> tuple[datetime, datetime]:
    """The window a snipe reserves: from `lead` before its instant to WINDOW_AFTER_S past."""
    return release - lead, release + timedelta(seconds=WINDOW_AFTER_S)


def pacing_warning(
    snipe_id: int, paced: dict[str, float], grant: Grant, lane_rate: float
) -> str | None:
    """Why a snipe could not keep its interval, from its `Sniper.pacing()` figures (None: it
    kept it)."""
    asked, waited = paced["interval_ms"], paced["budget_wait_ms"]
    why = []
    if grant.stretch > 1.0:
        why.append(
            f"the snipe lane ({lane_rate:g} requests/s for the snipes whose windows overlap, "
            f"resy.snipe_max_rps) granted it {grant.rps:g}/s of the {grant.wanted:g}/s it needs"
        )
    if waited > asked:
        why.append(f"its requests waited {waited:g} ms for the budget")
    if not why and paced["effective_interval_ms"] > 1.5 * asked:
        why.append("the process was too busy to send its finds in time")
    if not why:
        return None
    return (
        f"snipe {snipe_id} could not keep its {asked:g} ms interval: it polled every "
        f"{paced['effective_interval_ms']:g} ms around the instant; {'; '.join(why)}. Fewer "
        "snipes at one instant, a longer --interval or a larger resy.snipe_max_rps keeps it."
    )
