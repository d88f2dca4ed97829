"""`resywatch demo` on a fresh install: it shows drops and exits 0 by itself."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path


def test_demo_shows_drops_and_exits_by_itself(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "resywatch", "demo", "--seconds", "8", "--speed", "300", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["passes"] >= 2
    assert result["drops_opened"] > 0 and result["drops"]
    assert result["health"] == "OK"
    assert time.monotonic() - started < 60
    # It touched nothing of the user's: its database is a temporary one.
    assert not (tmp_path / ".local" / "share" / "resywatch").exists()
