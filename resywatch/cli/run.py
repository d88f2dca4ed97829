"""`resywatch run JOB|due` (one pass, for cron) and `resywatch run-forever` (the supervisor)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from resywatch.cli.context import use
from resywatch.cli.options import JsonFlag
from resywatch.cli.params import parse_duration
from resywatch.errors import InvalidInput

if TYPE_CHECKING:
    from resywatch.cli.context import AppContext
    from resywatch.clock import Clock
    from resywatch.resy.client import ResyClient
    from resywatch.scheduler.runner import PassResult


def _now() -> datetime:
    return datetime.now(UTC)


def run(
    ctx: typer.Context,
    job: Annotated[str, typer.Argument(help="A job (discovery, watches, notify, ...) or `due`.")],
    repeat: Annotated[int, typer.Option(min=1, max=1000, help="Passes to make.")] = 1,
    every: Annotated[str, typer.Option(help="Pause between repeated passes (30s, 1m).")] = "30s",
    lock_timeout: Annotated[
        float,
        typer.Option(
            min=0, max=600, help="Wait this long for a running pass to end (not discovery)."
        ),
    ] = 0.0,
    json_output: JsonFlag = False,
) -> None:
    """One pass of a job, or of every due job, for cron. When the job is already running
    (another cron pass, a supervisor), the pass is skipped: exit 0, status "skipped".
    Discovery passes share the work instead: each scans the buckets not yet scanned in
    the current cycle that no other pass holds, and is skipped when none is left. A pass
    that wrote notifications (a drop, a watch hit) is followed by a delivery pass, so they
    are sent before the command exits.

    Example crontab line: * * * * * resywatch run due --repeat 2 --every 30s
    Exit codes: 0 ok or skipped, 1 a pass failed.
    """
    out = use(ctx, json_output=json_output)
    from resywatch.clock import SYSTEM_CLOCK
    from resywatch.scheduler import due
    from resywatch.scheduler.jobs import JOBS, JobContext

    if job != "due" and job not in JOBS:
        raise InvalidInput(f"unknown job {job!r}: choose from due, {', '.join(JOBS)}")
    pause = parse_duration(every, what="--every")
    settings, db = out.settings(), out.database()
    last_pass = SYSTEM_CLOCK.now() + pause * (repeat - 1)
    if job == "due" and not due.due_names(due.next_runs(db), JOBS, last_pass):
        # No job comes due before the last pass would start (passes only push their next
        # run later): answer now, without the client, the services or the table models.
        _report(out, [])
        return
    from resywatch.db.leases import this_process
    from resywatch.scheduler import runner

    # With --json, stdout holds one document: unconfigured notifications go to stderr.
    stream = sys.stderr if out.output.json_mode else None

    async def passes(resy: ResyClient) -> list[PassResult]:
        return await runner.run_passes(
            JobContext(
                db, resy, settings, SYSTEM_CLOCK, default_stream=stream, tokens=out.tokens()
            ),
            None if job == "due" else JOBS[job],
            owner=this_process(),
            repeat=repeat,
            every=pause,
            lock_timeout=lock_timeout,
        )

    _report(out, out.with_resy(passes))


def _report(out: AppContext, results: list[PassResult]) -> None:
    if out.output.json_mode:
        out.output.json({"passes": results})
    else:
        for result in results:
            out.output.note(_log_line(result))
    if any(r.failed for r in results):
        raise typer.Exit(1)


def run_forever(
    ctx: typer.Context,
    jobs: Annotated[
        list[str] | None, typer.Option("--job", help="Only this job; repeatable [default: all].")
    ] = None,
    json_logs: Annotated[
        bool, typer.Option("--json-logs", help="One JSON object per pass on stderr.")
    ] = False,
    max_passes: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many passes (tests, benchmarks).")
    ] = None,
    clock_speed: Annotated[
        float | None,
        typer.Option(
            help="Tests and benchmarks: run the jobs' clock this many times faster than real "
            "time (only against a Resy on this machine, such as the sandbox)."
        ),
    ] = None,
    clock_origin: Annotated[
        str | None,
        typer.Option(
            help="With --clock-speed: the wall instant (ISO-8601) it runs fast from "
            "[default: now]; give a sandbox sped up alike the same one."
        ),
    ] = None,
) -> None:
    """Run every job on its interval until SIGTERM or SIGINT: discovery, watches, notify
    checks, delivery, snipes, release watches, retention and token refresh. Delivery also
    runs as soon as notifications are committed (on PostgreSQL, by any worker). The first
    signal lets running passes finish (exit 0 within 8 s); a second one stops at once. One
    log line per pass on stderr.
    """
    out = use(ctx, json_output=False)
    from resywatch.clock import SYSTEM_CLOCK
    from resywatch.db.leases import this_process
    from resywatch.scheduler.jobs import JOBS, JobContext
    from resywatch.scheduler.supervisor import Supervisor

    unknown = [name for name in jobs or [] if name not in JOBS]
    if unknown:
        raise InvalidInput(f"unknown job {', '.join(unknown)}: choose from {', '.join(JOBS)}")
    if clock_origin is not None and clock_speed is None:
        raise InvalidInput("--clock-origin goes with --clock-speed")
    settings = out.settings()
    clock: Clock = SYSTEM_CLOCK
    if clock_speed is not None:
        from resywatch.scheduler.fast_clock import fast_clock

        clock = fast_clock(settings.resy_base_url, clock_speed, clock_origin)
    db = out.database()
    chosen = [JOBS[name] for name in jobs] if jobs else list(JOBS.values())

    def log(result: PassResult) -> None:
        # Stamped on the jobs' clock, so a sped-up run's log reads in its own time.
        now = clock.now()
        line = _json_log(result, now) if json_logs else _log_line(result, now)
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    async def supervise(resy: ResyClient) -> int:
        context = JobContext(db, resy, settings, clock, tokens=out.tokens())
        supervisor = Supervisor(context, chosen, this_process(), log, max_passes)
        return await supervisor.run()

    code = out.with_resy(supervise, stamp=clock.now)  # calls logged in the jobs' time
    if code:
        raise typer.Exit(code)


def _log_line(result: PassResult, now: datetime | None = None) -> str:
    counts = " ".join(f"{k}={v}" for k, v in result.counts.items())
    error = f" error={result.error!r}" if result.error else ""
    return (
        f"{now or _now():%Y-%m-%dT%H:%M:%SZ} job={result.job} status={result.status} "
        f"duration={result.duration_s:.2f}s {counts}{error}"
    ).rstrip()


def _json_log(result: PassResult, now: datetime) -> str:
    return json.dumps(
        {
            "at": f"{now:%Y-%m-%dT%H:%M:%S.%fZ}",
            "job": result.job,
            "status": result.status,
            "duration_s": result.duration_s,
            "counts": result.counts,
            "error": result.error,
        }
    )
