"""Start-up costs of short commands, each against a bare import measured in the same run.

- `resywatch --help` against `python -c "import typer"` (target: <= 1.5);
- `resywatch run due --json` when nothing is due (what a crontab line every minute mostly
  runs) against `python -c "import sqlmodel"` (target: <= 1.3);
- `resywatch health --json` against `import sqlmodel` (target: <= 1.5), with Resy's
  acceptance of the token recorded 1 minute ago (what a monitor asking every minute
  mostly finds); `health --live --json`, which asks Resy, is printed beside it.

Every command runs as a fresh process, interleaved with the others, the same number of
times; the figures that count are the ratios of the medians, of wall time and of CPU time
(user + system: steadier on a shared machine). `run due` and `health` use a SQLite
database of their own whose jobs are all due in an hour, and a sandbox for the live call.
Prints one JSON object as its last line. Usage: python bench/startup.py [--runs 21]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sandbox_process import free_port, start_sandbox
from sqlalchemy import insert

from resywatch.db.engine import Database
from resywatch.db.migrate import upgrade
from resywatch.db.models import ApiCallLog, JobHeartbeat
from resywatch.sandbox import DEMO_API_KEY, DEMO_AUTH_TOKEN
from resywatch.scheduler.jobs import JOBS


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) time of one run of `command`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def resywatch_command(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("resywatch")
    found = script if script.exists() else shutil.which("resywatch")
    return [str(found), *args] if found else [sys.executable, "-m", "resywatch", *args]


def quiet_database() -> str:
    """A SQLite database where no job is due for an hour and Resy accepted the token a
    minute ago."""
    url = f"sqlite:///{tempfile.mkdtemp(prefix='rw-startup-')}/bench.db"
    db = Database(url)
    upgrade(db)
    now = datetime.now(UTC)
    with db.write() as session:
        for name in JOBS:
            values = {"job_name": name, "updated_at": now, "next_run_at": now + timedelta(hours=1)}
            session.execute(insert(JobHeartbeat.__table__).values(**values))  # type: ignore[attr-defined]
        session.add(
            ApiCallLog(
                at=now - timedelta(minutes=1),
                method="GET",
                endpoint="/2/user",
                status=200,
                latency_ms=50.0,
            )
        )
    db.dispose()
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    runs = parser.parse_args().runs

    port = free_port()
    sandbox = start_sandbox(port, speed=0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESYWATCH_")} | {
        "RESYWATCH_DATABASE_URL": quiet_database(),
        "RESYWATCH_RESY_BASE_URL": f"http://127.0.0.1:{port}",
        "RESYWATCH_RESY_API_KEY": DEMO_API_KEY,
        "RESYWATCH_RESY_AUTH_TOKEN": DEMO_AUTH_TOKEN,
    }
    commands = {
        "import_typer": [sys.executable, "-c", "import typer"],
        "import_sqlmodel": [sys.executable, "-c", "import sqlmodel"],
        "help": resywatch_command("--help"),
        "run_due_nothing_due": resywatch_command("run", "due", "--json"),
        "health_json": resywatch_command("health", "--json"),
        "health_live_json": resywatch_command("health", "--live", "--json"),
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    try:
        for command in commands.values():
            timed(command, env)  # warm the OS file cache
        for _ in range(runs):
            for name, command in commands.items():
                times[name].append(timed(command, env))
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)

    def median(name: str, kind: int) -> float:
        return statistics.median(t[kind] for t in times[name])

    result: dict[str, Any] = {"benchmark": "startup", "runs": runs}
    for name in commands:
        result[f"{name}_median_s"] = round(median(name, 0), 4)
        result[f"{name}_cpu_median_s"] = round(median(name, 1), 4)
    targets = {
        "help": ("import_typer", 1.5),
        "run_due_nothing_due": ("import_sqlmodel", 1.3),
        "health_json": ("import_sqlmodel", 1.5),
        "health_live_json": ("import_sqlmodel", None),
    }
    for name, (baseline, target) in targets.items():
        wall = median(name, 0) / median(baseline, 0)
        cpu = median(name, 1) / median(baseline, 1)
        result[f"{name}_vs_{baseline}"] = round(wall, 3)
        result[f"{name}_cpu_vs_{baseline}"] = round(cpu, 3)
        if target is not None:
            result[f"{name}_target"] = target
            result[f"{name}_met"] = wall <= target
            result[f"{name}_cpu_met"] = cpu <= target
    result["ratio"] = result["help_vs_import_typer"]  # the name earlier runs printed
    print(json.dumps(result))


if __name__ == "__main__":
    main()
