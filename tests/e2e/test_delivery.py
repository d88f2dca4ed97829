"""The outbox relay end to end: real HTTP to a sink on 127.0.0.1, on SQLite and PostgreSQL.

Time is an injected clock, so retries and leases are tested without waiting; every loop is
bounded by a fixed number of rounds.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import outbox_tools
import pytest
from hanging_hook import HangingHook
from outbox_tools import outbox
from sqlmodel import select
from typer.testing import CliRunner, Result

from resywatch.cli.app import app
from resywatch.clock import ManualClock
from resywatch.db.engine import Database
from resywatch.db.models import Notification, NotificationDelivery
from resywatch.services.channels.base import Channel, DeadlineMissed
from resywatch.services.channels.registry import Channels, build_channels
from resywatch.services.delivery import claims, records
from resywatch.services.delivery.policy import DeliveryPolicy, DeliveryReport
from resywatch.services.delivery.relay import deliver, run_loop

START = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)
SECRET = "s3cretT0kenABCDEFGH"  # in sink URLs: must never be printed or stored


class Sink:
    """A webhook receiver on a free loopback port. Records every attempt by dedupe key;
    fails on purpose: the first `fail_first` attempts of each key, every attempt for the
    keys in `always_fail`, and everything POSTed to /down (500) or /gone (404)."""

    def __init__(self, *, fail_first: int = 0, always_fail: frozenset[str] = frozenset()):
        self.fail_first = fail_first
        self.always_fail = always_fail
        self.attempts: Counter[str] = Counter()
        self.received: list[dict[str, Any]] = []  # accepted documents, in order
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                document = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = document["dedupe_key"]
                with sink.lock:
                    sink.attempts[key] += 1
                    status = 200
                    if self.path.startswith("/gone"):
                        status = 404
                    elif (
                        self.path.startswith("/down")
                        or key in sink.always_fail
                        or sink.attempts[key] <= sink.fail_first
                    ):
                        status = 500
                    else:
                        sink.received.append(document)
                        sink.headers.append(dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}{path}"

    def received_keys(self) -> Counter[str]:
        with self.lock:
            return Counter(d["dedupe_key"] for d in self.received)


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
        sink.server.shutdown()
        sink.server.server_close()


@pytest.fixture
def hanging() -> Iterator[Callable[..., HangingHook]]:
    """Webhooks that never answer (see hanging_hook), closed when the test ends."""
    hooks: list[HangingHook] = []

    def make(*args: Any, **options: Any) -> HangingHook:
        hooks.append(HangingHook(*args, **options))
        return hooks[-1]

    yield make
    for hook in hooks:
        hook.close()


@pytest.fixture
def open_channels() -> Iterator[Callable[[list[str]], list[Channel]]]:
    """build_channels, closed (their HTTP connections) when the test ends."""
    opened: list[Channels] = []

    def build(urls: list[str]) -> list[Channel]:
        opened.append(build_channels(urls, timeout_s=5))
        return opened[-1].items

    yield build
    for channels in opened:
        channels.close()


def add_notifications(db: Database, count: int, at: datetime = START, start: int = 0) -> list[str]:
    return outbox_tools.add_notifications(db, count, at, start)


def deliveries(db: Database) -> list[NotificationDelivery]:
    with db.read() as session:
        return list(session.exec(select(NotificationDelivery)))


def concurrently(*work: Callable[[], DeliveryReport]) -> list[DeliveryReport]:
    """Run relays in threads that start together; re-raise the first failure."""
    barrier = threading.Barrier(len(work))
    results: list[DeliveryReport | BaseException | None] = [None] * len(work)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = work[index]()
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [r for r in results if isinstance(r, DeliveryReport)]


def relay(
    database_url: str, urls: list[str], clock: ManualClock, policy: DeliveryPolicy, **options: Any
) -> Callable[[], DeliveryReport]:
    """One relay: its own engine and channels, as a separate process would have."""

    def run() -> DeliveryReport:
        db = Database(database_url)
        channels = build_channels(urls, timeout_s=5)
        try:
            return deliver(db, channels.items, policy=policy, clock=clock, **options)
        finally:
            channels.close()
            db.dispose()

    return run


# --- exactly once ----------------------------------------------------------------------------


def test_two_relays_at_once_send_each_notification_exactly_once(
    db: Database, database_url: str, make_sink: Callable[..., Sink]
) -> None:
    sink = make_sink()
    keys = add_notifications(db, 1000)
    clock, policy = ManualClock(START), DeliveryPolicy()
    reports = concurrently(
        relay(database_url, [sink.url()], clock, policy, batch_size=10, worker="relay-a"),
        relay(database_url, [sink.url()], clock, policy, batch_size=10, worker="relay-b"),
    )
    assert sink.received_keys() == Counter({key: 1 for key in keys})
    assert sum(sink.attempts.values()) == 1000  # not one extra send
    assert sum(r.sent for r in reports) == 1000
    assert all(r.sent > 0 and r.failed == r.retried == 0 for r in reports)
    state = outbox(db)
    assert {n.status for n in state.values()} == {"sent"}
    assert {n.attempts for n in state.values()} == {1}
    assert all(n.sent_at == START and n.claimed_by is None for n in state.values())
    assert len(deliveries(db)) == 1000


_RELAY_PROCESS = """
import json, sys
from resywatch.db.engine import Database
from resywatch.services.channels.registry import build_channels
from resywatch.services.delivery.relay import deliver
db = Database(sys.argv[1])
channels = build_channels([sys.argv[2]])
report = deliver(db, channels.items, batch_size=5)
channels.close()
sys.stdout.write(json.dumps({"sent": report.sent, "failed": report.failed}))
"""


def test_two_relay_processes_send_each_notification_exactly_once(
    db: Database, database_url: str, make_sink: Callable[..., Sink]
) -> None:
    sink = make_sink()
    keys = add_notifications(db, 400, at=datetime.now(UTC))
    command = [sys.executable, "-c", _RELAY_PROCESS, database_url, sink.url()]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE) for _ in range(2)]
    outputs = [json.loads(p.communicate(timeout=90)[0]) for p in processes]
    assert [p.returncode for p in processes] == [0, 0]
    assert sum(o["sent"] for o in outputs) == 400
    assert sink.received_keys() == Counter({key: 1 for key in keys})
    assert sum(sink.attempts.values()) == 400


def test_a_sink_failing_three_times_still_gets_each_notification_once_with_two_relays(
    db: Database, database_url: str, make_sink: Callable[..., Sink]
) -> None:
    sink = make_sink(fail_first=3)
    keys = add_notifications(db, 200)
    clock, policy = ManualClock(START), DeliveryPolicy(retry_base_s=10, retry_max_s=60)
    for _ in range(8):  # 4 rounds are needed; the clock jumps past the longest backoff
        concurrently(
            relay(database_url, [sink.url()], clock, policy, batch_size=7, worker="a"),
            relay(database_url, [sink.url()], clock, policy, batch_size=7, worker="b"),
        )
        if all(n.status == "sent" for n in outbox(db).values()):
            break
        clock.advance(policy.retry_max_s + 1)
    assert sink.received_keys() == Counter({key: 1 for key in keys})
    assert set(sink.attempts.values()) == {4}  # 3 failures, 1 success, nothing twice
    state = outbox(db)
    assert {(n.status, n.attempts) for n in state.values()} == {("sent", 4)}
    assert all("HTTP 500" in (n.last_error or "") for n in state.values())
    assert {(d.status, d.attempts) for d in deliveries(db)} == {("sent", 4)}


def test_retries_wait_for_the_backoff(
    db: Database,
    make_sink: Callable[..., Sink],
    open_channels: Callable[[list[str]], list[Channel]],
) -> None:
    sink = make_sink(fail_first=1)
    add_notifications(db, 3)
    clock, policy = ManualClock(START), DeliveryPolicy(retry_base_s=30, retry_max_s=600)
    channels = open_channels([sink.url()])

    first = deliver(db, channels, policy=policy, clock=clock)
    assert (first.sent, first.retried, first.failed) == (0, 3, 0)
    waits = [(n.next_attempt_at - START).total_seconds() for n in outbox(db).values()]
    assert all(15 <= wait <= 30 for wait in waits)  # base 30 s, jittered into [15, 30]

    clock.advance(14)
    assert deliver(db, channels, policy=policy, clock=clock).processed == 0
    clock.advance(17)
    assert deliver(db, channels, policy=policy, clock=clock).sent == 3
    assert sum(sink.attempts.values()) == 6


def test_a_channel_that_always_fails_gives_up_and_leaves_the_others_alone(
    db: Database,
    make_sink: Callable[..., Sink],
    tmp_path: Path,
    open_channels: Callable[[list[str]], list[Channel]],
) -> None:
    keys = add_notifications(db, 6)
    doomed = frozenset(keys[:2])
    sink = make_sink(always_fail=doomed)
    ndjson = tmp_path / "out" / "notifications.ndjson"
    channels = open_channels([sink.url(), f"ndjson://{ndjson}"])
    clock, policy = (
        ManualClock(START),
        DeliveryPolicy(max_attempts=4, retry_base_s=5, retry_max_s=20),
    )

    for _ in range(10):
        report = deliver(db, channels, policy=policy, clock=clock)
        if report.processed == 0 and clock.at > START + timedelta(minutes=5):
            break
        clock.advance(policy.retry_max_s + 1)

    state = outbox(db)
    for key in doomed:
        assert (state[key].status, state[key].attempts) == ("failed", 4)
        assert "HTTP 500" in (state[key].last_error or "")
        assert state[key].sent_at is None
        assert sink.attempts[key] == 4  # bounded: exactly max_attempts tries
    for key in keys[2:]:
        assert (state[key].status, state[key].attempts, state[key].last_error) == ("sent", 1, None)
    # The file channel had every notification once: failures on the webhook never re-sent it.
    lines = [json.loads(line) for line in ndjson.read_text().splitlines()]
    assert Counter(line["dedupe_key"] for line in lines) == Counter({key: 1 for key in keys})
    by_channel = {(d.notification_id, d.channel.split(":")[0]): d for d in deliveries(db)}
    for key in doomed:
        webhook = by_channel[(state[key].id, "json")]
        assert (webhook.status, webhook.attempts) == ("failed", 4)
        file = by_channel[(state[key].id, "ndjson")]
        assert (file.status, file.attempts) == ("sent", 1)


def test_a_permanent_refusal_fails_at_once(
    db: Database,
    make_sink: Callable[..., Sink],
    open_channels: Callable[[list[str]], list[Channel]],
) -> None:
    sink = make_sink()
    add_notifications(db, 2)
    report = deliver(db, open_channels([sink.url("/gone")]), clock=ManualClock(START))
    assert (report.failed, report.retried) == (2, 0)
    assert [p.status for p in report.problems] == ["failed", "failed"]
    for row in outbox(db).values():
        assert (row.status, row.attempts) == ("failed", 1)
        assert "HTTP 404" in (row.last_error or "")


def test_limit_and_batches(
    db: Database,
    make_sink: Callable[..., Sink],
    open_channels: Callable[[list[str]], list[Channel]],
) -> None:
    sink = make_sink()
    add_notifications(db, 25)
    channels = open_channels([sink.url()])
    report = deliver(db, channels, clock=ManualClock(START), limit=12, batch_size=5)
    assert (report.sent, report.batches) == (12, 3)
    assert deliver(db, channels, clock=ManualClock(START)).sent == 13
    # oldest first: the first run took the first 12 rows
    assert [d["dedupe_key"] for d in sink.received[:12]] == [f"drop:{i}" for i in range(12)]


# --- crashes and leases ----------------------------------------------------------------------


def test_a_crash_between_send_and_record_repeats_only_that_send(
    db: Database,
    make_sink: Callable[..., Sink],
    monkeypatch: pytest.MonkeyPatch,
    open_channels: Callable[[list[str]], list[Channel]],
) -> None:
    sink = make_sink()
    keys = add_notifications(db, 5)
    channels = open_channels([sink.url()])
    record = records.record
    calls = 0

    def crash_on_third(*args: Any, **kwargs: Any) -> bool:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("killed between send and record")
        return record(*args, **kwargs)

    monkeypatch.setattr(records, "record", crash_on_third)
    with pytest.raises(RuntimeError):
        deliver(db, channels, clock=ManualClock(START))
    monkeypatch.setattr(records, "record", record)
    assert deliver(db, channels, clock=ManualClock(START)).sent == 3

    assert sink.received_keys() == Counter({key: 1 for key in keys} | {keys[2]: 2})
    duplicated = [h["Idempotency-Key"] for h in sink.headers if h["Idempotency-Key"] == keys[2]]
    assert len(duplicated) == 2  # the receiver can recognise the repeat by its key
    assert {n.status for n in outbox(db).values()} == {"sent"}


def test_rows_leased_by_a_dead_relay_come_back_when_the_lease_expires(
    db: Database,
    make_sink: Callable[..., Sink],
    open_channels: Callable[[list[str]], list[Channel]],
) -> None:
    from sqlalchemy import update
    from sqlmodel import col

    sink = make_sink()
    keys = add_notifications(db, 4)
    with db.write() as session:  # a relay killed after claiming two rows
        session.exec(
            update(Notification)
            .where(col(Notification.dedupe_key).in_(keys[:2]))
            .values(claimed_by="dead-relay", claimed_until=START + timedelta(seconds=120))
        )
    clock, channels = ManualClock(START), open_channels([sink.url()])
    report = deliver(db, channels, clock=clock)
    assert (report.sent, report.skipped) == (2, 2)
    clock.advance(121)
    report = deliver(db, channels, clock=clock)
    assert (report.sent, report.skipped) == (2, 0)
    assert sink.received_keys() == Counter({key: 1 for key in keys})


def test_a_relay_that_lost_its_lease_writes_nothing(
    db: Database,
    make_sink: Callable[..., Sink],
    open_channels: Callable[[list[str]], list[Channel]],
) -> None:
    sink = make_sink()
    add_notifications(db, 1)
    clock, lease = ManualClock(START), timedelta(seconds=120)
    stale = claims.claim_batch(db, 10, "stale-relay:1", clock.now(), lease)
    assert len(stale.rows) == 1
    clock.advance(121)  # the stale relay stalled past its lease; another one takes over
    assert deliver(db, open_channels([sink.url()]), clock=clock).sent == 1
    row_id = stale.held[0]
    assert not records.record(db, stale, row_id, [], None, clock.now(), lease)
    assert outbox(db)["drop:0"].status == "sent"


def test_a_slow_batch_keeps_its_lease(
    db: Database,
    make_sink: Callable[..., Sink],
    open_channels: Callable[[list[str]], list[Channel]],
) -> None:
    sink = make_sink()
    add_notifications(db, 5)
    clock, channels = ManualClock(START), open_channels([sink.url()])
    submit, stolen = channels[0].submit, []

    def slow_send(message: Any, at: datetime) -> Any:
        clock.advance(50)  # each send takes 50 s of the 120 s lease
        if message.dedupe_key == "drop:2":  # 150 s in: another relay tries to take over
            stolen.extend(claims.claim_batch(db, 10, "other:1", clock.now(), timedelta(120)).rows)
        return submit(message, at)

    channels[0].submit = slow_send  # type: ignore[method-assign]
    report = deliver(db, channels, clock=clock)
    assert stolen == []  # the lease was renewed at half-time
    assert (report.sent, report.batches) == (5, 1)
    assert set(sink.attempts.values()) == {1}


def test_stop_releases_the_rest_of_the_batch(
    db: Database,
    make_sink: Callable[..., Sink],
    open_channels: Callable[[list[str]], list[Channel]],
) -> None:
    sink = make_sink()
    add_notifications(db, 10)
    stop = threading.Event()
    channels = open_channels([sink.url()])
    submit = channels[0].submit

    def send_then_stop(*args: Any) -> Any:
        sent = submit(*args)
        sent.result(timeout=10)
        stop.set()  # SIGTERM arrives as the first send ends
        return sent

    channels[0].submit = send_then_stop  # type: ignore[method-assign]
    report = deliver(db, channels, clock=ManualClock(START), stop=stop)
    assert report.sent == 1
    state = outbox(db).values()
    assert sum(n.status == "pending" for n in state) == 9
    assert all(n.claimed_by is None for n in state)  # free for the next relay at once


@pytest.mark.timed
def test_the_loop_is_bounded_and_picks_up_new_rows(
    db: Database,
    make_sink: Callable[..., Sink],
    open_channels: Callable[[list[str]], list[Channel]],
) -> None:
    sink = make_sink()
    add_notifications(db, 3)
    channels = open_channels([sink.url()])
    timer = threading.Timer(0.3, lambda: add_notifications(db, 2, start=3))
    timer.start()
    report = run_loop(db, channels, interval_s=0.05, duration_s=1.0)
    timer.join()
    assert report.sent == 5
    assert 1.0 <= report.duration_s < 3
    assert len(sink.received) == 5


# --- the commands ----------------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None, expect: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=True)
    assert result.exit_code == expect, (
        f"exit {result.exit_code}, expected {expect}\nstdout:\n{result.stdout}\n"
        f"stderr:\n{result.stderr}\nexception: {result.exception!r}"
    )
    return result


def test_deliver_json_gives_the_counts(
    database_url: str, db: Database, make_sink: Callable[..., Sink]
) -> None:
    sink = make_sink()
    add_notifications(db, 4, at=datetime.now(UTC))
    env = {"RESYWATCH_NOTIFY_URLS": sink.url(f"/hook/{SECRET}")}
    result = run_cli("--database-url", database_url, "notify", "deliver", "--json", env=env)
    document = json.loads(result.stdout)
    assert {k: document[k] for k in ("sent", "failed", "retried", "skipped")} == {
        "sent": 4,
        "failed": 0,
        "retried": 0,
        "skipped": 0,
    }
    assert document["channels"][0]["kind"] == "json"
    assert SECRET not in result.stdout + result.stderr
    assert len(sink.received) == 4
    again = run_cli("--database-url", database_url, "notify", "deliver", "--json", env=env)
    assert json.loads(again.stdout)["sent"] == 0


def test_deliver_without_channels_prints_to_stdout(database_url: str, db: Database) -> None:
    add_notifications(db, 2, at=datetime.now(UTC) - timedelta(minutes=3))
    text = run_cli("--database-url", database_url, "notify", "deliver").stdout
    assert "Venue 0: a table just opened" in text
    assert "https://resy.com/cities/ny/venue-1?date=2026-03-06&seats=2" in text
    assert "Opened 3 min ago." in text
    assert {n.status for n in outbox(db).values()} == {"sent"}

    add_notifications(db, 2, start=2)
    result = run_cli("--database-url", database_url, "notify", "deliver", "--json")
    summary = json.loads(result.stdout)  # stdout: one document; the notifications: stderr
    notifications = [json.loads(line) for line in result.stderr.splitlines() if line[:1] == "{"]
    assert [n["dedupe_key"] for n in notifications] == ["drop:2", "drop:3"]
    assert set(notifications[0]) == {
        "id",
        "dedupe_key",
        "kind",
        "title",
        "body",
        "url",
        "payload",
        "created_at",
    }
    assert summary["sent"] == 2
    assert summary["channels"] == [
        {"kind": "stdout", "url": "stdout", "key": "stdout", "default": True}
    ]


def test_deliver_exits_1_when_notifications_fail_and_keeps_secrets_out(
    database_url: str, db: Database, make_sink: Callable[..., Sink]
) -> None:
    sink = make_sink()
    add_notifications(db, 2)
    env = {
        "RESYWATCH_NOTIFY_URLS": sink.url(f"/down/{SECRET}"),
        "RESYWATCH_NOTIFY_MAX_ATTEMPTS": "1",
    }
    result = run_cli("--database-url", database_url, "notify", "deliver", env=env, expect=1)
    assert "gave up after 1 attempt:" in result.stderr
    assert "HTTP 500" in result.stderr
    document = json.loads(
        run_cli("--database-url", database_url, "notify", "deliver", "--json", env=env).stdout
    )
    assert document["sent"] == 0  # nothing left to try
    for row in outbox(db).values():
        assert row.status == "failed"
        assert SECRET not in (row.last_error or "")
        assert "***" in (row.last_error or "")
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("as_json", [False, True])
def test_an_unparseable_url_exits_2_names_it_redacted_and_writes_nothing(
    database_url: str, db: Database, make_sink: Callable[..., Sink], as_json: bool
) -> None:
    sink = make_sink()
    add_notifications(db, 2)
    bad = f"bogus://{SECRET}@example.com/x"
    env = {"RESYWATCH_NOTIFY_URLS": f"{sink.url()} {bad}"}
    args = ["--database-url", database_url, "notify", "deliver", *(["--json"] if as_json else [])]
    result = run_cli(*args, env=env, expect=2)
    assert "'bogus://***'" in result.stderr  # an unparseable URL shows its scheme only
    assert SECRET not in result.stdout + result.stderr
    if as_json:
        assert json.loads(result.stdout)["error"]["code"] == "bad_config"
    assert sink.attempts == Counter()
    assert {(n.status, n.attempts, n.claimed_by) for n in outbox(db).values()} == {
        ("pending", 0, None)
    }
    assert deliveries(db) == []


def test_channels_list_json_masks_secrets(make_sink: Callable[..., Sink], tmp_path: Path) -> None:
    sink = make_sink()
    urls = [
        sink.url(f"/hook/{SECRET}").replace("json://", "json://bob:hunter2pw@"),
        f"ndjson://{tmp_path}/out.ndjson",
        "ndjson://-",
        f"tgram://123456789:{SECRET}/12345",
    ]
    result = run_cli(
        "notify", "channels", "list", "--json", env={"RESYWATCH_NOTIFY_URLS": " ".join(urls)}
    )
    channels = json.loads(result.stdout)["channels"]
    assert [c["kind"] for c in channels] == ["json", "ndjson", "ndjson", "apprise:tgram"]
    port = sink.server.server_address[1]
    assert channels[0]["url"] == f"json://***@127.0.0.1:{port}/hook/***"
    assert channels[3]["url"].startswith("tgram://1...")  # Apprise's own privacy rendering
    assert SECRET not in result.stdout + result.stderr
    assert "hunter2pw" not in result.stdout + result.stderr
    assert not any(c["default"] for c in channels)


def test_channels_test_reports_each_channel(make_sink: Callable[..., Sink], tmp_path: Path) -> None:
    sink = make_sink()
    ndjson = tmp_path / "test.ndjson"
    env = {"RESYWATCH_NOTIFY_URLS": f"{sink.url()} ndjson://{ndjson}"}
    result = run_cli("notify", "channels", "test", "--json", env=env)
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert [(c["kind"], c["ok"], c["error"]) for c in document["channels"]] == [
        ("json", True, None),
        ("ndjson", True, None),
    ]
    assert [d["kind"] for d in sink.received] == ["test"]
    assert json.loads(ndjson.read_text())["kind"] == "test"

    env = {"RESYWATCH_NOTIFY_URLS": f"{sink.url(f'/down/{SECRET}')} ndjson://{ndjson}"}
    result = run_cli("notify", "channels", "test", env=env, expect=1)
    assert "HTTP 500" in result.stdout
    assert "ok" in result.stdout
    assert SECRET not in result.stdout + result.stderr
    assert len(ndjson.read_text().splitlines()) == 2


# --- deadlines, one channel never holding up another, stopping -------------------------------


@pytest.fixture
def closing() -> Iterator[Callable[[Channels], list[Channel]]]:
    """Channels built by the test (with their own deadline), closed when it ends."""
    opened: list[Channels] = []

    def keep(channels: Channels) -> list[Channel]:
        opened.append(channels)
        return channels.items

    yield keep
    for channels in opened:
        channels.close()


def wait_for(done: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def ndjson_keys(path: Path) -> list[str]:
    """The dedupe keys of the file's lines; every line must be one whole JSON document."""
    if not path.exists():
        return []
    return [json.loads(line)["dedupe_key"] for line in path.read_text().splitlines()]


