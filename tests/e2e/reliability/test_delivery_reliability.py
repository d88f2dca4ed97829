"""Goal 6: notifications at least once, deduplicated, with real relay processes.

1,000 outbox rows, two `resywatch notify deliver --loop` processes, and a webhook sink on
127.0.0.1 that answers 500 to the first 3 attempts of each notification. Every row must end
`sent`, the sink must accept each one exactly once, and no attempt may be spent twice.

Then the same with a crash: the sink holds one accepted delivery open, the relay that sent it
is killed with SIGKILL before it can record the send, and the other relay must finish
everything. The one send that was never recorded comes again (at least once), and it is the
only duplicate, recognisable by its dedupe key (and Idempotency-Key header).

The killed relay's batch is not waited out for its claim lease (at least 120 s): a relay
killed on the same machine is noticed at once. On SQLite and PostgreSQL. Every wait has a
deadline; the sink listens on loopback only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from outbox_tools import add_notifications, outbox
from sqlalchemy import func
from sqlmodel import select

from resywatch.db.engine import Database
from resywatch.db.leases import host_label
from resywatch.db.models import Notification

COUNT = 1000
FAIL_FIRST = 3  # the sink refuses the first 3 attempts of every notification
KILL_AFTER = COUNT // 3  # accepted deliveries before the sink sets its trap
PRODUCT_LEASE_S = 120.0  # the relays' claim lease (DeliveryPolicy.from_settings), at least
# How long a run may take before the test gives up waiting (a deadline, not a figure under
# test): about 30 s on a quiet 2-core box, but several times that beside other busy tests.
LIMIT_S = 240.0


@dataclass(frozen=True)
class Accepted:
    key: str  # the document's dedupe_key
    idempotency_key: str | None  # the header
    notification_id: int


class Sink:
    """A webhook receiver on a free loopback port. Counts every attempt by dedupe key and
    answers 500 to the first `fail_first` of each; records every accepted document.

    With `trap_after`, the first delivery accepted after that many is recorded and then held
    open (no answer) until `release()`: the test kills its sender meanwhile, which is a
    crash after the send and before the relay records it."""

    def __init__(self, *, fail_first: int, trap_after: int | None = None) -> None:
        self.fail_first = fail_first
        self.trap_after = trap_after
        self.attempts: Counter[str] = Counter()
        self.accepted: list[Accepted] = []
        self.trapped: tuple[str, int] | None = None  # (dedupe key, sender's port)
        self.trap_hit = threading.Event()
        self._release = threading.Event()
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                document = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = str(document["dedupe_key"])
                hold = False
                with sink.lock:
                    sink.attempts[key] += 1
                    ok = sink.attempts[key] > sink.fail_first
                    if ok:
                        accepted = Accepted(
                            key, self.headers.get("Idempotency-Key"), document["id"]
                        )
                        sink.accepted.append(accepted)
                        trap = sink.trap_after
                        if trap is not None and sink.trapped is None and len(sink.accepted) > trap:
                            sink.trapped = (key, self.client_address[1])
                            hold = True
                if hold:
                    sink.trap_hit.set()
                    sink._release.wait(timeout=600)
                try:
                    self.send_response(200 if ok else 500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the sender was killed while the trap held its request
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def release(self) -> None:
        self._release.set()

    def accepted_per_key(self) -> Counter[str]:
        with self.lock:
            return Counter(a.key for a in self.accepted)

    def snapshot(self) -> tuple[Counter[str], list[Accepted]]:
        with self.lock:
            return Counter(self.attempts), list(self.accepted)


@pytest.fixture
def make_sink() -> Iterator[Callable[..., Sink]]:
    sinks: list[Sink] = []

    def make(**options: Any) -> Sink:
        sink = Sink(**options)
        sink.thread.start()
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.release()
        sink.server.shutdown()
        sink.server.server_close()


def statuses(db: Database) -> Counter[str]:
    """How many rows have each status: counted by the database, not by loading 1,000 rows
    into the process that also runs the sink (the poll runs ten times a second)."""
    with db.read() as session:
        rows = session.exec(select(Notification.status, func.count()).group_by(Notification.status))
        return Counter({str(status): int(n) for status, n in rows})


@dataclass
class Relay:
    name: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def output(self) -> tuple[str, str]:
        return self.stdout.read_text(), self.stderr.read_text()


def start_relay(name: str, env: dict[str, str], logs: Path, deadline_s: float) -> Relay:
    """`resywatch notify deliver --loop` as its own process. `--for` stops it even if the
    test is gone."""
    args = ["notify", "deliver", "--loop", "--interval", "0.1", "--for", f"{deadline_s:g}"]
    stdout, stderr = logs / f"{name}.out", logs / f"{name}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "resywatch", *args, "--json"], env=env, stdout=out, stderr=err
        )
    return Relay(name, process, stdout, stderr)


@pytest.fixture
def relays() -> Iterator[list[Relay]]:
    """Started relays; any still running when the test ends is killed."""
    started: list[Relay] = []
    yield started
    for relay in started:
        if relay.process.poll() is None:
            relay.process.kill()
            relay.process.wait(timeout=10)


def relay_env(database_url: str, sink: Sink) -> dict[str, str]:
    env = dict(os.environ)  # RESYWATCH_* already scrubbed by the clean_environment fixture
    env.update(
        RESYWATCH_DATABASE_URL=database_url,
        RESYWATCH_NOTIFY_URLS=sink.url(),
        RESYWATCH_NOTIFY_RETRY_BASE_S="0.05",  # 3 retries in well under a second
        RESYWATCH_NOTIFY_RETRY_MAX_S="0.2",
        RESYWATCH_NOTIFY_TIMEOUT_S="10",
    )
    return env


def wait_until(done: Callable[[], bool], deadline: float, what: str) -> None:
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def stop(relay: Relay, timeout: float = 30) -> dict[str, Any]:
    """SIGTERM (the relay finishes the send in hand and releases its batch); its report."""
    relay.process.send_signal(signal.SIGTERM)
    code = relay.process.wait(timeout=timeout)
    out, err = relay.output()
    assert code == 0, f"{relay.name} exited {code}\n{err}"
    assert "Traceback" not in err, err
    report: dict[str, Any] = json.loads(out)
    return report


def sender_pid(client_port: int, server_port: int, pids: Iterable[int]) -> int | None:
    """Which of `pids` owns the loopback TCP connection from `client_port` (Linux /proc)."""
    sockets: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote = fields[1].rsplit(":", 1)[1], fields[2].rsplit(":", 1)[1]
            if int(local, 16) == client_port and int(remote, 16) == server_port:
                sockets.add(f"socket:[{fields[9]}]")
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) in sockets:
                    return pid
            except OSError:
                continue
    return None


def test_two_relays_deliver_1000_notifications_once_through_a_flaky_sink(
    db: Database,
    database_url: str,
    make_sink: Callable[..., Sink],
    relays: list[Relay],
    tmp_path: Path,
    figures: Any,
) -> None:
    sink = make_sink(fail_first=FAIL_FIRST)
    keys = add_notifications(db, COUNT, datetime.now(UTC))  # relays run on the real clock
    env = relay_env(database_url, sink)
    limit = LIMIT_S
    started = time.monotonic()
    for name in ("relay-a", "relay-b"):
        relays.append(start_relay(name, env, tmp_path, limit))
    wait_until(
        lambda: len(sink.accepted_per_key()) == COUNT and statuses(db) == {"sent": COUNT},
        started + limit,
        "every notification to be sent",
    )
    seconds = time.monotonic() - started
    reports = [stop(relay) for relay in relays]

    attempts, accepted = sink.snapshot()
    per_key = Counter(a.key for a in accepted)
    duplicates = sum(n - 1 for n in per_key.values())
    figures.report(
        "6: 1,000 notifications, 2 relays, sink failing 3 times",
        delivered=len(per_key),
        duplicates=duplicates,
        attempts=sum(attempts.values()),
        seconds=round(seconds, 1),
        sent_by_relay=[r["sent"] for r in reports],
    )
    assert per_key == Counter({key: 1 for key in keys})  # all delivered, none twice
    assert set(attempts.values()) == {FAIL_FIRST + 1}  # 3 refusals, 1 success, nothing more
    assert all(a.idempotency_key == a.key for a in accepted)
    rows = outbox(db)
    assert {(n.status, n.attempts) for n in rows.values()} == {("sent", FAIL_FIRST + 1)}
    assert all(n.claimed_by is None and n.sent_at is not None for n in rows.values())
    assert sum(r["sent"] for r in reports) == COUNT
    assert all(r["failed"] == 0 for r in reports)
    assert all(r["sent"] > 0 for r in reports), reports  # both relays took part


@pytest.mark.timed  # the survivor's recovery is judged on the clock (lease / 4)
def test_a_relay_killed_after_a_send_leaves_one_recognisable_duplicate(
    db: Database,
    database_url: str,
    make_sink: Callable[..., Sink],
    relays: list[Relay],
    tmp_path: Path,
    figures: Any,
) -> None:
    if not Path("/proc/net/tcp").exists():
        pytest.skip("finding the sender of a connection needs Linux /proc")
    sink = make_sink(fail_first=FAIL_FIRST, trap_after=KILL_AFTER)
    keys = add_notifications(db, COUNT, datetime.now(UTC))  # relays run on the real clock
    env = relay_env(database_url, sink)
    limit = LIMIT_S
    started = time.monotonic()
    for name in ("relay-a", "relay-b"):
        relays.append(start_relay(name, env, tmp_path, limit))

    # The trap holds one accepted delivery open: kill -9 the relay that sent it.
    assert sink.trap_hit.wait(timeout=LIMIT_S), "the sink's trap never caught a delivery"
    assert sink.trapped is not None
    trapped_key, port = sink.trapped
    by_pid = {relay.process.pid: relay for relay in relays}
    pid = sender_pid(port, sink.port, by_pid)
    assert pid is not None, "no relay owns the trapped connection"
    victim = by_pid[pid]
    victim.process.kill()
    assert victim.process.wait(timeout=10) == -signal.SIGKILL
    killed_at = time.monotonic()
    sink.release()
    # Its batch is still leased to it, but it is dead: the survivor takes it at once.
    token_prefix = f"{host_label()}:{pid}:"
    held = sum(1 for n in outbox(db).values() if (n.claimed_by or "").startswith(token_prefix))
    [survivor] = [relay for relay in relays if relay is not victim]

    wait_until(
        lambda: statuses(db) == {"sent": COUNT},
        started + limit,
        "the surviving relay to send everything",
    )
    done = time.monotonic()
    report = stop(survivor)
    assert "Traceback" not in victim.output()[1]

    attempts, accepted = sink.snapshot()
    per_key = Counter(a.key for a in accepted)
    doubled = {key: n for key, n in per_key.items() if n > 1}
    duplicates = sum(n - 1 for n in doubled.values())
    kills = 1
    figures.report(
        "6: kill -9 of a relay between send and record",
        delivered=len(per_key),
        duplicates=duplicates,
        kills=kills,
        attempts=sum(attempts.values()),
        seconds=round(done - started, 1),
        recovered_after_kill_s=round(done - killed_at, 1),
        lease_s=PRODUCT_LEASE_S,
        rows_held_by_killed_relay=held,
        survivor_sent=report["sent"],
    )
    assert held >= 1  # at least the trapped notification
    assert done - killed_at < PRODUCT_LEASE_S / 4  # its rows were not waited out
    assert set(per_key) == set(keys)  # nothing lost
    assert duplicates <= kills
    # The unrecorded send came again (at least once), and it is the only duplicate.
    assert doubled == {trapped_key: 2}
    copies = [a for a in accepted if a.key == trapped_key]
    assert all(a.idempotency_key == trapped_key for a in copies)  # recognisable by its key
    assert len({a.notification_id for a in copies}) == 1
    rows = outbox(db)
    assert all(n.status == "sent" and n.claimed_by is None for n in rows.values())
    # The killed send was never recorded: the sink saw one attempt more than the outbox.
    assert rows[trapped_key].attempts == FAIL_FIRST + 1
    assert attempts[trapped_key] == FAIL_FIRST + 2
    assert report["failed"] == 0
