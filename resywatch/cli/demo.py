"""`resywatch demo`: sandbox + SQLite + discovery, end to end, in about a minute."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from resywatch.cli.context import use
from resywatch.cli.options import JsonFlag

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.live import Live

    from resywatch.cli.output import Output
    from resywatch.demo import DemoPass


def demo(
    ctx: typer.Context,
    seconds: Annotated[float, typer.Option(min=5, max=600, help="How long to run.")] = 45.0,
    speed: Annotated[
        float, typer.Option(min=1, max=3600, help="Sandbox clock speed (120: 2 h a minute).")
    ] = 120.0,
    json_output: JsonFlag = False,
) -> None:
    """Watch drops appear: a fake Resy on a free loopback port with a fast clock, a
    throw-away SQLite database and discovery passes back to back (the first is the
    baseline). Needs no account, no network and no set-up; exits by itself.
    """
    run = use(ctx, json_output=json_output)
    from resywatch.demo import run_demo

    output = run.output
    with _LiveView(output) as show:
        result = run_demo(run.settings(), seconds=seconds, speed=speed, on_pass=show)
    if output.json_mode:
        output.json(result)
        return
    output.line(
        f"{result.passes} passes, {result.drops_opened} drops opened, {result.drops_closed} "
        f"closed, {result.requests} requests in {result.seconds:.0f} s; health {result.health}"
    )
    output.note(f"the demo database stays at {result.database} for a look around")


class _LiveView:
    """A live table of drops on a terminal; one line per pass otherwise."""

    def __init__(self, output: Output) -> None:
        self.output = output
        self.rows: list[tuple[str, ...]] = []
        self.live: Live | None = None
        self.status = "starting the sandbox..."

    def __enter__(self) -> _LiveView:
        if self.output.is_terminal and not self.output.json_mode:
            from rich.live import Live

            live = Live(self._render(), console=self.output.stdout, refresh_per_second=4)
            live.start()
            self.live = live
        return self

    def __exit__(self, *_: object) -> None:
        if self.live is not None:
            self.live.stop()

    def __call__(self, step: DemoPass) -> None:
        counts = step.counts
        self.status = (
            f"pass {step.number}: {counts.get('buckets', 0)} buckets, "
            f"{counts.get('drops_opened', 0)} opened, {counts.get('drops_closed', 0)} closed, "
            f"{step.duration_s:.1f} s — sandbox time {step.sandbox_time:%a %H:%M}"
        )
        for drop in step.new_drops:
            self.rows.insert(
                0,
                (
                    f"{step.sandbox_time:%H:%M}",
                    ("★ " if drop.is_hotspot else "") + drop.venue_name,
                    drop.neighborhood or "",
                    f"{drop.slot_date:%a %b} {drop.slot_date.day}",
                    f"{drop.starts_at:%H:%M}",
                    "/".join(map(str, drop.party_sizes)),
                ),
            )
        del self.rows[30:]
        if self.live is not None:
            self.live.update(self._render())
        elif not self.output.json_mode:
            self.output.note(self.status)
            for drop in step.new_drops:
                self.output.line(
                    f"drop: {drop.venue_name} {drop.slot_date} {drop.starts_at:%H:%M} "
                    f"party {'/'.join(map(str, drop.party_sizes))}"
                )

    def _render(self) -> RenderableType:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table("seen", "venue", "neighborhood", "date", "time", "party",
                      title="Drops as they open", title_justify="left")  # fmt: skip
        for row in self.rows:
            table.add_row(*row)
        return Group(table, Text(self.status, style="dim"))