@pytest.mark.timed
def test_channels_test_ends_at_the_deadline_when_a_webhook_trickles(
    hanging: Callable[..., HangingHook], tmp_path: Path
) -> None:
    # One byte every 0.2 s: httpx's per-read timeout (1 s) alone would wait out all 20 s.
    hook = hanging("trickle", every=0.2, hold_s=20)
    ndjson = tmp_path / "test.ndjson"
    env = {
        "RESYWATCH_NOTIFY_URLS": f"{hook.url()} ndjson://{ndjson}",
        "RESYWATCH_NOTIFY_TIMEOUT_S": "1",
    }
    started = time.monotonic()
    result = run_cli("notify", "channels", "test", "--json", env=env, expect=1)
    elapsed = time.monotonic() - started
    assert hook.requests == 1
    assert elapsed < 4, f"took {elapsed:.1f} s"
    checks = json.loads(result.stdout)["channels"]
    assert [(c["kind"], c["ok"]) for c in checks] == [("json", False), ("ndjson", True)]
    assert "no answer within 1 s" in checks[0]["error"]
    assert 900 <= checks[0]["latency_ms"] <= 1500
    assert checks[1]["latency_ms"] < 900  # the file was not kept waiting behind the webhook
    assert ndjson_keys(ndjson)[0].startswith("test:")


