"""Notification URLs are shown with Apprise's own privacy rendering, for every service Apprise
lists with private fields; our own json:// and ndjson:// URLs are masked by us."""

from __future__ import annotations

import random
import re
import string
import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from resywatch.redact import MASK, instantiate_apprise, notify_url_secrets, redact_notify_url
from resywatch.services.channels.registry import build_channels

TOKEN = "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"

# Each URL with the secret values it holds; forms the old hand-written masking let through
# (letters-only tokens, short ids, native https:// webhook URLs) are among them.
CASES = [
    (
        "discord://1234567890123456/abcdefghijklmnopqrstuvwxyz012345",
        ["1234567890123456", "abcdefghijklmnopqrstuvwxyz012345"],
    ),
    ("discord://812345678/kmrtqzwyupsdfgh", ["812345678", "kmrtqzwyupsdfgh"]),
    (
        "https://discord.com/api/webhooks/812345678/kmrtqzwyupsdfgh",
        ["812345678", "kmrtqzwyupsdfgh"],
    ),
    (
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general",
        ["T1JJ3T3L2", "A1BRTD4JD", "TIiajkdnlazkcOXrIdevi7FQ"],
    ),
    (
        "slack://TABCDEFG/BHIJKLMN/qrstuvwxyzabcdefghijklmn",
        ["TABCDEFG", "BHIJKLMN", "qrstuvwxyzabcdefghijklmn"],
    ),
    (
        "https://hooks.slack.com/services/TABCDEFG/BHIJKLMN/qrstuvwxyzabcdefghijklmn",
        ["TABCDEFG", "BHIJKLMN", "qrstuvwxyzabcdefghijklmn"],
    ),
    ("slack://xoxb-1234-1234-abcdefghij/#general", ["xoxb-1234-1234-abcdefghij"]),
    (f"tgram://123456789:{TOKEN}/12345", [f"123456789:{TOKEN}", TOKEN]),
    ("tgram://987654:abcdefghijklmnop/", ["987654:abcdefghijklmnop", "abcdefghijklmnop"]),
    (
        "pover://uQiRzpo4DXghDmr9QzzfQu27cmVRsG@azGDORePK8gMaC0QOYAMyEEuzJnyUi",
        ["uQiRzpo4DXghDmr9QzzfQu27cmVRsG", "azGDORePK8gMaC0QOYAMyEEuzJnyUi"],
    ),
    (
        "pover://abcdefghijklmnopqrstuvwxyzabcd@zyxwvutsrqponmlkjihgfedcbazyxw",
        ["abcdefghijklmnopqrstuvwxyzabcd", "zyxwvutsrqponmlkjihgfedcbazyxw"],
    ),
    ("mailtos://me:app-pass-word@gmail.com?to=a@b.com", ["app-pass-word"]),
    ("ntfy://user:hunterpass@ntfy.sh/topic", ["hunterpass"]),
    ("ntfy://ntfy.sh/topic?token=tk_abcdefghijkl", ["tk_abcdefghijkl"]),
    ("gotify://gotify.example.com/Aqrstuvwxyzab", ["Aqrstuvwxyzab"]),
    ("mastodon://mytokensecretabc@mastodon.social", ["mytokensecretabc"]),
    ("json://u:hunter2@hooks.example.com/x", ["hunter2", "u:hunter2"]),
    ("jsons://hooks.example.com/x?token=abcdefgh&sig=qrstuvwx", ["abcdefgh", "qrstuvwx"]),
    ("json://bob@hooks.example.com/hook?api_key=zzzzzzzz", ["bob", "zzzzzzzz"]),
    (f"jsons://hooks.example.com/services/{TOKEN}", [TOKEN]),
    ("tgram://notatoken-topsecretvalue/", ["notatoken-topsecretvalue"]),  # Apprise refuses it
    ("bogus://topsecret99@example.com/x", ["topsecret99"]),
]


@pytest.mark.parametrize(("url", "secrets"), CASES)
def test_no_secret_is_shown(url: str, secrets: list[str]) -> None:
    shown = redact_notify_url(url)
    for secret in secrets:
        assert secret not in shown and quote(secret, safe="") not in shown, shown
    # and the channel built from it (what `notify channels list` prints) agrees
    if instantiate_apprise(url) is not None or url.startswith("json"):
        (channel,) = build_channels([url]).items
        assert channel.display == shown


@pytest.mark.parametrize(
    "url",
    [
        "discord://1234567890123456/abcdefghijklmnopqrstuvwxyz012345",
        f"tgram://123456789:{TOKEN}/12345",
        "pover://uQiRzpo4DXghDmr9QzzfQu27cmVRsG@azGDORePK8gMaC0QOYAMyEEuzJnyUi",
        "mailtos://me:app-pass-word@gmail.com?to=a@b.com",
    ],
)
def test_apprise_urls_are_rendered_by_apprise(url: str) -> None:
    plugin = instantiate_apprise(url)
    assert redact_notify_url(url) == plugin.url(privacy=True)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("json://localhost:8080/hook", "json://localhost:8080/hook"),
        ("json://u:hunter2@hooks.example.com/x", "json://***@hooks.example.com/x"),
        ("jsons://h.example.com/x?token=abc&mode=1", "jsons://h.example.com/x?token=***&mode=***"),
        (f"jsons://h.example.com/hooks/{TOKEN}#frag", "jsons://h.example.com/hooks/***#***"),
        ("ndjson:///var/lib/resywatch/n.ndjson", "ndjson:///var/lib/resywatch/n.ndjson"),
        ("ndjson://-", "ndjson://-"),
        ("bogus://topsecret99@example.com/x", f"bogus://{MASK}"),
        ("not a url at all 8f2a9c1d7e", MASK),
    ],
)
def test_our_own_and_unparseable_urls(url: str, shown: str) -> None:
    assert redact_notify_url(url) == shown


