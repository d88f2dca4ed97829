"""`resywatch notify deliver` and `notify channels list|test`: the outbox relay.

Output. Without --json, a notification sent to the stdout channel (the default when no URL
is configured) is printed as a short text block as it is sent; the counts go to stderr on a
terminal, and problems always do, so a quiet cron run prints nothing. With --json, stdout
holds one JSON document, the counts; when the stdout channel is in use, each notification is
first printed on its own line as it is sent (NDJSON, before it is recorded as sent, so a
crash never loses one) and the counts are the last line.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from resywatch.cli.context import AppContext, use
from resywatch.cli.options import JsonFlag

if TYPE_CHECKING:
    from resywatch.services.channels.registry import Channels
    from resywatch.services.delivery.policy import DeliveryReport

channels_app = typer.Typer(
    help="The channels notifications go to ([notify] urls).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
PROBLEMS_SHOWN = 10


def deliver(
    ctx: typer.Context,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Handle at most this many notifications.")
    ] = None,
    loop: Annotated[
        bool, typer.Option("--loop", help="Keep delivering until interrupted (or --for).")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.05, max=3600, help="With --loop: seconds between polls.")
    ] = 1.0,
    for_s: Annotated[
        float | None, typer.Option("--for", min=0, help="With --loop: stop after this many s.")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Send pending notifications to every channel (at least once, never twice on purpose).

    Safe to run from several places at once: each notification is claimed by one relay.
    Failures are retried with backoff up to [notify] max_attempts times, then marked failed
    (exit 1). Example: resywatch notify deliver --loop --interval 1
    """
    run = use(ctx, json_output=json_output)
    from resywatch.services.delivery.policy import DeliveryPolicy
    from resywatch.services.delivery.relay import deliver, run_loop

    settings = run.settings()
    channels = _channels(run)  # a bad URL stops here, before the database is touched
    try:
        db = run.database()
        policy = DeliveryPolicy.from_settings(settings)
        stop = threading.Event()
        with _stop_on(stop, signal.SIGTERM, *([signal.SIGINT] if loop else [])):
            if loop:
                report = run_loop(
                    db,
                    channels.items,
                    interval_s=interval,
                    duration_s=for_s,
                    stop=stop,
                    limit=limit,
                    policy=policy,
                )
            else:
                report = deliver(db, channels.items, policy=policy, limit=limit, stop=stop)
    finally:
        channels.close()
    _show_report(run, channels, report)
    if report.failed:
        raise typer.Exit(1)


@channels_app.command("list")
def list_channels(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """The configured channels: kind and URL (secrets masked)."""
    run = use(ctx, json_output=json_output)
    from resywatch.services.channels.checks import describe_channels

    channels = _channels(run)
    channels.close()
    infos = describe_channels(channels)
    if run.output.json_mode:
        run.output.json({"channels": infos})
        return
    run.output.table(["kind", "url", "key"], [(i.kind, i.url, i.key) for i in infos])
    if channels.default:
        run.output.note(
            "no notify URLs configured: notifications are printed on stdout "
            "(set RESYWATCH_NOTIFY_URLS or [notify] urls)"
        )


@channels_app.command("test")
def test_channels(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """Send a test message to every channel now, all at once, each within [notify]
    timeout_s; exit 1 if any of them failed."""
    run = use(ctx, json_output=json_output)
    from resywatch.services.channels.checks import check_channels

    channels = _channels(run)
    try:
        checks = check_channels(channels, datetime.now(UTC))
    finally:
        channels.close()
    ok = all(c.ok for c in checks)
    if run.output.json_mode:
        run.output.json({"ok": ok, "channels": checks})
    else:
        rows = [(c.kind, c.url, "ok" if c.ok else c.error, f"{c.latency_ms:.0f}") for c in checks]
        run.output.table(["kind", "url", "result", "ms"], rows)
    if not ok:
        raise typer.Exit(1)


def _channels(run: AppContext) -> Channels:
    from resywatch.services.channels.registry import channels_from_settings

    # With --json, stdout holds exactly one document: printed notifications (one JSON
    # object a line) go to stderr instead.
    stream = sys.stderr if run.output.json_mode else run.output.stdout.file
    return channels_from_settings(run.settings(), stdout=stream, json_lines=run.output.json_mode)


def _show_report(run: AppContext, channels: Channels, report: DeliveryReport) -> None:
    from resywatch.services.channels.checks import describe_channels

    if run.output.json_mode:
        document = {
            "sent": report.sent,
            "failed": report.failed,
            "retried": report.retried,
            "skipped": report.skipped,
            "deliveries": report.deliveries,
            "batches": report.batches,
            "duration_s": round(report.duration_s, 3),
            "channels": describe_channels(channels),
            "problems": report.problems,
        }
        run.output.json(document)
        return
    for problem in report.problems[:PROBLEMS_SHOWN]:
        tries = f"{problem.attempts} attempt{'s' if problem.attempts > 1 else ''}"
        what = "will retry" if problem.will_retry else "gave up"
        run.output.warn(
            f"notification {problem.id} ({problem.dedupe_key}) {what} after {tries}: "
            f"{problem.error}"
        )
    if len(report.problems) > PROBLEMS_SHOWN:
        run.output.warn(f"... and {len(report.problems) - PROBLEMS_SHOWN} more")
    if run.output.stderr.is_terminal:
        run.output.note(
            f"sent {report.sent}, retried {report.retried}, failed {report.failed}, "
            f"held by another relay {report.skipped} ({report.duration_s:.2f} s)"
        )


@contextmanager
def _stop_on(stop: threading.Event, *signals: signal.Signals) -> Iterator[None]:
    """Turn these signals into `stop`: the relay abandons the sends under way (unrecorded,
    so they come again later) and releases the rest of its batch instead of dying
    mid-send or waiting out a hung channel."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in signals}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
