"""The sandbox's own clock: it can be set, advanced, sped up or frozen by tests and demos."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime


class SandboxClock:
    """Sandbox time = anchor + speed x (real seconds since the anchor was taken).

    Every change re-anchors, so setting the speed never makes time jump. ``real`` is injectable
    so unit tests can drive the clock without sleeping.
    """

    def __init__(
        self,
        start: float | None = None,
        speed: float = 1.0,
        *,
        real: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._real = real
        self._lock = threading.Lock()
        # (sandbox seconds, real seconds, speed), replaced as one tuple so that readers on
        # other threads never see half of an update.
        self._anchor = (time.time() if start is None else start, real(), speed)

    @property
    def speed(self) -> float:
        return self._anchor[2]

    def now(self) -> float:
        """Sandbox time as POSIX seconds."""
        sandbox, real, speed = self._anchor
        return sandbox + (self._real() - real) * speed

    def now_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def set(self, instant: float) -> None:
        with self._lock:
            self._anchor = (instant, self._real(), self._anchor[2])

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._anchor = (self.now() + seconds, self._real(), self._anchor[2])

    def set_speed(self, speed: float) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        with self._lock:
            self._anchor = (self.now(), self._real(), speed)
