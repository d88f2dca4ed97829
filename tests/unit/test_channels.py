"""Channels: URL parsing, how each channel sends and classifies failures,
message text, and the retry delays. Webhooks are exercised over real loopback HTTP."""

from __future__ import annotations

import concurrent.futures
import io
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from resywatch.errors import ConfigError
from resywatch.redact import redact_notify_url
from resywatch.services.channels.apprise_channel import AppriseChannel
from resywatch.services.channels.base import (
    Channel,
    Message,
    SendError,
    ago,
    start_send,
    wait_for_send,
)
from resywatch.services.channels.checks import check_channels
from resywatch.services.channels.files import NdjsonFileChannel, StreamChannel
from resywatch.services.channels.registry import build_channels
from resywatch.services.channels.webhook import WebhookChannel
from resywatch.services.delivery.policy import DeliveryPolicy

NOW = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)
TOKEN = "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"

MESSAGE = Message(
    id=7,
    dedupe_key="drop:7",
    kind="drop",
    title="Carbone: a table just opened",
    body="Carbone in Greenwich Village: Fri Mar 6 at 7:30 PM, party of 2 (Dining Room).",
    url="https://resy.com/cities/ny/carbone?date=2026-03-06&seats=2",
    payload={"drop_event_id": 7},
    created_at=NOW - timedelta(minutes=4),
)


# --- redaction -----------------------------------------------------------------------------


def test_channel_keys_and_displays_hold_no_secret() -> None:
    channels = build_channels(
        [f"json://bob:pw-{TOKEN}@127.0.0.1:9/{TOKEN}", f"tgram://123456789:{TOKEN}/1"]
    )
    for channel in channels:
        assert TOKEN not in channel.display + channel.key
        assert channel.key == channel.key.strip() and len(channel.key) <= 64
    # the key is stable across runs (it names the channel in notification_delivery)
    again = build_channels([f"json://bob:pw-{TOKEN}@127.0.0.1:9/{TOKEN}"])
    assert again.items[0].key == channels.items[0].key


def test_errors_are_scrubbed_of_the_channels_secrets() -> None:
    channel = build_channels([f"tgram://123456789:{TOKEN}/1"]).items[0]
    text = channel.describe(SendError(f"POST https://api.telegram.org/bot123456789:{TOKEN} 401"))
    assert TOKEN not in text
    assert text.startswith(f"{channel.display}: ") and channel.display.startswith("tgram://1...w/")


# --- building channels ---------------------------------------------------------------------


def test_kinds(tmp_path: Path) -> None:
    channels = build_channels(
        [
            "json://127.0.0.1:8080/hook",
            "jsons://hooks.example.com/x",
            f"ndjson://{tmp_path}/n.ndjson",
            "ndjson://-",
            "ntfy://my-topic",
            "json://127.0.0.1:8080/hook",  # the same URL twice is one channel
        ]
    )
    assert [c.kind for c in channels] == ["json", "jsons", "ndjson", "ndjson", "apprise:ntfy"]
    assert not channels.default
    webhook, secure = channels.items[0], channels.items[1]
    assert isinstance(webhook, WebhookChannel) and webhook.target == "http://127.0.0.1:8080/hook"
    assert isinstance(secure, WebhookChannel) and secure.target == "https://hooks.example.com/x"
    assert isinstance(channels.items[2], NdjsonFileChannel)
    assert isinstance(channels.items[3], StreamChannel)
    assert isinstance(channels.items[4], AppriseChannel)


def test_no_url_means_stdout() -> None:
    channels = build_channels([])
    assert channels.default and [c.kind for c in channels] == ["stdout"]
    assert isinstance(channels.items[0], StreamChannel)


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("bogus://x", "not a notification URL"),
        ("not a url", "is not a URL"),
        ("ndjson://relative.ndjson", "ndjson:///ABSOLUTE/PATH"),
        ("ndjson://", "ndjson:///ABSOLUTE/PATH"),
        ("json:///no-host", "has no host"),
        ("json://host:port/x", "is not a valid URL"),
    ],
)
def test_bad_urls_are_config_errors(url: str, complaint: str) -> None:
    with pytest.raises(ConfigError) as raised:
        build_channels(["json://127.0.0.1/ok", url])
    assert complaint in str(raised.value)
    assert raised.value.exit_code == 2


