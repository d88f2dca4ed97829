"""How the package's modules hold together, read from their source (nothing is imported):
no import cycle at import time (a lazy import inside a function is how a cycle hides, so
the modules that once needed one must not); and the size rules of issue 14 over the whole
package: a module at most 600 lines, a function at most 80, at most 10 parameters.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import resywatch

ROOT = Path(resywatch.__file__).parent
PACKAGE = "resywatch"
MAX_MODULE_LINES, MAX_FUNCTION_LINES, MAX_PARAMETERS = 600, 80, 10
# The modules held to top-level imports only (the CLI imports services lazily on purpose,
# so that `--help` stays fast).
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


def _parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    args = function.args
    names = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    count = len(names) + bool(args.vararg) + bool(args.kwarg)
    return count - bool(names and names[0].arg in ("self", "cls"))


def shape_violations(root: Path) -> list[str]:
    """Every module, function and parameter list under `root` over the size rules (Typer
    commands aside: their options are their interface)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        where = path.relative_to(root.parent)
        if (lines := len(source.splitlines())) > MAX_MODULE_LINES:
            found.append(f"{where}: {lines} lines (at most {MAX_MODULE_LINES})")
        command = "cli" in path.relative_to(root).parts
        for node in ast.walk(ast.parse(source, str(path))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{where}:{node.lineno}: {node.name} is {length} lines")
            if not command and (count := _parameters(node)) > MAX_PARAMETERS:
                found.append(f"{where}:{node.lineno}: {node.name} takes {count}")
    return found


def test_every_module_keeps_the_size_rules() -> None:
    assert shape_violations(ROOT) == []


def test_the_size_rules_catch_what_they_describe(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    body = "\n".join(f"    x{n} = {n}" for n in range(MAX_FUNCTION_LINES))
    params = ", ".join(f"p{n}" for n in range(MAX_PARAMETERS + 1))
    (package / "big.py").write_text(
        f"def long():\n{body}\n\n\ndef wide({params}):\n    pass\n" + "\n" * MAX_MODULE_LINES
    )
    (package / "fine.py").write_text("class A:\n    def m(self, a, b):\n        return a\n")
    found = shape_violations(package)
    assert [f.split(": ", 1)[1] for f in found] == [
        f"{MAX_MODULE_LINES + MAX_FUNCTION_LINES + 5} lines (at most {MAX_MODULE_LINES})",
        f"long is {MAX_FUNCTION_LINES + 1} lines",
        f"wide takes {MAX_PARAMETERS + 1}",
    ]
