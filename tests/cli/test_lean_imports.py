"""What a process that talks to Resy does not import (issue 19): httpx's own command-line
client (rich, pygments, click's parts: 4 MB resident in run-forever for nothing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.imported import run_counting_imports


def test_a_pass_with_the_resy_client_leaves_httpxs_command_line_out(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESYWATCH_")}
    env |= {
        "RESYWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'resywatch.db'}",
        "RESYWATCH_CONFIG": str(tmp_path / "absent.toml"),
        "RESYWATCH_RESY_API_KEY": "k",
    }
    resywatch = [sys.executable, "-m", "resywatch"]
    subprocess.run([*resywatch, "admin", "migrate"], env=env, check=True, capture_output=True)
    # Retention makes no request, but `run` builds the Resy client (httpx) for any job.
    answer, imported = run_counting_imports(env, "run", "retention", "--json")
    assert answer["passes"][0]["status"] == "ok"
    assert {"httpx", "resywatch.resy.client"} <= imported  # the client was built...
    assert not {"pygments", "rich.syntax", "rich.progress"} & imported  # ...not httpx's CLI
