"""The one place that hides secrets: tokens, API keys, passwords and the secret parts of URLs.

Everything that leaves the process (messages, the JSON error envelope, tracebacks, rows
written to the database) is masked here, with one mask and one minimum length.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextlib import suppress
from typing import Any
from urllib.parse import quote, quote_plus, unquote

MASK = "***"
# Shorter values are not masked in free text: replacing "pw" everywhere would garble every
# message while hiding nothing worth hiding.
MIN_SECRET_LENGTH = 4

_SCHEME = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*)://")
# In free text a URL ends at whitespace; its userinfo, at the last "@" within it. (A password
# with a space is masked as a known secret.)
_TEXT_URL = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://)(?!/)\S*@")
_RUN = re.compile(r"[A-Za-z0-9_\-]+")
_SECRET_KEY = re.compile(
    r"(?i)token|key|secret|pass|pwd|auth|sig|access|webhook|hook|cred|bearer|priv"
)
# Channels resywatch sends itself; every other notification URL is Apprise's.
BUILTIN_NOTIFY_SCHEMES = frozenset({"json", "jsons", "ndjson"})


def split_userinfo(url: str) -> tuple[str, str | None, str]:
    """("scheme://", userinfo or None, the rest after it) for one URL; a text that is not a
    URL comes back as ("", None, text).

    The userinfo ends at the LAST "@": passwords hold "@", ":", "/" and spaces far more
    often than a database name or a query holds an "@" (which must then be written %40).
    """
    scheme = _SCHEME.match(url)
    if scheme is None:
        return "", None, url
    if url[scheme.end() :].startswith("/"):  # no authority (sqlite:///path@x): no userinfo
        return scheme[0], None, url[scheme.end() :]
    userinfo, at, rest = url[scheme.end() :].rpartition("@")
    return scheme[0], userinfo if at else None, rest


def redact_url(url: str) -> str:
    """One URL with its whole userinfo (user, password, token) and the values of its
    secret-named query keys (`password=`, `token=`...) replaced by ***."""
    head, userinfo, rest = split_userinfo(url)
    rest, question, query = rest.partition("?")
    pairs = [
        key + equals + (MASK if value and _SECRET_KEY.search(key) else value)
        for key, equals, value in (pair.partition("=") for pair in query.split("&"))
    ]
    at = f"{MASK}@" if userinfo is not None else ""
    return f"{head}{at}{rest}{question}{'&'.join(pairs) if question else ''}"


def redact_text(text: str, secrets: Iterable[str | None] = ()) -> str:
    """The text with every known secret and the userinfo of any URL masked."""
    return _TEXT_URL.sub(lambda m: f"{m['head']}{MASK}@", mask_values(text, secrets))


def mask_values(text: str, secrets: Iterable[str | None]) -> str:
    """The text with every given secret (longest first) masked."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        if len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, MASK)
    return text


def secret_forms(secret: str) -> list[str]:
    """A secret as typed and as it travels in a form or a URL (percent-encoded), since an
    answer or an error may quote either."""
    return _distinct([secret, quote_plus(secret), quote(secret, safe="")])


def url_secrets(url: str | None) -> list[str]:
    """The secret values a URL carries, to mask wherever they appear alone: the userinfo,
    its password (as written and decoded) and the values of secret-named query keys."""
    if not url:
        return []
    _, userinfo, rest = split_userinfo(url)
    found: list[str] = []
    if userinfo:
        password = userinfo.partition(":")[2]
        found += [userinfo, unquote(userinfo), password, unquote(password)]
    query = rest.partition("?")[2].partition("#")[0]
    for pair in query.split("&") if query else []:
        key, _, value = pair.partition("=")
        if value and _SECRET_KEY.search(key):
            found += [value, unquote(value)]
    return _distinct(found)


def notify_url_secrets(url: str) -> list[str]:
    """A notification URL's secret values, for scrubbing error texts. Services put tokens
    anywhere (tgram://BOTTOKEN/CHAT, discord://ID/TOKEN, pover://USER@TOKEN), so beyond
    `url_secrets` every token-like run counts, and a host that is not a real host name."""
    head, _, rest = split_userinfo(url.strip())
    found = url_secrets(url.strip())
    rest, _, query = rest.partition("?")
    hostport, _, path = rest.partition("/")
    if head and not _is_hostname(hostport):
        found += [hostport, *_RUN.findall(hostport)]
    found += [run for run in _RUN.findall(path if head else url) if _looks_secret(run)]
    for pair in query.split("&") if query else []:
        found += [run for run in _RUN.findall(pair.partition("=")[2]) if _looks_secret(run)]
    return _distinct(f for f in found if len(f) >= MIN_SECRET_LENGTH)


