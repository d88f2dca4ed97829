"""`discover explain` and `discover buckets --show` after real discovery passes against the
sandbox over loopback: a slot in the baseline, one that just opened, one that closed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sandbox_tools import ClosedSlot, live_config, run_json

from resywatch.config import load_settings
from resywatch.sandbox import SandboxConfig, SandboxHandle
from resywatch.services.vocabulary import local_today


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return live_config()


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env | {"RESYWATCH_DISCOVERY_DAYS": "2"}


def test_explain_tells_baseline_just_opened_and_closed_apart(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    settings = load_settings(environ=env)
    tomorrow = local_today(datetime.now(UTC), settings.timezone) + timedelta(days=1)
    bucket = f"{tomorrow}_19:00"
    assert run_json(cli, "discover", "scan", env=env)["buckets_baselined"] == 4

    opened = ClosedSlot(sandbox, tomorrow, settings)
    closed = ClosedSlot(sandbox, tomorrow, settings, skip=frozenset({opened.venue.id}))
    opened.change(+1)
    closed.change(+1)
    assert run_json(cli, "discover", "scan", env=env)["drops_opened"] == 2
    closed.change(-1)
    assert run_json(cli, "discover", "scan", env=env)["drops_closed"] == 1

    shown = run_json(cli, "discover", "buckets", "--show", bucket, env=env)
    assert shown["bucket"]["id"] == bucket and shown["baseline"]
    last_scan = {s["slot_id"] for s in shown["last_scan"]}
    assert opened.slot_id in last_scan and closed.slot_id not in last_scan
    baseline_slot = next(s for s in shown["baseline"] if s["in_last_scan"])
    assert opened.slot_id not in {s["slot_id"] for s in shown["baseline"]}

    feed = run_json(cli, "discover", "feed", env=env)["drops"]
    assert {d["slot_id"] for d in feed} == {opened.slot_id, closed.slot_id}

    just = run_json(cli, "discover", "explain", opened.slot_id, env=env)
    assert just["verdict"] == "open_drop" and just["in_feed"] is True
    assert just["first_seen_in_baseline"] is False and bucket in just["covering_buckets"]
    assert just["venue_id"] == opened.venue.id and just["drops"][0]["open"] is True

    gone = run_json(cli, "discover", "explain", closed.slot_id, env=env)
    assert gone["verdict"] == "closed_drop" and gone["drops"][0]["closed_at"].endswith("Z")

    base = run_json(cli, "discover", "explain", baseline_slot["slot_id"], env=env)
    assert base["verdict"] == "baseline" and base["in_feed"] is False
    assert base["first_seen_in_baseline"] is True

    by_parts = run_json(
        cli, "discover", "explain", "--venue", str(opened.venue.id), "--date", str(tomorrow),
        "--time", opened.slot.time[:5], env=env,
    )  # fmt: skip
    assert by_parts["slot_id"] == opened.slot_id and by_parts["verdict"] == "open_drop"

    piped = cli("discover", "explain", closed.slot_id, env=env).stdout
    assert "verdict:" in piped and "closed_drop" in piped and "when\twhat" in piped
    table = cli("discover", "buckets", "--show", bucket, env=env).stdout
    assert "slot\tvenue\ttime\toffered\tbaseline\tlast scan\tfirst seen" in table

    missing = cli("discover", "explain", "0" * 32, "--json", env=env, expect=3)
    assert json.loads(missing.stdout)["error"]["code"] == "not_found"
    venue = ["explain", "--venue", str(opened.venue.id)]
    for bad in (["explain"], ["explain", "xyz"], venue, ["buckets", "--show", "soon"],
                [*venue, "--date", "2026-13-01", "--time", "19:00"],
                [*venue, "--date", str(tomorrow), "--time", "25:00"],
                ["explain", opened.slot_id, "--venue", "1"]):  # fmt: skip
        cli("discover", *bad, "--json", env=env, expect=2)
    cli("discover", "buckets", "--show", "2020-01-01_19:00", env=env, expect=3)
