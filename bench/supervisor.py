"""Supervisor figures, each beside its baseline or target.

1. Memory: the resident set size of `resywatch run-forever` against the sandbox after
   1,000 fast passes (every job on a sub-second interval, a one-day window), and its growth
   over the last 500. Targets: <= 150 MB, growth <= 5 MB.
2. `resywatch health --json` wall time against `python -c "import sqlmodel"` (the cost of
   the libraries it must load), medians over the same number of runs. Target: <= 2x.

Prints one JSON object as its last line. Usage: python bench/supervisor.py [--passes 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from resywatch.sandbox import DEMO_API_KEY, DEMO_AUTH_TOKEN, SandboxConfig, run_in_thread


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def environment(base_url: str, database: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESYWATCH_")}
    env.update(
        RESYWATCH_DATABASE_URL=f"sqlite:///{database}",
        RESYWATCH_RESY_BASE_URL=base_url,
        RESYWATCH_RESY_API_KEY=DEMO_API_KEY,
        RESYWATCH_RESY_AUTH_TOKEN=DEMO_AUTH_TOKEN,
        RESYWATCH_RESY_MAX_RPS="10000",
        RESYWATCH_DISCOVERY_DAYS="1",
        RESYWATCH_DISCOVERY_TIME_SLOTS="19:00",
        RESYWATCH_DISCOVERY_PARTY_SIZES="2",
        RESYWATCH_DISCOVERY_INTERVAL_S="0.2",
        RESYWATCH_JOBS_WATCHES_INTERVAL_S="0.2",
        RESYWATCH_JOBS_NOTIFY_INTERVAL_S="0.2",
        RESYWATCH_JOBS_DELIVERY_INTERVAL_S="0.2",
        RESYWATCH_JOBS_SNIPES_INTERVAL_S="0.2",
        RESYWATCH_NOTIFY_URLS=f"ndjson://{database.parent / 'notifications.ndjson'}",
    )
    return env


def memory_figures(passes: int) -> dict[str, float | int | bool]:
    workdir = Path(tempfile.mkdtemp(prefix="rw-bench-"))
    config = SandboxConfig(speed=60.0, control_enabled=False)
    with run_in_thread(config) as sandbox:
        env = environment(sandbox.base_url, workdir / "bench.db")
        subprocess.run(
            [sys.executable, "-m", "resywatch", "admin", "migrate"], env=env, check=True,
            capture_output=True,
        )  # fmt: skip
        process = subprocess.Popen(
            [sys.executable, "-m", "resywatch", "run-forever", "--json-logs",
             "--max-passes", str(passes)],
            env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert process.stderr is not None
        samples: dict[int, float] = {}
        seen, failed = 0, 0
        for line in process.stderr:
            if not line.startswith("{"):
                continue
            seen += 1
            failed += json.loads(line)["status"] == "failed"
            if seen in (passes // 2, passes - 1):
                samples[seen] = rss_mb(process.pid)
        process.wait(timeout=60)
    half, last = samples[passes // 2], samples[passes - 1]
    return {
        "passes": seen,
        "failed_passes": failed,
        "rss_mb": round(last, 1),
        "rss_growth_last_half_mb": round(last - half, 1),
        "target_rss_mb": 150,
        "target_growth_mb": 5,
        "met": last <= 150 and last - half <= 5,
    }


def wall(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, capture_output=True, check=False)
    return time.perf_counter() - started


def health_figures(runs: int) -> dict[str, float | bool]:
    workdir = Path(tempfile.mkdtemp(prefix="rw-bench-"))
    with run_in_thread(SandboxConfig(control_enabled=False)) as sandbox:
        env = environment(sandbox.base_url, workdir / "health.db")
        for command in (["admin", "migrate"], ["run", "due"]):
            subprocess.run(
                [sys.executable, "-m", "resywatch", *command], env=env, check=True,
                capture_output=True,
            )  # fmt: skip
        health = [sys.executable, "-m", "resywatch", "health", "--json"]
        baseline = [sys.executable, "-c", "import sqlmodel"]
        wall(health, env), wall(baseline, env)  # warm the file cache
        health_times, baseline_times = [], []
        for _ in range(runs):
            health_times.append(wall(health, env))
            baseline_times.append(wall(baseline, env))
    median_health, median_base = statistics.median(health_times), statistics.median(baseline_times)
    return {
        "health_median_s": round(median_health, 3),
        "import_sqlmodel_median_s": round(median_base, 3),
        "ratio": round(median_health / median_base, 2),
        "target_ratio": 2.0,
        "met": median_health / median_base <= 2.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    result = {
        "benchmark": "supervisor",
        "memory": memory_figures(args.passes),
        "health": health_figures(args.runs),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
