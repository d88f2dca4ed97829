"""One place that hides secrets: tokens, API keys and database passwords."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"

# scheme://user:password@host -> scheme://user:***@host, without parsing (the URL may be invalid).
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@\s]*:)(?P<password>[^@\s]*)@")


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", url)


def redact_text(text: str, secrets: Iterable[str | None] = ()) -> str:
    """The text with every known secret value and any URL password masked."""
    for secret in secrets:
        # Very short values would mask unrelated text; real keys and tokens are long.
        if secret and len(secret) >= 6:
            text = text.replace(secret, MASK)
    return redact_url(text)


def url_password(url: str | None) -> str | None:
    """The password in a URL, if it has one."""
    match = _URL_PASSWORD.search(url or "")
    return match["password"] if match and match["password"] else None
