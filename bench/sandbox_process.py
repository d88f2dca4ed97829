"""Shared by the benchmarks: the sandbox in a process of its own, on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_sandbox(port: int, *, speed: float) -> subprocess.Popen[bytes]:
    """`resywatch sandbox serve` with its control routes, once it answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "resywatch", "sandbox", "serve", "--port", str(port),
         "--speed", str(speed), "--control"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith("RESYWATCH_")},
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/__sandbox/time", timeout=1).raise_for_status()
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the sandbox did not start")