@pytest.mark.timed
def test_a_silent_webhook_does_not_hold_up_the_other_channels(
    db: Database,
    hanging: Callable[..., HangingHook],
    closing: Callable[[Channels], list[Channel]],
    tmp_path: Path,
) -> None:
    hook = hanging("silent")
    keys = add_notifications(db, 5)
    ndjson = tmp_path / "notifications.ndjson"
    channels = closing(build_channels([hook.url(), f"ndjson://{ndjson}"], timeout_s=4))
    clock, policy = ManualClock(START), DeliveryPolicy(retry_base_s=10, retry_max_s=20)
    reports: list[DeliveryReport] = []
    worker = threading.Thread(
        target=lambda: reports.append(deliver(db, channels, policy=policy, clock=clock))
    )
    started = time.monotonic()
    worker.start()
    # Every line is in the file before the webhook's first deadline has even passed.
    assert wait_for(lambda: len(ndjson_keys(ndjson)) == 5, timeout=3.5), ndjson_keys(ndjson)
    worker.join(timeout=30)
    elapsed = time.monotonic() - started
    assert elapsed < 8, f"took {elapsed:.1f} s"  # one deadline for the pass, not one per row
    assert ndjson_keys(ndjson) == keys
    [report] = reports
    assert (report.sent, report.retried, report.failed, report.deliveries) == (0, 5, 0, 5)
    assert hook.requests == 1  # the webhook missed its deadline once, then was left alone

    by_channel = {(d.notification_id, d.channel.split(":")[0]): d for d in deliveries(db)}
    state = outbox(db)
    for index, key in enumerate(keys):
        row = state[key]
        assert (row.status, row.attempts, row.claimed_by) == ("pending", 1, None)
        file, webhook = by_channel[(row.id, "ndjson")], by_channel[(row.id, "json")]
        assert (file.status, file.attempts) == ("sent", 1)
        assert webhook.status == "pending"
        assert "no answer within 4 s" in (webhook.last_error or "")
        assert webhook.attempts == (1 if index == 0 else 0)  # a skipped row is no attempt
        assert ("not tried" in (webhook.last_error or "")) is (index > 0)

    # The retry goes to the webhook alone: the file keeps its one line per notification.
    channels[0].timeout_s = 0.5
    clock.advance(policy.retry_max_s + 1)
    again = deliver(db, channels, policy=policy, clock=clock)
    assert (again.retried, again.deliveries, hook.requests) == (5, 0, 2)
    assert ndjson_keys(ndjson) == keys


