from __future__ import annotations

from resywatch.redact import redact_text, redact_url, url_password


def test_url_password_is_masked() -> None:
    assert redact_url("postgresql+psycopg://me:s3cret@db:5432/rw") == (
        "postgresql+psycopg://me:***@db:5432/rw"
    )
    assert redact_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert redact_url("postgresql://me@db/rw") == "postgresql://me@db/rw"


def test_text_masks_known_secrets_and_url_passwords() -> None:
    text = "token=eyJhbGciOi.payload.sig key=abcdefgh url=postgresql://u:pw@h/d"
    masked = redact_text(text, ["eyJhbGciOi.payload.sig", "abcdefgh", None])
    assert masked == "token=*** key=*** url=postgresql://u:***@h/d"


def test_very_short_values_are_not_treated_as_secrets() -> None:
    assert redact_text("a b c", ["a"]) == "a b c"


def test_url_password_extraction() -> None:
    assert url_password("postgresql://u:pw@h/d") == "pw"
    assert url_password("postgresql://u@h/d") is None
    assert url_password(None) is None
