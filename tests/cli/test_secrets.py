"""No secret leaves the process: not the account password during `auth login`, not the Resy
key or token, not in messages, the JSON error envelope, tracebacks or database rows."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus

import pytest
from sqlalchemy import text

from resywatch.config import load_settings
from resywatch.db.engine import Database

PASSWORD = "hunter2 p@ss/w:rd!"
API_KEY = "resy-api-key-0123456789"
TOKEN = "resy-auth-token-abcdefghij"
FORMS = (PASSWORD, quote_plus(PASSWORD), quote(PASSWORD, safe=""))


class _Echo(BaseHTTPRequestHandler):
    """A Resy that quotes the request back in its error message: the form as sent and
    decoded, and the credentials' headers."""

    status = 500

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length).decode()
        decoded = {k: v[0] for k, v in parse_qs(raw).items()}
        message = (
            f"cannot process {raw} ({decoded}) for {self.headers.get('authorization')} "
            f"{self.headers.get('x-resy-auth-token')}"
        )
        body = json.dumps({"status": self.status, "message": message}).encode()
        self.send_response(self.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(params=[500, 400])
def echo_resy(request: pytest.FixtureRequest) -> Iterator[str]:
    handler = type("Echo", (_Echo,), {"status": request.param})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _env(base_url: str, database_url: str) -> dict[str, str]:
    return {
        "RESYWATCH_RESY_BASE_URL": base_url,
        "RESYWATCH_RESY_API_KEY": API_KEY,
        "RESYWATCH_DATABASE_URL": database_url,
        "RESYWATCH_RESY_MAX_RETRIES": "0",
    }


def _stored_text(database_url: str) -> str:
    db = Database(database_url)
    try:
        with db.read() as session:
            rows = [
                *session.execute(text("SELECT host, last_error FROM resy_host")),
                *session.execute(text("SELECT * FROM api_call_log")),
            ]
    finally:
        db.dispose()
    return repr(rows)


@pytest.mark.parametrize("traceback", [False, True])
def test_a_login_answer_that_echoes_the_form_leaks_no_password(
    cli: Any, database_url: str, echo_resy: str, traceback: bool
) -> None:
    flags = ["--traceback"] if traceback else []
    result = cli(
        *flags, "auth", "login", "--email", "me@example.com", "--password-stdin", "--json",
        env=_env(echo_resy, database_url), input=f"{PASSWORD}\n", expect=1,
    )  # fmt: skip
    output = result.stdout + result.stderr
    for form in (*FORMS, API_KEY):
        assert form not in output
    message = json.loads(result.stdout)["error"]["message"]
    assert "cannot process" in message and "***" in message  # the echo came, masked
    if traceback:
        assert "Traceback (most recent call last)" in result.stderr
    stored = _stored_text(database_url)
    for form in (*FORMS, API_KEY):
        assert form not in stored
    if "answered 500" in message:  # a transient failure is remembered for the breaker, masked
        assert "cannot process" in stored and "***" in stored


def test_tracebacks_are_masked(
    cli: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resywatch.services import auth

    async def fails(**_: Any) -> None:
        raise RuntimeError(f"the server refused key {API_KEY} with token {TOKEN}")

    monkeypatch.setattr(auth, "status", fails)
    env = {
        "RESYWATCH_RESY_API_KEY": API_KEY,
        "RESYWATCH_RESY_AUTH_TOKEN": TOKEN,
        "RESYWATCH_DATABASE_URL": database_url,
    }
    result = cli("--traceback", "auth", "status", "--json", env=env, expect=1)
    assert "Traceback (most recent call last)" in result.stderr
    assert "RuntimeError: the server refused key *** with token ***" in result.stderr
    assert API_KEY not in result.stderr + result.stdout
    assert TOKEN not in result.stderr + result.stdout
    assert json.loads(result.stdout)["error"]["code"] == "internal"
    # without --traceback: the same message, masked, and the hint
    plain = cli("auth", "status", "--json", env=env, expect=1)
    assert "run with --traceback" in plain.stderr and TOKEN not in plain.stdout + plain.stderr


@pytest.mark.parametrize("traceback", [False, True])
def test_the_login_password_is_masked_wherever_it_turns_up(
    cli: Any, database_url: str, monkeypatch: pytest.MonkeyPatch, traceback: bool
) -> None:
    """Not only in Resy's answers: the invocation knows the password as a secret."""
    from resywatch.services import auth

    async def fails(*, password: str, **_: Any) -> None:
        raise RuntimeError(f"could not use {password!s} or {quote_plus(password)}")

    monkeypatch.setattr(auth, "login", fails)
    result = cli(
        *(["--traceback"] if traceback else []), "auth", "login", "--email", "me@example.com",
        "--password-stdin", "--json", env={"RESYWATCH_DATABASE_URL": database_url},
        input=f"{PASSWORD}\n", expect=1,
    )  # fmt: skip
    assert "could not use *** or ***" in json.loads(result.stdout)["error"]["message"]
    for form in FORMS:
        assert form not in result.stdout + result.stderr


def test_a_piped_password_without_email_asks_for_email(cli: Any, tmp_path: Any) -> None:
    """A prompt for the email would read the piped password as the email."""
    config = tmp_path / "config.toml"
    result = cli(
        "--config", str(config), "auth", "login", "--password-stdin", "--json",
        input=f"{PASSWORD}\n", expect=2,
    )  # fmt: skip
    assert "use --email" in json.loads(result.stdout)["error"]["message"]
    assert PASSWORD not in result.stdout + result.stderr
    assert not config.exists()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "password",
    ["wr@ng-tail", "w@r@ng-tail", "wrong pass-tail", "wr:ng:tail", "wr/ng/tail", "wr?ng#tail"],
)
def test_no_part_of_a_database_password_is_printed(
    cli: Any, postgres_databases: Any, password: str
) -> None:
    """Against the real server: SQLAlchemy alone would split `user:wr@ng-tail@host` at the
    first "@" and the driver would print "ng-tail@host"; a space printed the whole URL."""
    if postgres_databases is None:
        pytest.skip("set RESYWATCH_TEST_DATABASE_URL to run the PostgreSQL tests")
    server = postgres_databases.url
    url = f"postgresql+psycopg://{server.username}:{password}@{server.host}:{server.port}/x"
    result = cli("--database-url", url, "admin", "db-info", "--json", expect=1)
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "database_unavailable"
    assert f"://***@{server.host}:{server.port}/x" in error["message"]
    assert "password authentication failed" in error["message"]  # it reached the server
    for part in (password, "tail", ":wr", "wr@", "wr/", "wr?"):
        assert part not in result.stdout + result.stderr


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_default_sqlite_file_is_private(cli: Any) -> None:
    """It holds reservations and history: 0600, and so are its WAL and shared-memory files
    (SQLite gives them the main file's mode); its directory is 0700."""
    cli("admin", "migrate", "--json")
    path = Path(load_settings().default_database_path)
    db = Database(f"sqlite:///{path}")
    try:
        with db.write() as session:  # keep a connection open: -wal and -shm exist now
            session.execute(text("SELECT 1"))
            siblings = [Path(f"{path}-wal"), Path(f"{path}-shm")]
            assert all(p.exists() for p in siblings)
            assert [_mode(p) for p in (path, *siblings)] == [0o600] * 3
    finally:
        db.dispose()
    assert _mode(path.parent) == 0o700


def test_any_new_sqlite_file_is_private_and_an_existing_one_keeps_its_mode(
    cli: Any, tmp_path: Path
) -> None:
    created = tmp_path / "new" / "rw.db"
    cli("--database-url", f"sqlite:///{created}", "admin", "migrate", "--json")
    assert _mode(created) == 0o600
    shared = tmp_path / "shared.db"
    shared.touch(mode=0o640)
    shared.chmod(0o640)  # chosen by its owner (a group that reads the history): kept
    cli("--database-url", f"sqlite:///{shared}", "admin", "migrate", "--json")
    assert _mode(shared) == 0o640


def test_no_terminal_and_no_flags_names_both(cli: Any) -> None:
    result = cli("auth", "login", "--json", input="", expect=2)
    message = json.loads(result.stdout)["error"]["message"]
    assert message.endswith("use --email and --password-stdin")


def test_objects_holding_secrets_keep_them_out_of_their_repr() -> None:
    """A repr lands in tracebacks and logs."""
    from resywatch.resy.client import ResyClient
    from resywatch.services.channels.registry import build_channels

    client = ResyClient(base_url="http://127.0.0.1:1", api_key=API_KEY, auth_token=TOKEN)
    channels = build_channels(
        [f"jsons://bob:{PASSWORD}@hooks.example.com/x?token={TOKEN}", f"tgram://1234:{TOKEN}/1"]
    )
    text = repr(client) + repr(channels)
    assert API_KEY not in text and TOKEN not in text and PASSWORD not in text