class Hung(Channel):
    """A channel whose sends block until released (a hung Apprise plugin, a full pipe), or,
    with `own_deadline`, fail at once the way a webhook that timed itself out does."""

    def __init__(self, timeout_s: float, *, own_deadline: bool = False) -> None:
        super().__init__(url="hung://", kind="hung", timeout_s=timeout_s)
        self.own_deadline = own_deadline
        self.release = threading.Event()
        self.calls = 0

    def send(self, message: Any, now: datetime) -> None:
        self.calls += 1
        if self.own_deadline:
            raise DeadlineMissed(f"no answer within {self.timeout_s:g} s")
        self.release.wait(timeout=30)


@pytest.mark.timed
@pytest.mark.parametrize("own_deadline", [False, True], ids=["abandoned", "timed-itself-out"])
def test_a_channel_past_its_deadline_is_tried_once_per_pass(
    db: Database, tmp_path: Path, own_deadline: bool
) -> None:
    keys = add_notifications(db, 4)
    hung = Hung(timeout_s=0.5, own_deadline=own_deadline)
    ndjson = tmp_path / "n.ndjson"
    channels = [hung, *build_channels([f"ndjson://{ndjson}"]).items]
    clock, policy = ManualClock(START), DeliveryPolicy(retry_base_s=10, retry_max_s=20)
    try:
        for rounds in (1, 2):  # the second pass finds the first one's send still stuck
            started = time.monotonic()
            report = deliver(db, channels, policy=policy, clock=clock)
            assert time.monotonic() - started < 2.5  # one deadline, not one per row
            assert (report.retried, hung.calls) == (4, 1 if not own_deadline else rounds)
            clock.advance(policy.retry_max_s + 1)
    finally:
        hung.release.set()
    assert ndjson_keys(ndjson) == keys
    assert {n.attempts for n in outbox(db).values()} == {2}


