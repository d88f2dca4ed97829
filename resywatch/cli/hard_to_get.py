"""`resywatch venue hard-to-get`: the curated list, with each venue's last drop."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from resywatch.cli.context import use
from resywatch.cli.options import JsonFlag


def hard_to_get(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """The curated hard-to-get list: where it comes from, and when discovery last saw each
    venue drop a table. `notify add --hard-to-get` asks to be told for all of them.

    Example: resywatch venue hard-to-get
    """
    run = use(ctx, json_output=json_output)
    from resywatch.services.hard_to_get import hard_to_get as curated

    board = curated(run.database())
    if run.output.json_mode:
        run.output.json(board)
        return
    now = datetime.now(UTC)
    out = run.output
    out.table(
        ["venue", "neighborhood", "cuisine", "list", "last drop", "for", "drops"],
        [
            (
                v.name,
                v.neighborhood,
                v.cuisine,
                v.list,
                out.when(v.last_drop.opened_at, now) if v.last_drop else "never seen",
                f"{v.last_drop.starts_at:%Y-%m-%d %H:%M}" if v.last_drop else None,
                v.drops,
            )
            for v in board.venues
        ],
        title=f"Hard to get ({len(board.venues)} venues, as of {board.as_of})",
    )
    out.note(f"source: {board.source}")