def test_a_bad_url_is_named_redacted() -> None:
    with pytest.raises(ConfigError) as raised:
        build_channels([f"nosuch://user:{TOKEN}@host/{TOKEN}"])
    assert "'nosuch://***'" in str(raised.value)
    assert TOKEN not in str(raised.value)


def test_help_and_builtin_channels_do_not_import_apprise() -> None:
    probe = (
        "import sys\n"
        "from resywatch.cli import notify_delivery\n"
        "from resywatch.services.channels.registry import build_channels\n"
        "build_channels(['json://127.0.0.1:1/x', 'ndjson://-', 'ndjson:///tmp/x.ndjson'])\n"
        "print('apprise' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"


# --- messages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "just now"), (59, "just now"), (60, "1 min ago"), (3599, "59 min ago"),
     (7200, "2 h ago"), (86_400, "1 day ago"), (3 * 86_400, "3 days ago")],
)  # fmt: skip
def test_ago(seconds: float, text: str) -> None:
    assert ago(seconds) == text


def test_message_text_says_how_long_ago_it_opened() -> None:
    assert MESSAGE.text(NOW).splitlines() == [MESSAGE.body, MESSAGE.url, "Opened 4 min ago."]
    test = Message(None, "test:1", "test", "t", "b", None, {}, NOW)
    assert test.text(NOW) == "b\n(just now)"


def test_message_document() -> None:
    assert MESSAGE.document() == {
        "id": 7,
        "dedupe_key": "drop:7",
        "kind": "drop",
        "title": MESSAGE.title,
        "body": MESSAGE.body,
        "url": MESSAGE.url,
        "payload": {"drop_event_id": 7},
        "created_at": "2026-03-02T20:56:00Z",
    }


# --- webhooks over loopback ----------------------------------------------------------------


