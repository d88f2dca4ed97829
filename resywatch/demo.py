"""`resywatch demo`: the whole pipeline in a minute, with nothing to set up.

A sandbox on a free loopback port with a fast clock (cancellations reopen slots, venues
release new days), a throw-away SQLite database, and a discovery pass every 2 s cycle: the
first is the baseline, the next ones find drops as they open.

A composition root beside the CLI, not a service: it puts the sandbox, the scheduler and
the services together, and services may import none of the first two.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from resywatch.clock import SYSTEM_CLOCK
from resywatch.config import Settings
from resywatch.db.engine import Database
from resywatch.db.leases import this_process
from resywatch.db.migrate import upgrade
from resywatch.resy.client import client_from_settings
from resywatch.sandbox import DEMO_API_KEY, DEMO_AUTH_TOKEN, SandboxConfig, run_in_thread
from resywatch.scheduler.jobs import JOBS, JobContext, health_schedules
from resywatch.scheduler.runner import run_due, run_job
from resywatch.services import health as health_checks
from resywatch.services.discovery import feed
from resywatch.services.politeness import PolitenessPolicy, SharedPoliteness

DEMO_CYCLE_S = 5.0  # a pass of the demo city takes 1-3 s: it fits (health would warn if not)
MIN_PASSES = 2  # after the baseline: fewer could show no drop at all on a loaded machine


@dataclass
class DemoPass:
    number: int
    counts: dict[str, int]
    duration_s: float
    new_drops: list[feed.Drop]
    sandbox_time: datetime


@dataclass
class DemoResult:
    passes: int = 0
    drops_opened: int = 0
    drops_closed: int = 0
    requests: int = 0
    seconds: float = 0.0
    database: str = ""
    health: str = ""
    drops: list[feed.Drop] = field(default_factory=list)


def run_demo(
    settings: Settings,
    *,
    seconds: float,
    speed: float,
    on_pass: Callable[[DemoPass], None],
    seed: int = 42,
) -> DemoResult:
    """Run discovery against a fresh sandbox for about `seconds`, reporting each pass."""
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="resywatch-demo-"))
    db = Database(f"sqlite:///{workdir / 'demo.db'}")
    config = SandboxConfig(seed=seed, speed=speed, start=datetime.now(UTC), control_enabled=False)
    try:
        upgrade(db)
        with run_in_thread(config) as sandbox:
            demo_settings = settings.model_copy(
                update={
                    "resy_base_url": sandbox.base_url,
                    "resy_api_key": SecretStr(DEMO_API_KEY),
                    "resy_auth_token": SecretStr(DEMO_AUTH_TOKEN),
                    "resy_max_rps": 1000.0,
                    # A cycle every 5 s: the fast world changes between passes.
                    "discovery_interval_s": DEMO_CYCLE_S,
                    # Notifications go to a file beside the database, not into the view.
                    "notify_urls": [f"ndjson://{workdir / 'notifications.ndjson'}"],
                }
            )
            # resywatch keeps real time (so health judges real intervals); only the
            # sandbox's world runs fast, to show releases and cancellations in a minute.
            result, report = asyncio.run(
                _passes(
                    db,
                    demo_settings,
                    sandbox.state.clock.now_datetime,
                    started + seconds,
                    on_pass,
                )
            )
            with db.read() as session:
                result.drops = feed.feed(session, feed.FeedFilter(limit=20), _now())
            result.health = report.status.name
    finally:
        db.dispose()
    result.seconds = round(time.monotonic() - started, 1)
    result.database = str(workdir / "demo.db")
    return result


async def _passes(
    db: Database,
    settings: Settings,
    sandbox_clock: Callable[[], datetime],
    deadline: float,
    on_pass: Callable[[DemoPass], None],
) -> tuple[DemoResult, health_checks.HealthReport]:
    """Every job once (discovery's first pass is the baseline), discovery passes until the
    deadline, every due job once more, then the health report: the real scheduler path."""
    result, owner = DemoResult(), this_process()
    gate = SharedPoliteness(db, PolitenessPolicy.from_settings(settings))
    async with client_from_settings(settings, gate=gate) as resy:
        context = JobContext(db, resy, settings, SYSTEM_CLOCK)
        await run_due(context, owner=owner)
        discovery, before = JOBS["discovery"], _now()
        while time.monotonic() < deadline or result.passes < MIN_PASSES:
            # One pass per cycle: a second pass within a cycle would find nothing due.
            wait = (discovery.next_run_at(before, settings) - _now()).total_seconds()
            await asyncio.sleep(max(0.0, wait))
            before = _now()
            done = await run_job(discovery, context, owner=owner)
            with db.read() as session:
                opened = feed.feed(session, feed.FeedFilter(since=before, limit=50), _now())
            result.passes += 1
            result.drops_opened += done.counts.get("drops_opened", 0)
            result.drops_closed += done.counts.get("drops_closed", 0)
            result.requests += done.counts.get("requests", 0)
            on_pass(DemoPass(result.passes, done.counts, done.duration_s, opened, sandbox_clock()))
        await run_due(context, owner=owner)
        report = await health_checks.health(context.runtime(), jobs=health_schedules(settings))
    return result, report


def _now() -> datetime:
    return datetime.now(UTC)
