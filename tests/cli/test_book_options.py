"""`book snipe` and `book schedule add` take one option set (`SnipeOptions`): the same
options, in the same order, with the same flags, help and defaults, and each command only
its own beside them."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import typer.main

from resywatch.cli.app import app
from resywatch.cli.book import SnipeOptions


def options_of(*path: str) -> list[Any]:
    command: Any = typer.main.get_command(app)
    for name in path:
        ctx = command.make_context(command.name, [], resilient_parsing=True)
        command = command.get_command(ctx, name)
    return [p for p in command.params if p.name != "ctx"]


def described(param: Any) -> tuple[Any, ...]:
    return (param.name, tuple(param.opts), param.help, param.default, param.required)


def test_snipe_and_schedule_add_share_one_option_set() -> None:
    shared = [f.name for f in fields(SnipeOptions)]
    snipe, add = options_of("book", "snipe"), options_of("book", "schedule", "add")
    assert [p.name for p in snipe] == [*shared, "speculate", "json_output"]
    assert [p.name for p in add] == [*shared, "repeat", "days_ahead", "json_output"]
    assert [described(p) for p in snipe[: len(shared)]] == [
        described(p) for p in add[: len(shared)]
    ]