class Unstartable(Channel):
    """A channel that cannot even start a send (no thread to be had)."""

    def send(self, message: Any, now: datetime) -> None:
        raise AssertionError("never called")

    def submit(self, message: Any, now: datetime) -> Any:
        raise RuntimeError("can't start new thread")


def test_a_channel_that_cannot_start_a_send_stops_no_other(db: Database, tmp_path: Path) -> None:
    keys = add_notifications(db, 2)
    ndjson = tmp_path / "n.ndjson"
    broken = Unstartable(url="broken://", kind="broken")
    report = deliver(
        db, [broken, *build_channels([f"ndjson://{ndjson}"]).items], clock=ManualClock(START)
    )
    assert (report.retried, report.deliveries) == (2, 2)
    assert ndjson_keys(ndjson) == keys
    assert all(
        "RuntimeError: can't start new thread" in (n.last_error or "") for n in outbox(db).values()
    )


@pytest.mark.timed
def test_stop_abandons_a_hung_send_and_leaves_it_pending(
    db: Database,
    hanging: Callable[..., HangingHook],
    closing: Callable[[Channels], list[Channel]],
) -> None:
    hook = hanging("silent")
    add_notifications(db, 3)
    channels = closing(build_channels([hook.url()], timeout_s=60))
    stop = threading.Event()
    reports: list[DeliveryReport] = []
    worker = threading.Thread(
        target=lambda: reports.append(deliver(db, channels, clock=ManualClock(START), stop=stop))
    )
    worker.start()
    assert hook.got_request.wait(timeout=10)
    stop.set()
    stopped = time.monotonic()
    worker.join(timeout=30)
    assert time.monotonic() - stopped < 1.5
    [report] = reports
    assert (report.sent, report.retried, report.failed) == (0, 0, 0)
    # Not marked sent, no attempt spent, free for the next relay at once.
    assert {(n.status, n.attempts, n.claimed_by) for n in outbox(db).values()} == {
        ("pending", 0, None)
    }
    assert deliveries(db) == []


