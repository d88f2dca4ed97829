"""How the package's modules hold together, read from their source (nothing is imported):
no import cycle at import time (a lazy import inside a function is how a cycle hides, so
the modules that once needed one must not); and the size rules of issue 14 (a module at
most 600 lines, a function at most 80, at most 10 parameters) on the modules that meet
them now, so they keep meeting them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import resywatch

ROOT = Path(resywatch.__file__).parent
PACKAGE = "resywatch"
MAX_MODULE_LINES, MAX_FUNCTION_LINES, MAX_PARAMETERS = 600, 80, 10
# The modules held to the size rules and to top-level imports only (the rest of the package
# joins as it is split).
HELD = ("services/discovery/*.py", "services/venues.py", "services/health.py")


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def held() -> list[Path]:
    return sorted({path for pattern in HELD for path in ROOT.glob(pattern)})


def _is_type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements run when the module is imported (inside if/try, not TYPE_CHECKING)."""
    for node in body:
        if _is_type_checking(node):
            continue
        yield node
        if isinstance(node, ast.If | ast.Try):
            for block in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, block, []):
                    yield from _top_level(
                        child.body if isinstance(child, ast.ExceptHandler) else [child]
                    )


def _targets(node: ast.stmt, module: str, known: dict[str, Path]) -> Iterator[str]:
    """The package's modules an import statement loads."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".")[: len(module.split(".")) - node.level]
            source = ".".join([*base, *([node.module] if node.module else [])])
        else:
            source = node.module or ""
        # `from pkg import mod` loads pkg.mod; `from mod import name` loads mod.
        names = [
            f"{source}.{a.name}" if f"{source}.{a.name}" in known else source for a in node.names
        ]
    else:
        return
    yield from (name for name in names if name in known)


def import_time_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {}
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[module] = {
            target
            for node in _top_level(tree.body)
            for target in _targets(node, module, known)
            if target != module
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, done, stack = [], set(), []

    def visit(module: str) -> None:
        if module in stack:
            found.append([*stack[stack.index(module) :], module])
            return
        if module in done:
            return
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            visit(target)
        stack.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
    return found


def test_no_import_cycle_at_import_time() -> None:
    assert cycles(import_time_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_the_outbox_imports_nothing_of_discovery() -> None:
    """Discovery imports the outbox at the top; the outbox importing discovery back, even
    lazily, would make that a cycle."""
    tree = ast.parse((ROOT / "services/outbox.py").read_text(encoding="utf-8"))
    imported = [
        target
        for node in ast.walk(tree)
        if isinstance(node, ast.stmt)
        for target in _targets(node, "resywatch.services.outbox", modules())
    ]
    assert imported and not [m for m in imported if ".discovery" in m]


def test_held_modules_import_the_package_at_the_top_only() -> None:
    lazy = []
    for path in held():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom) and PACKAGE in ast.unparse(node):
                    lazy.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert lazy == []


def test_held_modules_keep_the_size_rules() -> None:
    over = []
    for path in held():
        source = path.read_text(encoding="utf-8")
        where = path.relative_to(ROOT)
        if (lines := len(source.splitlines())) > MAX_MODULE_LINES:
            over.append(f"{where}: {lines} lines")
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                over.append(f"{where}:{node.lineno} {node.name}: {length} lines")
            a = node.args
            count = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs)
            count += bool(a.vararg) + bool(a.kwarg)
            count -= bool(a.args) and a.args[0].arg in ("self", "cls")
            if count > MAX_PARAMETERS:
                over.append(f"{where}:{node.lineno} {node.name}: {count} parameters")
    assert over == []
