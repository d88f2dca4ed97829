"""Keep a supervisor that runs for months at a flat resident size.

A discovery pass holds a few megabytes of search pages and their parsed slots for a moment;
once freed, glibc's malloc keeps most of that memory in the process (only the top of a heap
goes back by itself), and every thread that allocates (delivery and retention run in worker
threads) gets an arena of its own, up to 8 per core, each keeping its own freed memory. In a
day of simulated passes (bench/soak.py) the resident size then crept up by tens of MB. So
the supervisor caps the arenas at two and hands freed pages back after its passes (at most
once a second: a trim costs about a millisecond). Elsewhere (macOS, musl) nothing is done.
"""

from __future__ import annotations

import ctypes
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

M_ARENA_MAX = -8  # glibc's mallopt parameter
ARENAS = 2
TRIM_EVERY_S = 1.0


@dataclass
class Allocator:
    """The C allocator's knobs, when it has them (glibc): cap its arenas, trim its heaps."""

    library: ctypes.CDLL | None
    monotonic: Callable[[], float] = time.monotonic
    trims: int = 0
    _last_trim: float = field(default=float("-inf"))

    @classmethod
    def of_this_process(cls) -> Allocator:
        library = None
        if sys.platform.startswith("linux"):
            process = ctypes.CDLL(None)
            if hasattr(process, "malloc_trim") and hasattr(process, "mallopt"):
                library = process
        return cls(library)

    def limit_arenas(self, arenas: int = ARENAS) -> bool:
        """Cap malloc's arenas (before the worker threads allocate); True if it took."""
        return self.library is not None and bool(self.library.mallopt(M_ARENA_MAX, arenas))

    def release(self) -> bool:
        """Give freed memory back to the system, unless that was done within the last
        TRIM_EVERY_S; True when it trimmed."""
        now = self.monotonic()
        if self.library is None or now - self._last_trim < TRIM_EVERY_S:
            return False
        self._last_trim = now
        self.library.malloc_trim(0)
        self.trims += 1
        return True