@pytest.mark.parametrize(
    "command",
    [("run-forever", "--job", "delivery"), ("notify", "deliver", "--loop")],
    ids=["run-forever", "deliver-loop"],
)
@pytest.mark.timed
def test_sigterm_ends_delivery_within_8_s_while_a_send_hangs(
    db: Database,
    database_url: str,
    hanging: Callable[..., HangingHook],
    tmp_path: Path,
    command: tuple[str, ...],
) -> None:
    hook = hanging("silent", hold_s=60)
    [key] = add_notifications(db, 1, at=datetime.now(UTC))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESYWATCH_")}
    env.update(
        RESYWATCH_DATABASE_URL=database_url,
        RESYWATCH_NOTIFY_URLS=hook.url(),
        RESYWATCH_NOTIFY_TIMEOUT_S="60",  # the send would hang far past the 8 s promised
    )
    stderr = tmp_path / "delivery.err"
    with stderr.open("wb") as err:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "resywatch", *command],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        assert hook.got_request.wait(timeout=30), stderr.read_text()
        supervisor.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        try:
            code = supervisor.wait(timeout=8)
        except subprocess.TimeoutExpired:
            raise AssertionError("still running 8 s after SIGTERM") from None
        assert time.monotonic() - signalled < 8
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait(timeout=10)
    log = stderr.read_text()
    assert code == 0, log
    assert "Traceback" not in log
    row = outbox(db)[key]
    assert (row.status, row.sent_at, row.claimed_by) == ("pending", None, None)  # retried later
    assert row.attempts == 0
    assert deliveries(db) == []