class Recorder:
    """Answers each POST with the status its path names (/status/503) and records it."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                recorder.requests.append((self.path, dict(self.headers), body))
                parts = self.path.strip("/").split("/")
                if parts[0] == "slow":
                    time.sleep(float(parts[1]))
                status = int(parts[1]) if parts[0] == "status" else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recorder = Recorder()
    thread = threading.Thread(target=recorder.server.serve_forever, daemon=True)
    thread.start()
    yield recorder
    recorder.server.shutdown()
    recorder.server.server_close()


def _send(url: str, timeout_s: float = 5.0) -> SendError | None:
    channels = build_channels([url], timeout_s=timeout_s)
    try:
        channels.items[0].send(MESSAGE, NOW)
    except SendError as exc:
        return exc
    finally:
        channels.close()
    return None


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, None), (204, None), (400, "permanent"), (404, "permanent"), (410, "permanent"),
     (408, "transient"), (429, "transient"), (500, "transient"), (503, "transient"),
     (302, "transient")],
)  # fmt: skip
def test_webhook_status_classes(recorder: Recorder, status: int, outcome: str | None) -> None:
    error = _send(f"json://127.0.0.1:{recorder.port}/status/{status}")
    if outcome is None:
        assert error is None
    else:
        assert error is not None and f"HTTP {status}" in str(error)
        assert error.permanent is (outcome == "permanent")


def test_webhook_posts_the_document_with_its_key_and_auth(recorder: Recorder) -> None:
    assert _send(f"json://bob:s3cret@127.0.0.1:{recorder.port}/hook?x=1") is None
    path, headers, body = recorder.requests[0]
    assert path == "/hook?x=1"
    assert body == MESSAGE.document()
    assert headers["Idempotency-Key"] == "drop:7"
    assert headers["Authorization"].startswith("Basic ")
    assert headers["User-Agent"].startswith("resywatch/")


def test_unreachable_and_slow_webhooks_are_transient(recorder: Recorder) -> None:
    refused = _send("json://127.0.0.1:1/hook")
    assert refused is not None and not refused.permanent
    slow = _send(f"json://127.0.0.1:{recorder.port}/slow/1", timeout_s=0.2)
    assert slow is not None and not slow.permanent
    assert "no answer within 0.2 s" in str(slow)


def test_apprise_channels_send_over_loopback(recorder: Recorder) -> None:
    assert _send(f"ntfy://127.0.0.1:{recorder.port}/topic") is None
    _path, _headers, body = recorder.requests[0]
    assert body["title"] == MESSAGE.title and "Opened 4 min ago." in body["message"]
    error = _send("ntfy://127.0.0.1:1/topic")  # refused
    assert error is not None and not error.permanent  # Apprise only says "failed"
    assert "Connection error" in str(error)


# --- files and stdout ----------------------------------------------------------------------


def test_ndjson_file_appends_one_line_per_notification(tmp_path: Path) -> None:
    path = tmp_path / "new-dir" / "out.ndjson"
    channel = build_channels([f"ndjson://{path}"]).items[0]
    channel.send(MESSAGE, NOW)
    channel.send(MESSAGE, NOW)
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [MESSAGE.document()] * 2
    assert path.stat().st_mode & 0o777 == 0o600


def test_ndjson_paths_that_can_never_be_files_are_refused_when_built(tmp_path: Path) -> None:
    folder = tmp_path / "secret-run-8f2a9c1d7e"
    folder.mkdir()
    (folder / "file").write_text("")
    for url, complaint in [
        (f"ndjson://{folder}", "the path is a directory"),
        (f"ndjson://{folder}/", "the path is a directory"),
        (f"ndjson://{folder}/file/below.ndjson", "a parent of the path is a file"),
    ]:
        with pytest.raises(ConfigError) as raised:
            build_channels([url])
        assert complaint in str(raised.value)
        assert raised.value.exit_code == 2
        assert redact_notify_url(url) in str(raised.value)  # named as `channels list` shows it


def test_an_ndjson_path_that_became_a_directory_fails_for_good(tmp_path: Path) -> None:
    channel = build_channels([f"ndjson://{tmp_path}/out.ndjson"]).items[0]
    (tmp_path / "out.ndjson").mkdir()
    with pytest.raises(SendError) as raised:
        channel.send(MESSAGE, NOW)
    assert raised.value.permanent
    assert "Is a directory" in str(raised.value)


def test_a_short_write_is_cut_back_and_fails_transiently(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.ndjson"
    channel = build_channels([f"ndjson://{path}"]).items[0]
    channel.send(MESSAGE, NOW)
    before = path.read_bytes()
    write = os.write

    def short(descriptor: int, data: bytes) -> int:
        return write(descriptor, data[:99])  # the disk took only 99 bytes

    monkeypatch.setattr(os, "write", short)
    with pytest.raises(SendError) as raised:
        channel.send(MESSAGE, NOW)
    assert not raised.value.permanent
    assert "short write (99 of" in str(raised.value)
    assert path.read_bytes() == before  # the fragment is gone
    monkeypatch.setattr(os, "write", write)
    channel.send(MESSAGE, NOW)
    assert [json.loads(line) for line in path.read_text().splitlines()] == [MESSAGE.document()] * 2


_FILE_SIZE_LIMIT = """
import resource, signal, sys
from datetime import UTC, datetime
from resywatch.services.channels.base import Message, SendError
from resywatch.services.channels.registry import build_channels
path, limit = sys.argv[1], int(sys.argv[2])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit: EFBIG, not death
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
now = datetime.now(UTC)
message = Message(9, "drop:9", "drop", "t" * 200, "b" * 200, None, {}, now)
try:
    build_channels([f"ndjson://{path}"]).items[0].send(message, now)
except SendError as exc:
    print(f"transient={not exc.permanent} {exc}")
