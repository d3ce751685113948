"""The dashboard's routes: its page and assets (package data, no build step, nothing from another
origin), the sign-in that opens a session (sessions.py), and `GET /webhooks/v1/products`, our
extension that tells a key which products, envs and app connections it may use (the contract has no
route that lists them). Everything else the page shows it reads from the control-plane routes.
"""
from __future__ import annotations

import json
from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ductape_local.access import AccessDep, key_problem
from ductape_local.envelope import ApiError, success
from ductape_local.dashboard.sessions import COOKIE, MARKER_HEADER, Sessions, cookie_value

MAX_SIGN_IN_BODY = 8192
ASSETS = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8",
          "favicon.svg": "image/svg+xml"}
# The page runs only its own script and style; it may talk only to this server, never be framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                                "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}

router = APIRouter()
page_router = APIRouter(include_in_schema=False)


def _asset(name: str) -> bytes:
    return resources.files("ductape_local.dashboard").joinpath("static", name).read_bytes()


def _sessions(request: Request) -> Sessions:
    return request.app.state.dashboard_sessions


def _require_marker(request: Request) -> None:
    if request.headers.get(MARKER_HEADER.decode()) != "1":
        raise ApiError(403, "dashboard: send the X-Ductape-Dashboard: 1 header (the dashboard's page does)")


@page_router.get("/dashboard")
@page_router.get("/dashboard/")
def page() -> Response:
    return Response(_asset("index.html"), media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


@page_router.get("/dashboard/static/{name}")
def asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise ApiError(404, "dashboard: no such file")
    return Response(_asset(name), media_type=media_type, headers=SECURITY_HEADERS)


async def _bounded_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_SIGN_IN_BODY:
        raise ApiError(413, f"request body: larger than the limit of {MAX_SIGN_IN_BODY} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_SIGN_IN_BODY:
            raise ApiError(413, f"request body: larger than the limit of {MAX_SIGN_IN_BODY} bytes")
    return body


def _key_of(body: bytes) -> str:
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, 'request body: send JSON {"access_key": "..."}') from None
    key = document.get("access_key") if isinstance(document, dict) else None
    if not isinstance(key, str) or not key.strip():
        raise ApiError(422, "access_key: required, a non-empty string")
    return key.strip()


@page_router.post("/dashboard/session")
async def sign_in(request: Request) -> JSONResponse:
    """Exchanges the access key for a session cookie; the answer never carries the key."""
    _require_marker(request)
    key = _key_of(await _bounded_body(request))
    try:
        key.encode("latin-1")  # what an HTTP header can carry; any other text is no key of this server
    except UnicodeEncodeError:
        raise ApiError(401, "unknown access key") from None
    problem = key_problem(request.app.state.catalog, key)
    if problem is not None:
        raise ApiError(401, problem)
    token = _sessions(request).open(key)
    response = JSONResponse(success({"signed_in": True}), headers={"Cache-Control": "no-store"})
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


@page_router.delete("/dashboard/session")
def sign_out(request: Request) -> JSONResponse:
    _require_marker(request)
    _sessions(request).close(cookie_value(request.scope["headers"]))
    response = JSONResponse(success({"signed_in": False}), headers={"Cache-Control": "no-store"})
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/webhooks/v1/products", tags=["control plane"],
            summary="ductape-local extension: the products this access key may use, with envs and app connections")
def list_products(grant: AccessDep) -> dict[str, Any]:
    products = []
    for tag in sorted(grant.products):
        product = grant.catalog.products.get(tag)
        if product is None:
            continue
        products.append({
            "tag": product.tag,
            "envs": list(product.envs),
            "connections": [{"access_tag": c.access_tag, "app": c.app, "envs": dict(c.envs)}
                            for c in sorted(product.connections.values(), key=lambda c: c.access_tag)],
        })
    return success(products)