def test_the_secrets_of_a_url_are_known_for_scrubbing() -> None:
    secrets = notify_url_secrets(f"tgram://123456789:{TOKEN}/1")
    assert TOKEN in secrets
    assert "ntfy.sh" not in notify_url_secrets("ntfy://ntfy.sh/topic?token=tk_abcdefgh")
    assert "tk_abcdefgh" in notify_url_secrets("ntfy://ntfy.sh/topic?token=tk_abcdefgh")


# --- every service Apprise lists with private fields -----------------------------------------


def _schemas() -> list[dict[str, Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise

        return list(apprise.Apprise().details()["schemas"])


def _private(spec: dict[str, Any]) -> bool:
    return bool(spec.get("private"))


class _Values:
    """Values for a template's tokens. Private ones are random and shaped the way real keys
    are (letters only first: the hardest for a hand-written masker), the first shape the
    token's regex accepts; public ones are plain."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def _run(self, alphabet: str, n: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def shapes(self) -> Iterator[str]:
        lower, alnum, hexd = (
            string.ascii_lowercase,
            string.ascii_letters + string.digits,
            "0123456789abcdef",
        )
        yield self._run(lower, 14)
        yield self._run(alnum, 30)
        yield self._run(string.digits, 12)
        yield self._run(hexd, 32)
        yield self._run(string.ascii_uppercase + string.digits, 24)
        yield f"{self._run(string.digits, 9)}:{self._run(alnum, 35)}"
        yield "-".join(self._run(hexd, n) for n in (8, 4, 4, 4, 12))
        yield f"{self._run(lower, 8)}@example.com"
        yield f"+1555{self._run(string.digits, 7)}"
        yield f"{self._run(lower, 6)}-{self._run(lower, 6)}"
        yield f"{self._run(lower, 4)}_{self._run(alnum, 20)}"
        yield f"{self._run(lower, 10)}.{self._run(lower, 4)}"
        yield self._run(lower, 6)

    def value(self, name: str, spec: dict[str, Any], schema: str) -> str | None:
        kind = str(spec.get("type", "string"))
        if (schema, name) in _HINTS:  # formats a plugin checks in code, not in its template
            return _HINTS[schema, name](self)
        if not _private(spec) and name in _PUBLIC:
            return _PUBLIC[name]
        if kind.startswith("choice"):
            values = sorted(spec.get("values") or [])
            return str(spec.get("default") or (values[0] if values else ""))
        if kind in ("int", "float"):
            return str(max(int(spec.get("min", 1)), 1))
        if kind == "bool":
            return "yes"
        regex = spec.get("regex")
        for shape in self.shapes():
            flags = re.IGNORECASE if regex and "i" in (regex[1] or "") else 0
            if regex is None or re.match(regex[0], shape, flags):
                return shape
        return None


_PUBLIC = {"host": "example.com", "port": "8080", "user": "someuser", "path": "/"}
_HINTS = {
    ("goalerts", "targets"): lambda v: "-".join(
        v._run("0123456789abcdef", n) for n in (8, 4, 4, 4, 12)
    ),
    ("ntfys", "token"): lambda v: "tk_" + v._run(string.ascii_lowercase, 14),
}


def _fill(
    template: str, schema: str, tokens: dict[str, Any], values: _Values
) -> tuple[str, list[str]] | None:
    """A URL from an Apprise template, and the values it holds in private fields."""
    url, private = template.replace("{schema}", schema), []
    for name in re.findall(r"{(\w+)}", url):
        spec = dict(tokens.get(name) or {"type": "string"})
        if str(spec.get("type", "")).startswith("list") and spec.get("group"):
            member = sorted(spec["group"])[0]
            spec = {
                **tokens.get(member, {}),
                "private": _private(spec) or _private(tokens.get(member, {})),
            }
        value = values.value(name, spec, schema)
        if value is None:
            return None
        if _private(spec):
            private.append(value)
        url = url.replace("{" + name + "}", value, 1)
    return url, private


def test_every_apprise_service_with_private_fields_is_masked() -> None:
    values = _Values(seed=1207)
    checked: set[str] = set()
    services: set[str] = set()
    leaks: list[str] = []
    for schema in _schemas():
        tokens = schema["details"]["tokens"]
        if not any(_private(spec) for spec in tokens.values()):
            continue
        protocols = [*(schema.get("secure_protocols") or ()), *(schema.get("protocols") or ())]
        services.add(protocols[0])
        for template in schema["details"]["templates"]:
            filled = _fill(template, protocols[0], tokens, values)
            if filled is None or instantiate_apprise(filled[0]) is None:
                continue
            url, private = filled
            shown = redact_notify_url(url)
            leaks += [
                f"{url} -> {shown}" for secret in private if len(secret) >= 4 and secret in shown
            ]
            checked.add(protocols[0])
    assert not leaks, "\n".join(leaks)
    # The generated URLs reach most services, and the ones users ask about most.
    assert {"discord", "slack", "tgram", "pover", "mailtos", "ntfys", "gotifys"} <= checked
    assert len(checked) >= 0.7 * len(services), sorted(services - checked)


def test_channel_errors_are_scrubbed_of_apprise_private_values() -> None:
    """A native webhook URL holds no token-like run a heuristic would catch: the plugin's
    private fields are scrubbed from the channel's error texts all the same."""
    (channel,) = build_channels(["https://discord.com/api/webhooks/812345678/kmrtqzwyupsdfgh"])
    text = channel.describe(RuntimeError("POST .../812345678/kmrtqzwyupsdfgh: 401"))
    assert "kmrtqzwyupsdfgh" not in text and "812345678" not in text