def redact_notify_url(url: str, plugin: Any = None) -> str:
    """A notification URL safe to show. Apprise URLs are rendered by Apprise itself, from
    the instantiated plugin (`plugin`, or built here), with `url(privacy=True)`: it knows
    which of its service's fields are private. A URL Apprise cannot parse shows its scheme
    only. json:// and jsons:// (our webhooks) show host, port and path with the userinfo,
    every query value and token-like path parts masked; ndjson:// shows its file path."""
    url = url.strip()
    scheme = _SCHEME.match(url)
    if scheme is None:
        return MASK
    name = scheme["scheme"].lower()
    if name in ("json", "jsons"):
        return _redact_webhook(url)
    if name == "ndjson":
        return redact_url(url)
    if plugin is None:
        plugin = instantiate_apprise(url)
    if plugin is None:
        return f"{name}://{MASK}"
    # A plugin whose url() forgot a field it declares private is still masked.
    return mask_values(str(plugin.url(privacy=True)), apprise_private_values(plugin, url))


def instantiate_apprise(url: str) -> Any:
    """The Apprise plugin for a URL, or None when Apprise cannot parse it. Nothing is written
    to disk; Apprise logs (which quote whole URLs) go to its own logger, never ours."""
    import logging  # here: `resywatch --help` should not pay for them
    import warnings

    with warnings.catch_warnings():
        # Its email plugin imports the deprecated imghdr module: nothing our users can fix.
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise

        logging.getLogger("apprise").propagate = False
        asset = apprise.AppriseAsset(storage_mode="memory")
        return apprise.Apprise.instantiate(url, asset=asset)


def apprise_private_values(plugin: Any, url: str) -> list[str]:
    """The values of the fields an Apprise plugin declares private: as the plugin holds
    them, and as Apprise parses the URL (the one given, and the plugin's canonical one, for
    native forms such as https://discord.com/api/webhooks/...)."""
    fields = {**getattr(plugin, "template_tokens", {}), **getattr(plugin, "template_args", {})}
    names = [
        str(spec.get("map_to", name))
        for name, spec in fields.items()
        if isinstance(spec, dict) and spec.get("private")
    ]
    sources: list[dict[str, Any]] = [{name: getattr(plugin, name, None) for name in names}]
    with suppress(Exception):  # a plugin's parser failing must not break showing its URL
        sources.append(plugin.parse_url(url) or {})
        sources.append(plugin.parse_url(plugin.url(privacy=False)) or {})
    found: list[str] = []
    for parsed in sources:
        for name in names:
            value = parsed.get(name)
            values = value if isinstance(value, list | tuple | set) else [value]
            found += [str(v) for v in values if isinstance(v, str | int) and type(v) is not bool]
    return _distinct(found)


def _redact_webhook(url: str) -> str:
    head, userinfo, rest = split_userinfo(url)
    rest, hash_, fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    hostport, slash, path = rest.partition("/")
    masked_path = _RUN.sub(lambda m: MASK if _looks_secret(m[0]) else m[0], path)
    pairs = [
        key + equals + (MASK if value else "")
        for key, equals, value in (pair.partition("=") for pair in query.split("&"))
    ]
    return (
        f"{head}{MASK + '@' if userinfo is not None else ''}{hostport}{slash}{masked_path}"
        f"{question}{'&'.join(pairs) if question else ''}{hash_}{MASK if fragment else ''}"
    )


def _looks_secret(run: str) -> bool:
    """Token-like: letters mixed with digits (8+), long digit ids (10+), anything 24+."""
    letters = any(c.isalpha() for c in run)
    digits = any(c.isdigit() for c in run)
    return (
        len(run) >= 24
        or (len(run) >= 8 and letters and digits)
        or (len(run) >= 10 and run.isdigit())
    )


def _is_hostname(hostport: str) -> bool:
    host = hostport.rsplit(":", 1)[0] if re.search(r":\d+$", hostport) else hostport
    return "." in host or host == "localhost" or host.startswith("[")


def _distinct(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))