# --- ndjson files ----------------------------------------------------------------------------


def test_a_full_disk_never_leaves_a_fragment_nor_marks_the_line_sent(
    db: Database,
    closing: Callable[[Channels], list[Channel]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = add_notifications(db, 4)
    ndjson = tmp_path / "notifications.ndjson"
    channels = closing(build_channels([f"ndjson://{ndjson}"]))
    write = os.write

    def disk_fills_on_drop_2(descriptor: int, data: bytes) -> int:
        if b'"dedupe_key":"drop:2"' in data:
            write(descriptor, data[:99])  # the disk takes 99 bytes, then it is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write(descriptor, data)

    monkeypatch.setattr(os, "write", disk_fills_on_drop_2)
    clock, policy = ManualClock(START), DeliveryPolicy(retry_base_s=10, retry_max_s=20)
    report = deliver(db, channels, policy=policy, clock=clock)
    assert (report.sent, report.retried) == (3, 1)
    assert ndjson_keys(ndjson) == [keys[0], keys[1], keys[3]]  # whole lines, no fragment
    state = outbox(db)
    assert (state[keys[2]].status, state[keys[2]].sent_at) == ("pending", None)
    assert "No space left on device" in (state[keys[2]].last_error or "")

    monkeypatch.setattr(os, "write", write)  # space again: the retry appends a whole line
    clock.advance(policy.retry_max_s + 1)
    assert deliver(db, channels, policy=policy, clock=clock).sent == 1
    assert ndjson_keys(ndjson) == [keys[0], keys[1], keys[3], keys[2]]
    assert {n.status for n in outbox(db).values()} == {"sent"}


def test_an_ndjson_path_that_is_a_directory_exits_2_and_writes_nothing(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    add_notifications(db, 2)
    folder = tmp_path / "notifications"
    folder.mkdir()
    env = {"RESYWATCH_NOTIFY_URLS": f"ndjson://{folder}"}
    for command in (["notify", "deliver"], ["notify", "channels", "test"]):
        result = run_cli("--database-url", database_url, *command, env=env, expect=2)
        assert "ndjson://" in result.stderr and "is a directory" in result.stderr
    assert list(folder.iterdir()) == []
    assert {(n.status, n.attempts, n.claimed_by) for n in outbox(db).values()} == {
        ("pending", 0, None)
    }
    assert deliveries(db) == []
