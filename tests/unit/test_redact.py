from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from resywatch.config import load_settings
from resywatch.db.engine import Database
from resywatch.redact import MIN_SECRET_LENGTH, redact_text, redact_url, url_secrets

# URL, what is shown, the secret (none of which, nor its tail, may show).
NASTY_URLS = [
    ("postgresql+psycopg://me:s3cret@db:5432/rw", "postgresql+psycopg://***@db:5432/rw", "s3cret"),
    ("postgresql://user:pa@ss-tail@host/db", "postgresql://***@host/db", "pa@ss-tail"),
    (
        "postgresql://user:p@ss@w@rd-tail@host:5432/db",
        "postgresql://***@host:5432/db",
        "p@ss@w@rd-tail",
    ),
    ("postgresql://user:pass word-tail@host/db", "postgresql://***@host/db", "pass word-tail"),
    ("postgresql://user:pa:ss:tail@host/db", "postgresql://***@host/db", "pa:ss:tail"),
    ("postgresql://user:pa/ss/tail@host/db", "postgresql://***@host/db", "pa/ss/tail"),
    ("postgresql://user:pa?ss#tail@host/db", "postgresql://***@host/db", "pa?ss#tail"),
    ("postgresql://us@er:pw-tail@host/db", "postgresql://***@host/db", "us@er:pw-tail"),
    ("postgresql://token-only-tail@host/db", "postgresql://***@host/db", "token-only-tail"),
    ("postgresql://user:@host/db", "postgresql://***@host/db", "user:"),
    ("postgresql://host/db", "postgresql://host/db", None),
    (
        "postgresql://u@host/db?sslmode=require&password=qu:ery/tail",
        "postgresql://***@host/db?sslmode=require&password=***",
        "qu:ery/tail",
    ),
    ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db", None),
    ("sqlite:////home/me@work/a@b.db", "sqlite:////home/me@work/a@b.db", None),
]


@pytest.mark.parametrize(("url", "shown", "secret"), NASTY_URLS)
def test_the_whole_userinfo_up_to_the_last_at_is_masked(
    url: str, shown: str, secret: str | None
) -> None:
    assert redact_url(url) == shown
    if secret:
        assert secret.split("@")[-1] not in shown and "tail" not in shown
        # the same URL inside a message: known secrets and the URL pattern both mask it
        message = f"cannot open the database {url}: connection refused"
        masked = redact_text(message, url_secrets(url))
        assert "tail" not in masked and masked.endswith(": connection refused")


@pytest.mark.parametrize(
    ("url", "user", "password"),
    [
        ("postgresql://user:pa@ss-tail@host/db", "user", "pa@ss-tail"),
        ("postgresql://user:p@ss@w@rd-tail@host:5432/db", "user", "p@ss@w@rd-tail"),
        ("postgresql://user:pass word-tail@host/db", "user", "pass word-tail"),
        ("postgresql://user:pa:ss:tail@host/db", "user", "pa:ss:tail"),
        ("postgresql://user:pa/ss/tail@host/db", "user", "pa/ss/tail"),
        ("postgresql://us@er:pw-tail@host/db", "us@er", "pw-tail"),
        ("postgresql://user:already%40encoded-tail@host/db", "user", "already@encoded-tail"),
    ],
)
def test_database_urls_reach_sqlalchemy_split_at_the_last_at(
    url: str, user: str, password: str
) -> None:
    """SQLAlchemy alone splits at the first "@" and takes the password's tail for the host,
    which the driver then prints: the settings encode the "@"s inside the userinfo."""
    settings = load_settings(flags={"database_url": url}, environ={})
    parsed = make_url(settings.effective_database_url)
    assert (parsed.username, parsed.password, parsed.host) == (user, password, "host")
    assert "tail" not in Database(settings.effective_database_url).display_url
    assert password in settings.secrets()


def test_a_sqlite_path_with_at_signs_is_left_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/me@work/a@b.db"
    assert load_settings(flags={"database_url": url}, environ={}).database_url == url
    assert url_secrets(url) == []
    assert redact_text(f"cannot open {url}: locked") == f"cannot open {url}: locked"


def test_text_masks_known_secrets_and_url_userinfo() -> None:
    text = "token=eyJhbGciOi.payload.sig key=abcdefgh url=postgresql://u:pw@h/d"
    masked = redact_text(text, ["eyJhbGciOi.payload.sig", "abcdefgh", None])
    assert masked == "token=*** key=*** url=postgresql://***@h/d"


def test_longer_secrets_are_masked_first() -> None:
    assert redact_text("abcd-efgh", ["abcd", "abcd-efgh"]) == "***"


def test_one_minimum_length() -> None:
    assert MIN_SECRET_LENGTH == 4
    assert redact_text("a pw b", ["pw"]) == "a pw b"  # too short to mask without garbling
    assert redact_text("a pass b", ["pass"]) == "a *** b"


def test_url_secrets() -> None:
    assert url_secrets("postgresql://u:p%40ss@h/d") == ["u:p%40ss", "u:p@ss", "p%40ss", "p@ss"]
    assert url_secrets("postgresql://h/d?sslpassword=abcd&sslmode=require") == ["abcd"]
    assert url_secrets("postgresql://u@h/d") == ["u"]
    assert url_secrets(None) == []
