"""README's command table and `resywatch --help` name the same commands: every command of
every group is in the table, and the table names no command that does not exist."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer.main

from resywatch.cli.app import app

README = Path(__file__).resolve().parents[2] / "README.md"
# A command tree: each name maps to its subcommands, or to None for a command.
Tree = dict[str, "Tree | None"]
_NAME = re.compile(r"[a-z][a-z0-9-]*")
_CELL = re.compile(r"(?<!\\)\|")  # a cell border, not an escaped `\|` inside a cell


def help_tree() -> Tree:
    """Every command `--help` lists, walking each group's own list (hidden ones aside)."""

    def walk(command: Any) -> Tree | None:
        if not hasattr(command, "list_commands"):
            return None
        ctx = command.make_context(command.name, [], resilient_parsing=True)
        children = (command.get_command(ctx, name) for name in command.list_commands(ctx))
        return {c.name: walk(c) for c in children if c is not None and not c.hidden}

    tree = walk(typer.main.get_command(app))
    assert tree is not None
    return tree


def commands(tree: Tree, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """The paths of every runnable command (not the groups) in `tree`."""
    found = set()
    for name, sub in tree.items():
        found |= {(*prefix, name)} if sub is None else commands(sub, (*prefix, name))
    return found


def table_spans(readme: str) -> list[str]:
    """The code spans of the first column of the table under `## Commands`, `\\|` unescaped."""
    section = readme.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [
        span.replace("\\|", "|")
        for row in rows
        for span in re.findall(r"`([^`]*)`", _CELL.split(row)[1])
    ]


def documented(spans: list[str], tree: Tree) -> tuple[set[tuple[str, ...]], list[str]]:
    """The commands the spans name, and what they name that `tree` lacks.

    A span is `[resywatch] group sub|sub [args]...`: the words after a group must be its
    subcommands; after a command, words naming its siblings are alternatives
    (`login|status|logout`) and any other word is an argument (`run JOB|due`)."""
    named: set[tuple[str, ...]] = set()
    unknown = []
    for span in spans:
        group, path, expect = tree, (), True  # expect: the next word must be a subcommand
        words = re.split(r"[\s\[\]|\"]+", span.strip())
        for word in words[1:] if words[0] == "resywatch" else words:
            if not _NAME.fullmatch(word):
                continue  # an option, a placeholder (QUERY, N, ...), a value (30s)
            if word not in group:
                if expect:
                    unknown.append(" ".join((*path, word)) + f"  (in `{span}`)")
                    break
                continue
            sub = group[word]
            if sub is None:
                named.add((*path, word))
                expect = False
            else:
                group, path, expect = sub, (*path, word), True
    return named, unknown


def test_readme_command_table_matches_help() -> None:
    tree = help_tree()
    named, unknown = documented(table_spans(README.read_text(encoding="utf-8")), tree)
    missing = sorted(" ".join(path) for path in commands(tree) - named)
    assert {
        "in --help, not in README's table": missing,
        "in README's table, not in --help": unknown,
    } == {
        "in --help, not in README's table": [],
        "in README's table, not in --help": [],
    }


def test_help_tree_walks_every_group() -> None:
    tree = help_tree()
    assert {"book", "run", "health"} <= set(tree)
    book = tree["book"]
    assert book is not None and book["schedule"] == {"add": None, "list": None, "cancel": None}


# The checker itself, on a small tree and table.

TREE: Tree = {
    "auth": {"login": None, "status": None, "logout": None},
    "run": None,
    "admin": {"clear": None, "logs": None},
}


def test_alternatives_and_arguments_are_read_as_such() -> None:
    spans = ["resywatch auth login|status", "resywatch run JOB|due --every 30s", "admin clear"]
    named, unknown = documented(spans, TREE)
    assert unknown == []
    assert commands(TREE) - named == {("auth", "logout"), ("admin", "logs")}


def test_a_command_help_lacks_is_reported() -> None:
    spans = ["resywatch auth login", "resywatch deploy now", "resywatch admin vacuum"]
    named, unknown = documented(spans, TREE)
    assert named == {("auth", "login")}
    assert unknown == [
        "deploy  (in `resywatch deploy now`)",
        "admin vacuum  (in `resywatch admin vacuum`)",
    ]


def test_the_table_is_read_from_the_commands_section() -> None:
    readme = (
        "# x\n\n## Commands\n\n| command | what |\n|---|---|\n"
        "| `resywatch auth login\\|logout` | a `resywatch run` aside |\n"
        "| `resywatch run`, `admin clear` | y |\n\n## Settings\n\n| `resywatch admin logs` | z |\n"
    )
    assert table_spans(readme) == ["resywatch auth login|logout", "resywatch run", "admin clear"]
