"""Ductape's response envelope, for successes and for every kind of failure."""
from __future__ import annotations

import json
from typing import Any, Iterable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ductape_local.auth_digest import mask_url


# Only these fields' values may be quoted back in an error; anything else (auth values, unknown
# keys that may hold a secret) is named but never echoed.
ECHOABLE_FIELDS = frozenset(
    {"product", "access_tag", "webhook_tag", "env", "slug", "url", "method", "limit", "cursor",
     "route", "status", "count", "retry_after",
     # the lifecycle routes (lifecycle.py)
     "grace_seconds", "max_attempts", "dry_run", "received_after", "received_before", "registration_uuid",
     "event_ids", "expected_generation"}
)
MAX_ECHO = 120


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None,
                 meta: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.meta = meta or {}


def success(data: Any, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"status": True, "meta": meta or {}, "data": data}


def failure_response(status: int, message: str, headers: dict[str, str] | None = None,
                     meta: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse({"status": False, "meta": meta or {}, "errors": message}, status_code=status, headers=headers)


def quoted(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_ECHO else text[:MAX_ECHO] + "..."


def field_path(loc: Iterable[Any]) -> str:
    """("body", "envs", 1, "url") -> "envs[1].url"; the request part (body, query) is implied."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "request body"


def describe_validation_error(error: dict[str, Any]) -> str:
    loc = tuple(error.get("loc", ()))
    message = error.get("msg", "invalid").removeprefix("Value error, ")
    if error.get("type") == "missing":
        message = "is required"
    elif error.get("type") == "extra_forbidden":
        message = "is not a known field"
    elif error.get("type") in ("model_attributes_type", "dict_type") and len(loc) <= 1:
        message = "must be a JSON object"
    text = f"{field_path(loc)}: {message}"
    value = error.get("input")
    last = loc[-1] if loc else None
    if isinstance(last, int) and len(loc) > 1:  # an item of a list field: event_ids[3]
        last = loc[-2]
    if (
        last in ECHOABLE_FIELDS
        and "auth" not in loc
        and error.get("type") not in ("missing", "extra_forbidden")
        and isinstance(value, (str, int, float, bool))
    ):
        text += f" (got {quoted(mask_url(value) if last == 'url' and isinstance(value, str) else value)})"
    return text


async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return failure_response(exc.status, exc.message, exc.headers, exc.meta)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    malformed = [e for e in errors if e.get("type") == "json_invalid"]
    if malformed:
        detail = (malformed[0].get("ctx") or {}).get("error", "not valid JSON")
        return failure_response(400, f"malformed JSON in the request body: {detail}")
    unparsed = _unparsed_body(errors)
    if unparsed is not None:
        # FastAPI parses a body as JSON only when the Content-Type says so; a body sent without it
        # arrives as text, and its author deserves the real reason rather than "must be an object".
        try:
            json.loads(unparsed)
        except ValueError as err:
            return failure_response(400, f"malformed JSON in the request body: {err.args[0].split(':')[0]}")
        return failure_response(422, "request body: send it with Content-Type: application/json")
    return failure_response(422, "; ".join(describe_validation_error(e) for e in errors))


def _unparsed_body(errors: list[dict[str, Any]]) -> str | bytes | None:
    """The raw body when the whole body failed validation because it was never parsed as JSON."""
    for error in errors:
        loc = tuple(error.get("loc", ()))
        value = error.get("input")
        if loc == ("body",) and isinstance(value, (str, bytes)):
            return value
    return None


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 404:
        message = f"no such route: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return failure_response(exc.status_code, message, getattr(exc, "headers", None))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Any other exception is answered, and logged as one line, by limits.Guard.
