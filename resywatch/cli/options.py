"""Options shared by many commands, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout instead of text.")
]

AccountOption = Annotated[
    str | None,
    typer.Option(
        "--account",
        help="The Resy account to act for (env RESYWATCH_ACCOUNT) [default: default].",
        show_default=False,
    ),
]
