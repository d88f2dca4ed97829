"""`resywatch health`: Nagios-style checks for monitors and scripts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from resywatch.cli.context import use
from resywatch.cli.options import JsonFlag

if TYPE_CHECKING:
    from resywatch.cli.context import AppContext
    from resywatch.services.health import HealthReport, JobSchedule

HEALTH_RESY_TIMEOUT_S = 1.0  # one quick question to Resy: health answers within 2 s


def health(
    ctx: typer.Context,
    prometheus: Annotated[
        bool, typer.Option("--prometheus", help="Prometheus text format (textfile collector).")
    ] = False,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Ask Resy whether it accepts the token now, even if it did in the last 10 min.",
        ),
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Check the database, every job's heartbeat, the discovery buckets, the feed, Resy
    credentials, the notification backlog and recent booking failures.

    Resy is asked about the token at most once in 10 minutes (the check says when it last
    answered); --live asks it now. One line per check and a summary. Exit 0 OK, 1 WARNING,
    2 CRITICAL, 3 UNKNOWN (the database is unreachable or not migrated), as Nagios-style
    monitors expect.
    """
    run = use(ctx, json_output=json_output)
    from resywatch.errors import DatabaseNotReady, DatabaseUnavailable
    from resywatch.scheduler.jobs import health_schedules
    from resywatch.services import health as checks

    jobs = health_schedules(run.settings())
    try:
        report = _report(run, jobs, live=live)
    except (DatabaseNotReady, DatabaseUnavailable) as exc:
        report = checks.database_unknown(exc)
    if prometheus:
        run.output.line(_prometheus(report))
    elif run.output.json_mode:
        run.output.json(_document(report))
    else:
        for check in report.checks:
            run.output.line(f"{check.status.name:<7} {check.name}: {check.message}")
        counts = {s.name: sum(c.status == s for c in report.checks) for s in checks.Status}
        run.output.line(
            f"HEALTH {report.status.name}: {len(report.checks)} checks, "
            f"{counts['WARN']} warning, {counts['CRIT']} critical, {counts['UNKNOWN']} unknown"
        )
    if report.status:
        raise typer.Exit(int(report.status))


def _report(run: AppContext, jobs: list[JobSchedule], *, live: bool) -> HealthReport:
    """The report, asking Resy only when it must: logged in, and no acceptance of the token
    recorded in the last minutes since the config file last changed (or --live). Without a
    question, no client is built."""
    import asyncio

    from resywatch.clock import SYSTEM_CLOCK
    from resywatch.services import health as checks

    settings, db, now = run.settings(), run.database(), SYSTEM_CLOCK.now()
    tokens = run.tokens()
    checked = (
        None if live else checks.recent_token_check(db, now, tokens_changed_at=tokens.changed_at())
    )
    if checked is not None or settings.resy_auth_token is None:
        report: HealthReport = asyncio.run(
            checks.judge(
                settings,
                db,
                now,
                jobs=jobs,
                resy=None,
                token_checked_at=checked,
                accounts=tokens.all(),
            )
        )
        return report
    from resywatch.resy.transport import RetryPolicy

    asked: HealthReport = run.with_runtime(
        lambda rt: checks.health(rt, jobs=jobs),
        timeout_s=HEALTH_RESY_TIMEOUT_S,
        retry=RetryPolicy(max_retries=0),
    )
    return asked


def _document(report: HealthReport) -> dict[str, object]:
    """The documented --json fields: the seed's (next_scan_at, fast_checks, bucket_health)
    plus every check, statuses by name."""
    return {
        "status": report.status.name,
        "exit_code": int(report.status),
        "checks": [
            {"name": c.name, "status": c.status.name, "message": c.message, "value": c.value}
            for c in report.checks
        ],
        "next_scan_at": report.next_scan_at,
        "fast_checks": report.fast_checks,
        "bucket_health": report.bucket_health,
    }


def _prometheus(report: HealthReport) -> str:
    lines = [
        "# HELP resywatch_health_status Overall health: 0 ok, 1 warning, 2 critical, 3 unknown.",
        "# TYPE resywatch_health_status gauge",
        f"resywatch_health_status {int(report.status)}",
        "# HELP resywatch_check_status Each check: 0 ok, 1 warning, 2 critical, 3 unknown.",
        "# TYPE resywatch_check_status gauge",
        *(f'resywatch_check_status{{check="{c.name}"}} {int(c.status)}' for c in report.checks),
        "# HELP resywatch_check_value The figure each check measured (seconds or a count).",
        "# TYPE resywatch_check_value gauge",
        *(
            f'resywatch_check_value{{check="{c.name}"}} {c.value:g}'
            for c in report.checks
            if c.value is not None and c.value != float("inf")
        ),
        "# HELP resywatch_bucket_last_scan_timestamp_seconds Last successful scan of a bucket.",
        "# TYPE resywatch_bucket_last_scan_timestamp_seconds gauge",
        *(
            f'resywatch_bucket_last_scan_timestamp_seconds{{bucket="{b.bucket_id}"}} '
            f"{b.last_scan_at.timestamp():.0f}"
            for b in report.bucket_health
            if b.last_scan_at is not None
        ),
    ]
    return "\n".join(lines)
