"""A doorbell for a job loop: ring it from any thread, and the loop's next wait ends at once.

Rings coalesce: any number of rings before the loop next waits make one wake, so a pass
that wrote 100 notifications causes one delivery pass, not 100. The loop clears the bell
when it starts a pass, so a ring that comes while the pass runs is kept and makes exactly
one more pass after it (the pass may have claimed its rows before those were committed).
"""

from __future__ import annotations

import asyncio
import contextlib


class Wake:
    """Owned by one event loop (the supervisor's); `ring` is safe from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()
        self.rings = 0  # how often it was rung (for logs and tests)

    def ring(self) -> None:
        self.rings += 1
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:  # a worker thread: no loop of its own
            on_loop = False
        if on_loop:
            self._event.set()
        else:
            # A closed loop (the supervisor has stopped) has nobody left to wake.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._event.set)

    @property
    def rung(self) -> bool:
        return self._event.is_set()

    def clear(self) -> None:
        """A pass starts: what was rung so far is what it will see."""
        self._event.clear()

    async def wait(self) -> None:
        await self._event.wait()
