"""A `resywatch` command in a process of its own, and the modules it imported."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def run_counting_imports(env: dict[str, str], *args: str) -> tuple[Any, set[str]]:
    """`python -X importtime -m resywatch ARGS`: its JSON answer and the modules imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "resywatch", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    imported = {
        line.split("|")[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    return json.loads(done.stdout), imported
