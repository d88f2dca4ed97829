"""The import rules of ARCHITECTURE.md §1, read from every module's source (no import is
run): `cli → scheduler → services → runtime → resy | db`, with the shared base (`config`,
`accounts`, `errors`, `redact`, `ids`, `data`, `clock`, `tls`) below them all; the sandbox
beside `resy`, importing none of it; the demo (sandbox + scheduler + services) beside the CLI. Every
import counts: at the top, inside a function, or under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import resywatch

PACKAGE = "resywatch"
# Small modules every layer may use; each imports only from this set ("": the package itself).
BASE = frozenset({"", "config", "accounts", "errors", "redact", "ids", "data", "clock", "tls"})
# What each part of the package may import, besides itself and the base.
ALLOWED: dict[str, frozenset[str]] = {
    "__main__": frozenset({"cli"}),
    "cli": frozenset({"demo", "scheduler", "services", "runtime", "resy", "db", "sandbox"}),
    "demo": frozenset({"sandbox", "scheduler", "services", "runtime", "resy", "db"}),
    "scheduler": frozenset({"services", "runtime", "resy", "db"}),
    "services": frozenset({"runtime", "resy", "db"}),
    # The object every service is handed: settings, database, Resy client, clock, worker.
    "runtime": frozenset({"resy", "db"}),
    "resy": frozenset(),
    "db": frozenset(),
    "sandbox": frozenset(),
    **{base: frozenset() for base in BASE},
}


def layer_violations(root: Path, package: str = PACKAGE) -> list[str]:
    """Every import in the package at `root` that its layer may not make, as
    `file:line: importer imports target (layer -> layer)`, and every part of the package
    that belongs to no layer."""
    found = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(root, path, package)
        layer = _layer(module)
        relative = path.relative_to(root.parent)
        if layer not in ALLOWED:
            found.append(f"{relative}:1: {module} belongs to no layer: add {layer!r} to ALLOWED")
            continue
        # One line per imported module (`from x import a, b` names x once).
        for line, target in dict.fromkeys(_imports(path, module, root, package)):
            to = _layer(target)
            if to != layer and to not in BASE | ALLOWED[layer]:
                found.append(f"{relative}:{line}: {module} imports {target} ({layer} -> {to})")
    return found


def _module_name(root: Path, path: Path, package: str) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str:
    """`resywatch.services.health` -> services; `resywatch` -> "" (the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path, module: str, root: Path, package: str) -> Iterator[tuple[int, str]]:
    """Each module of the package that `path` imports, with the line; anywhere in the file."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == package or alias.name.startswith(package + "."):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the importer's package, up level - 1
                base = module.split(".")[: None if is_package else -1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            if source != package and not source.startswith(package + "."):
                continue
            for alias in node.names:
                # `from resywatch import services` imports the module resywatch.services.
                sub = f"{source}.{alias.name}"
                yield node.lineno, sub if _is_module(root, sub) else source


def _is_module(root: Path, module: str) -> bool:
    path = root.joinpath(*module.split(".")[1:])
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_every_import_points_down_the_layers() -> None:
    root = Path(resywatch.__file__).parent
    assert layer_violations(root) == []


# The checker itself, on a small package that breaks each rule once.


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(root).parents:
            (root / parent / "__init__.py").touch()
        path.write_text(text)
    return root


def test_the_checker_names_each_offending_import_with_file_and_line(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "services/health.py": (
                "from pkg.db import engine\n"
                "from pkg.scheduler.jobs import JOBS\n"
                "def f():\n"
                "    import pkg.cli.app\n"  # inside a function still counts
            ),
            "services/demo.py": "from pkg.sandbox import A, B\n",
            "sandbox/state.py": "from ..resy import models\n",  # relative
            "resy/client.py": "from pkg.config import Settings\nfrom pkg.services import x\n",
            "db/models.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from pkg.scheduler import lease\n",
            "scheduler/jobs.py": "from pkg.services.health import JobSchedule\n",  # allowed
            "cli/app.py": "import pkg.demo\nfrom pkg import __version__\n",  # allowed
            "extra.py": "",
        },
    )
    assert layer_violations(root, "pkg") == [
        "pkg/db/models.py:3: pkg.db.models imports pkg.scheduler (db -> scheduler)",
        "pkg/extra.py:1: pkg.extra belongs to no layer: add 'extra' to ALLOWED",
        "pkg/resy/client.py:2: pkg.resy.client imports pkg.services (resy -> services)",
        "pkg/sandbox/state.py:1: pkg.sandbox.state imports pkg.resy (sandbox -> resy)",
        "pkg/services/demo.py:1: pkg.services.demo imports pkg.sandbox (services -> sandbox)",
        "pkg/services/health.py:2: pkg.services.health imports pkg.scheduler.jobs "
        "(services -> scheduler)",
        "pkg/services/health.py:4: pkg.services.health imports pkg.cli.app (services -> cli)",
    ]


def test_the_base_may_not_import_a_layer_above_it(tmp_path: Path) -> None:
    root = _package(tmp_path, {"config.py": "from pkg.errors import E\nimport pkg.db.engine\n"})
    assert layer_violations(root, "pkg") == [
        "pkg/config.py:2: pkg.config imports pkg.db.engine (config -> db)"
    ]


# The Runtime and the clock: a service is handed both, it makes neither.

# Reading the wall clock itself (a service's time comes from the Clock it is handed).
WALL_CLOCK = frozenset({"datetime.now", "datetime.utcnow", "date.today", "utcnow", "time.time"})


def runtime_violations(services: Path) -> list[str]:
    """Every place under `services` that builds a `Runtime` (a service is handed the one
    its caller built: a new one would drop the caller's clock, worker and stop) or reads
    the wall clock instead of a `Clock`, as `file:line: what`."""
    found: list[tuple[Path, int, str]] = []
    for path in sorted(services.rglob("*.py")):
        relative = path.relative_to(services.parent)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            name = _dotted(node.func) if isinstance(node, ast.Call) else None
            if name is None:
                continue
            if name.split(".")[-1] == "Runtime":
                found.append((relative, node.lineno, "builds a Runtime"))
            elif ".".join(name.split(".")[-2:]) in WALL_CLOCK:
                found.append((relative, node.lineno, f"reads the wall clock ({name})"))
    return [f"{path}:{line}: {what}" for path, line, what in sorted(found)]


def _dotted(node: ast.expr) -> str | None:
    """`a.b.c` for a name or an attribute chain; None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def test_services_are_handed_the_runtime_and_the_clock() -> None:
    root = Path(resywatch.__file__).parent
    assert runtime_violations(root / "services") == []


def test_the_runtime_check_finds_a_service_building_its_own(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "services/watches.py": (
                "from datetime import UTC, datetime\n"
                "from pkg.runtime import Runtime\n"
                "async def check(settings, db, resy):\n"
                "    return await book(Runtime(settings, db, resy))\n"
                "def stamp():\n"
                "    return datetime.now(UTC)\n"
            ),
            "services/fine.py": "def stamp(rt):\n    return rt.clock.now()\n",
        },
    )
    assert runtime_violations(root / "services") == [
        "services/watches.py:4: builds a Runtime",
        "services/watches.py:6: reads the wall clock (datetime.now)",
    ]
