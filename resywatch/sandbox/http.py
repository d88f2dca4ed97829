"""Request parsing and error answers shared by the Resy routes and the control routes."""

from __future__ import annotations

import json
from datetime import date
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from resywatch.sandbox.payloads import dumps, error_body

JSON_TYPE = "application/json"


class ApiError(Exception):
    """Raised by handlers to answer Resy's error shape with ``status``."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = error_body(status, message, **extra)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(obj), status, headers, media_type=JSON_TYPE)


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, "Malformed JSON body") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "JSON body must be an object")
    return body


async def query_or_json(request: Request) -> dict[str, Any]:
    """GET sends query params, POST a JSON body (query params still count, the body wins)."""
    params: dict[str, Any] = dict(request.query_params)
    if request.method == "POST":
        params.update(await json_body(request))
    return params


async def form_body(request: Request) -> dict[str, str]:
    """An urlencoded form body (parsed here to avoid depending on python-multipart)."""
    raw = (await request.body()).decode("utf-8", "replace")
    return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def int_param(params: dict[str, Any], name: str, default: int | None = None) -> int:
    value = params.get(name)
    if value is None or value == "":
        if default is None:
            raise ApiError(400, f"Missing parameter: {name}")
        return default
    if isinstance(value, bool):
        raise ApiError(400, f"Invalid parameter: {name}")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ApiError(400, f"Invalid parameter: {name}") from exc


def date_param(params: dict[str, Any], name: str, default: date | None = None) -> date:
    value = params.get(name)
    if value is None or value == "":
        if default is None:
            raise ApiError(400, f"Missing parameter: {name}")
        return default
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise ApiError(400, f"Invalid parameter: {name}") from exc