"""


def test_a_real_short_write_leaves_no_fragment(tmp_path: Path) -> None:
    path = tmp_path / "out.ndjson"
    channel = build_channels([f"ndjson://{path}"]).items[0]
    channel.send(MESSAGE, NOW)
    before = path.read_bytes()
    # The kernel takes 99 bytes of the line and refuses the rest (a file size limit).
    limit = str(len(before) + 99)
    done = subprocess.run(
        [sys.executable, "-c", _FILE_SIZE_LIMIT, str(path), limit],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "transient=True" in done.stdout and "short write (99 of" in done.stdout, done
    assert path.read_bytes() == before
    channel.send(MESSAGE, NOW)
    assert [json.loads(line) for line in path.read_text().splitlines()] == [MESSAGE.document()] * 2


def test_a_line_after_someone_elses_fragment_starts_on_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "out.ndjson"
    path.write_text('{"cut": ')
    build_channels([f"ndjson://{path}"]).items[0].send(MESSAGE, NOW)
    fragment, line = path.read_text().splitlines()
    assert fragment == '{"cut": '
    assert json.loads(line) == MESSAGE.document()


def test_a_write_only_file_is_still_appended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.ndjson"
    channel = build_channels([f"ndjson://{path}"]).items[0]
    open_file = os.open

    def write_only(file: Any, flags: int, mode: int = 0o777) -> int:
        if flags & os.O_RDWR:  # the file may be written but not read
            raise PermissionError(13, "Permission denied")
        return open_file(file, flags, mode)

    monkeypatch.setattr(os, "open", write_only)
    channel.send(MESSAGE, NOW)
    assert json.loads(path.read_text()) == MESSAGE.document()


def test_stdout_channel_text_and_json_lines() -> None:
    text, lines = io.StringIO(), io.StringIO()
    build_channels([], stdout=text).items[0].send(MESSAGE, NOW)
    assert text.getvalue() == f"{MESSAGE.title}\n{MESSAGE.text(NOW)}\n\n"
    build_channels([], stdout=lines, json_lines=True).items[0].send(MESSAGE, NOW)
    assert json.loads(lines.getvalue()) == MESSAGE.document()
    build_channels(["ndjson://-"], stdout=lines).items[0].send(MESSAGE, NOW)
    assert len(lines.getvalue().splitlines()) == 2


def test_check_channels_reports_each(recorder: Recorder, tmp_path: Path) -> None:
    channels = build_channels(
        [f"json://127.0.0.1:{recorder.port}/status/500", f"ndjson://{tmp_path}/t.ndjson"]
    )
    checks = check_channels(channels, NOW)
    channels.close()
    assert [(c.kind, c.ok) for c in checks] == [("json", False), ("ndjson", True)]
    assert "HTTP 500" in (checks[0].error or "")
    assert recorder.requests[0][2]["kind"] == "test"


# --- deadlines ------------------------------------------------------------------------------


def send_within(
    channel: Channel, message: Message, now: datetime, *, stop: threading.Event | None = None
) -> SendError | None:
    """Send and wait at most the channel's deadline (less if `stop` is set meanwhile)."""
    future = start_send(channel, message, now)
    return wait_for_send(channel, future, time.monotonic() + channel.timeout_s, stop)


class Blocking(Channel):
    """A channel whose send blocks until released (a hung Apprise plugin, a full pipe)."""

    def __init__(self, name: str, timeout_s: float) -> None:
        super().__init__(url=f"block://{name}", kind="block", timeout_s=timeout_s)
        self.release = threading.Event()
        self.sent = 0

    def send(self, message: Message, now: datetime) -> None:
        self.release.wait(timeout=30)
        self.sent += 1


