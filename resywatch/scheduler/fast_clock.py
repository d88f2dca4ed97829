"""`run-forever --clock-speed`: the supervisor's jobs on a sped-up clock, for benchmarks and
tests that live a day of cycles in minutes (bench/soak.py) beside a sandbox sped up alike.

Only against a Resy on this machine (a loopback base URL): a day of passes in ten minutes
is a load no real host should be asked to carry. The origin is the wall instant from which
the clock runs fast (at it, the clock read the wall time), so the sandbox, told the same
origin and speed, keeps the same time. Leases are still renewed on wall-clock timers: one
worker per database on a sped-up clock (no other worker judges its leases).
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from urllib.parse import urlsplit

from resywatch.clock import ScaledClock
from resywatch.errors import InvalidInput


def fast_clock(resy_base_url: str, speed: float, origin: str | None = None) -> ScaledClock:
    """The clock `--clock-speed SPEED --clock-origin ORIGIN` asks for; InvalidInput (exit 2)
    for a speed not above 0, an origin that is not an ISO-8601 instant, or a Resy host that
    is not on this machine."""
    if not speed > 0:
        raise InvalidInput(f"--clock-speed must be above 0, not {speed}")
    if not _is_local(resy_base_url):
        raise InvalidInput(
            "--clock-speed runs the jobs faster than real time: only against a Resy on this "
            "machine (RESYWATCH_RESY_BASE_URL on a loopback address, e.g. the sandbox)"
        )
    at = None
    if origin is not None:
        try:
            at = datetime.fromisoformat(origin.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(
                f"--clock-origin {origin!r} is not an ISO-8601 instant (e.g. 2026-01-31T18:00:00Z)"
            ) from None
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return ScaledClock(speed, at)


def _is_local(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
