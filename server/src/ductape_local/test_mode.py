"""Routes and accounting that exist only with --test-mode: request counts and injected faults.

Tests and benchmarks use the counts to prove that no write happened, and the faults to exercise a
client's retries over real HTTP. Injecting or clearing faults takes an access key (any key of the
seed): whoever merely reaches the port cannot make every tenant's requests fail.
"""
from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ductape_local.access import AccessDep
from ductape_local.envelope import ApiError, failure_response, quoted, success

PREFIX = "/_local"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HTTP_METHODS = WRITE_METHODS | {"GET"}


@dataclass
class Fault:
    status: int
    remaining: int
    retry_after: int | None
    crash: bool = False


class InjectedCrash(RuntimeError):
    """What a `crash` fault raises: its text holds the request's headers and body, as an unlucky
    exception's would, so that tests can prove that no failure writes a request value to the log."""


class TestModeState:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._reads = 0
        self._writes = 0
        self._faults: dict[str, Fault] = {}

    def count(self, route: str, method: str) -> None:
        with self._lock:
            self._requests[route] += 1
            if method == "GET":
                self._reads += 1
            elif method in WRITE_METHODS:
                self._writes += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": dict(self._requests), "reads": self._reads, "writes": self._writes}

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._reads = self._writes = 0

    def add_fault(self, route: str, fault: Fault) -> None:
        with self._lock:
            self._faults[route] = fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def take_fault(self, route: str) -> Fault | None:
        with self._lock:
            fault = self._faults.get(route)
            if fault is None:
                return None
            fault.remaining -= 1
            if fault.remaining <= 0:
                del self._faults[route]
            return fault


def route_templates(app: FastAPI) -> list[tuple[str, str, re.Pattern[str]]]:
    """(method, path template, path pattern) of every documented route, from the app's OpenAPI schema.

    The schema is FastAPI's public, stable view of the routes, whatever way routers were included.
    """
    schema = app.openapi()
    cached = getattr(app.state, "route_templates", None)
    if cached is not None and cached[0] is schema:
        return cached[1]
    templates = []
    for path, operations in schema.get("paths", {}).items():
        pattern = re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path)) + "$")
        for method in operations:
            if method.upper() in HTTP_METHODS:
                templates.append((method.upper(), path, pattern))
    app.state.route_templates = (schema, templates)
    return templates


def route_template(app: FastAPI, method: str, path: str) -> str | None:
    """The template of the route that will answer, e.g. /webhooks/v1/registrations/{uuid}."""
    for route_method, template, pattern in route_templates(app):
        if route_method == method and pattern.match(path):
            return template
    return None


def known_routes(app: FastAPI) -> list[str]:
    return [f"{method} {template}" for method, template, _ in route_templates(app)]


class RequestAccounting:
    """Counts every request to a contract route and answers injected faults before the route runs."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI, state: TestModeState):
        self.app = app
        self.fastapi_app = fastapi_app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        template = route_template(self.fastapi_app, scope["method"], scope["path"])
        if template is None:
            await self.app(scope, receive, send)
            return
        route = f"{scope['method']} {template}"
        self.state.count(route, scope["method"])
        fault = self.state.take_fault(route)
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.crash:
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    break
            raise InjectedCrash(f"headers={scope['headers']!r} body={body!r}")
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
        if fault.status == 502:
            # A 502 comes from a gateway in front of the API, which knows nothing of the envelope; the
            # API's own 502 (in the envelope) means that a provider refused a registration.
            response = PlainTextResponse("502 Bad Gateway (fault injected by test mode)", 502, headers)
        else:
            response = failure_response(fault.status, f"fault injected by test mode: HTTP {fault.status}", headers)
        await response(scope, receive, send)


class FaultRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    route: StrictStr
    status: int = Field(ge=400, le=599)
    count: int = Field(default=1, ge=1)
    retry_after: int | None = Field(default=None, ge=0)
    crash: bool = False


router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/stats")
def stats(request: Request) -> dict[str, Any]:
    return success(request.app.state.test_mode.snapshot())


@router.post("/stats/reset")
def reset_stats(request: Request) -> dict[str, Any]:
    request.app.state.test_mode.reset()
    return success(request.app.state.test_mode.snapshot())


@router.post("/faults")
def add_fault(body: FaultRequest, request: Request, _: AccessDep) -> dict[str, Any]:
    routes = known_routes(request.app)
    if body.route not in routes:
        raise ApiError(422, f"route: no route {quoted(body.route)}; known routes: {', '.join(routes)}")
    request.app.state.test_mode.add_fault(body.route, Fault(body.status, body.count, body.retry_after, body.crash))
    return success(body.model_dump())


@router.delete("/faults")
def clear_faults(request: Request, _: AccessDep) -> dict[str, Any]:
    request.app.state.test_mode.clear_faults()
    return success({})


def install(app: FastAPI) -> None:
    app.state.test_mode = TestModeState()
    app.include_router(router)
    app.add_middleware(RequestAccounting, fastapi_app=app, state=app.state.test_mode)