def test_a_send_whose_thread_starts_after_its_deadline_sends_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a starved machine a send's thread may first run after its waiter gave up: it must
    not send then, or the notification goes out while it is recorded as not sent."""
    stuck = Blocking("late", timeout_s=5)
    first = start_send(stuck, MESSAGE, NOW)
    late = Blocking("late", timeout_s=0.2)
    late.release.set()
    held: list[threading.Thread] = []
    with monkeypatch.context() as patch:  # its thread gets no CPU until we say so
        patch.setattr(threading.Thread, "start", lambda thread: held.append(thread))
        future = start_send(late, MESSAGE, NOW)
    time.sleep(0.3)  # past its deadline; the stuck send then returns and frees the way
    stuck.release.set()
    assert first.exception(timeout=5) is None
    [thread] = held
    thread.start()
    assert "has not returned yet" in str(future.exception(timeout=5))
    assert (stuck.sent, late.sent) == (1, 0)


@pytest.mark.timed
def test_a_send_that_never_returns_is_abandoned_at_its_deadline() -> None:
    channel = Blocking("hung", timeout_s=0.3)
    threads = threading.active_count()
    started = time.monotonic()
    error = send_within(channel, MESSAGE, NOW)
    assert 0.3 <= time.monotonic() - started < 1
    assert error is not None and not error.permanent
    assert "no answer within 0.3 s" in str(error)
    # Still stuck: the next send to that URL (from a channel built anew, as each delivery
    # pass does) waits its own deadline for it, and sends nothing meanwhile.
    again = Blocking("hung", timeout_s=0.3)
    again.release.set()
    error = send_within(again, MESSAGE, NOW)
    assert error is not None and not error.permanent
    assert "has not returned yet" in str(error) or "no answer within" in str(error)
    assert again.sent == 0
    assert threading.active_count() <= threads + 2  # one stuck send, one waiting
    channel.release.set()
    assert send_within(again, MESSAGE, NOW) is None
    assert (channel.sent, again.sent) == (1, 1)  # the stuck one returned; the waiter sent none


@pytest.mark.timed
def test_a_send_that_gave_up_waiting_lets_no_later_send_past_the_stuck_one() -> None:
    stuck = Blocking("stuck", timeout_s=0.2)
    assert send_within(stuck, MESSAGE, NOW) is not None  # stuck, abandoned at its deadline
    for _ in range(3):  # each gives up behind it; none may open the way for the next
        later = Blocking("stuck", timeout_s=0.2)
        later.release.set()
        error = send_within(later, MESSAGE, NOW)
        assert error is not None and not error.permanent
        assert later.sent == 0
    stuck.release.set()
    after = Blocking("stuck", timeout_s=2)
    after.release.set()
    assert send_within(after, MESSAGE, NOW) is None
    assert (stuck.sent, after.sent) == (1, 1)  # the stuck one finished before the next began


@pytest.mark.timed
def test_a_stop_ends_the_wait_for_a_send() -> None:
    channel, stop = Blocking("hung", timeout_s=30), threading.Event()
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    error = send_within(channel, MESSAGE, NOW, stop=stop)
    assert time.monotonic() - started < 1
    assert error is not None and "stopped" in str(error)
    channel.release.set()


@pytest.mark.timed
def test_check_channels_tests_the_channels_side_by_side(tmp_path: Path) -> None:
    hung = [Blocking(str(i), timeout_s=1) for i in range(3)]
    channels = build_channels([f"ndjson://{tmp_path}/t.ndjson"])
    channels.items[:0] = hung
    started = time.monotonic()
    checks = check_channels(channels, NOW)
    assert time.monotonic() - started < 2.5  # the slowest deadline, not the sum of three
    assert [(c.kind, c.ok) for c in checks] == [("block", False)] * 3 + [("ndjson", True)]
    assert all("no answer within 1 s" in (c.error or "") for c in checks[:3])
    assert checks[3].latency_ms < 900
    for channel in hung:
        channel.release.set()


def test_apprise_errors_of_channels_sent_at_once_stay_apart() -> None:
    ports = (1, 9)
    channels = build_channels([f"ntfy://127.0.0.1:{port}/topic" for port in ports])
    futures = [channel.submit(MESSAGE, NOW) for channel in channels]
    concurrent.futures.wait(futures, timeout=30)
    for port, future in zip(ports, futures, strict=True):
        error = future.exception()
        assert isinstance(error, SendError)
        other = ({1, 9} - {port}).pop()
        assert f"127.0.0.1:{port}" in str(error) and f"127.0.0.1:{other} " not in str(error)


# --- retry delays --------------------------------------------------------------------------


def test_backoff_doubles_is_capped_and_jittered() -> None:
    policy = DeliveryPolicy(retry_base_s=15, retry_max_s=900)
    rng = random.Random(1)
    for attempts, window in [(1, 15), (2, 30), (3, 60), (6, 480), (7, 900), (50, 900)]:
        delays = [policy.delay(attempts, rng).total_seconds() for _ in range(200)]
        assert all(window / 2 <= d <= window for d in delays)
        assert max(delays) - min(delays) > window / 4  # really jittered
