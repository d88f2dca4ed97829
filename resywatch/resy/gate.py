"""The client's view of politeness shared with other clients: a request budget, a pause a
429 asked for, a circuit breaker. The state lives elsewhere (the database, so that every
worker and cron pass obeys it); the client only asks before and reports after each attempt.
"""

from __future__ import annotations

from typing import Protocol

from resywatch.resy.errors import ResyError


class HostGate(Protocol):
    """Asked around every HTTP attempt the client makes to a host."""

    async def before_call(self, host: str) -> None:
        """Wait until the host's shared budget and any pause let one request go.

        Raises `errors.CircuitOpen` when the host's breaker is open and this caller is not
        the one trial call that may test it.
        """
        ...

    async def after_call(self, host: str, error: ResyError | None) -> None:
        """Record how the attempt ended: None when Resy answered with success."""
        ...
