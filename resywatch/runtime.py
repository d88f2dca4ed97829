"""What every service works with, in one object passed first: the settings, the database,
the Resy client, the clock and this worker's name. The CLI and the scheduler build it once
per command or process; tests build it around their own database, sandbox and clock."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from resywatch.clock import SYSTEM_CLOCK, Clock
from resywatch.config import Settings
from resywatch.db.engine import Database
from resywatch.db.leases import WorkerId, this_worker

if TYPE_CHECKING:  # the HTTP stack is imported by whoever builds the client
    from resywatch.resy.client import ResyClient


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    db: Database
    resy: ResyClient
    clock: Clock = SYSTEM_CLOCK
    worker: WorkerId = field(default_factory=this_worker)
    # Set when the process is stopping: work running in a thread (which cancelling its task
    # cannot reach) watches it and returns early.
    stop: threading.Event = field(default_factory=threading.Event)
