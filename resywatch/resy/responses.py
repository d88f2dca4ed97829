"""Resy's answers read: bodies parsed into the models, status codes turned into typed errors
(RESY_API.md §6), `Retry-After` read."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from resywatch.redact import redact_text
from resywatch.resy import errors

Model = TypeVar("Model", bound=BaseModel)


def parse(model: type[Model], body: bytes, endpoint: str) -> Model:
    """Parse and validate in one pass: fields no model names are skipped, never built."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        if first["type"] == "json_invalid":
            raise errors.ServerError(f"{endpoint} answered with a body that is not JSON") from None
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise errors.ResyError(
            f"unexpected response from {endpoint}: {where}: {first['msg']}"
        ) from None


LOGIN_PATHS = frozenset({"/3/auth/password", "/4/auth/password"})
REFRESH_PATH = "/3/auth/refresh"


def error_for(
    response: httpx.Response, path: str, secrets: list[str], *, user: bool = False
) -> errors.ResyError:
    """Resy's status codes (RESY_API.md §6) as typed errors. Resy's own words are quoted
    with every secret the request carried masked: an answer may echo the request back.
    `user`: the call carried the user's token, so a refusal means the token, not the API key."""
    status = response.status_code
    body = _json_or_none(response)
    message = body.get("message") if isinstance(body, dict) else None
    message = redact_text(str(message), secrets) if message else None
    # `X-CDN: Imperva` comes on Resy's ordinary answers too (200s, its JSON 403): only an
    # answer that is not Resy's JSON is the firewall's (chi-chi's isImpervaChallenge).
    waf = body is None
    detail = f"{path} answered {status}" + (f": {message}" if message else "")
    if status in (301, 302, 303, 307, 308) or status == 419:
        return _refusal(path, status, detail, user=user)
    if status == 402:
        return errors.PaymentRequired(status=status)
    if status == 403:
        if waf:
            return errors.Blocked(f"Resy's firewall blocked the request ({detail})", status=status)
        return errors.PaymentNotAccepted(message or None, status=status)
    if status == 404:
        if path == "/3/book":
            return errors.SlotGone(status=status)
        return errors.NotFound(detail, status=status)
    if status == 412:
        booked = body if isinstance(body, dict) else {}
        # "You already hold it": Resy names the reservation under `specs` (AbhiSivaprasad's
        # client, a public zod schema of the body); older samples put it at the top level.
        specs = booked.get("specs")
        held = specs if isinstance(specs, dict) and "reservation_id" in specs else booked
        token = held.get("resy_token")
        return errors.Conflict(
            detail,
            reservation_id=_int_or_none(held.get("reservation_id")),
            resy_token=token if isinstance(token, str) else None,
        )
    if status == 429:
        return errors.RateLimited(detail, retry_after=_retry_after(response))
    if status == 502 and not _challenge(response, waf):
        # Resy's 502 is its answer to malformed or unexpected input (Cierge's
        # ErrBadGateway): asking again the same way cannot help, and Resy is not down.
        return errors.BadRequest(f"Resy could not use the request ({detail})", status=status)
    if status >= 500:
        cause = " (firewall challenge)" if _challenge(response, waf) else ""
        return errors.ServerError(detail + cause, status=status)
    return errors.BadRequest(detail, status=status)


def _challenge(response: httpx.Response, not_json: bool) -> bool:
    """A firewall page: not Resy's JSON, and HTML or a page marked by the CDN (the header
    alone proves nothing: Resy's own answers carry it, empty ones included)."""
    html = "html" in response.headers.get("content-type", "")
    marked = response.headers.get("x-cdn", "").lower() == "imperva" and bool(response.content)
    return not_json and (html or marked)


def _refusal(path: str, status: int, detail: str, *, user: bool) -> errors.AuthError:
    """A 419 or a redirect to the login page, said in terms of what the user can fix."""
    if path in LOGIN_PATHS and status == 419:
        # resolved-bot: "Resy servers return a 419 if the auth parameters were invalid".
        return errors.LoginRefused(
            f"Resy refused the login ({status}): wrong email or password (or a stale "
            "`[resy] api_key`, if you set one)",
            status=status,
        )
    if path == REFRESH_PATH:
        return errors.RefreshRefused(
            f"Resy refused to refresh the token ({detail}): run `resywatch auth login`",
            status=status,
        )
    if user:
        return errors.AuthExpired(
            f"Resy no longer accepts your auth token ({detail}; tokens last about 45 days): "
            "run `resywatch auth login`",
            status=status,
        )
    # No user token was sent: only the API key can have been refused.
    return errors.AuthError(
        f"Resy refused the API key ({detail}): check `[resy] api_key` or RESYWATCH_RESY_API_KEY",
        status=status,
    )


def _json_or_none(response: httpx.Response) -> Any:
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After as seconds or as an HTTP date; anything else counts as absent."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
