"""How long `resywatch --help` takes, against the cost of importing Typer alone.

Both are timed as fresh processes, interleaved, the same number of times; the figure that
counts is the ratio of the medians (target: <= 1.5). Prints one JSON object as its last line.
Usage: python bench/startup.py [--runs 21]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def wall_time(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def resywatch_command() -> list[str]:
    script = Path(sys.executable).with_name("resywatch")
    found = script if script.exists() else shutil.which("resywatch")
    return [str(found), "--help"] if found else [sys.executable, "-m", "resywatch", "--help"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    runs = parser.parse_args().runs

    help_command = resywatch_command()
    typer_command = [sys.executable, "-c", "import typer"]
    wall_time(help_command), wall_time(typer_command)  # warm the OS file cache
    help_times, typer_times = [], []
    for _ in range(runs):
        help_times.append(wall_time(help_command))
        typer_times.append(wall_time(typer_command))

    help_median, typer_median = statistics.median(help_times), statistics.median(typer_times)
    print(
        json.dumps(
            {
                "benchmark": "startup",
                "runs": runs,
                "help_median_s": round(help_median, 4),
                "import_typer_median_s": round(typer_median, 4),
                "ratio": round(help_median / typer_median, 3),
                "target_ratio": 1.5,
                "met": help_median / typer_median <= 1.5,
            }
        )
    )


if __name__ == "__main__":
    main()
