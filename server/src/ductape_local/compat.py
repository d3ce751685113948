"""`--compat ductape`: answer only what the hosted Ductape is known to answer (ductape-api.md, "What more
is known about the hosted Ductape"). This module is the one place where those shapes live.

In compat mode the server:

- offers only the contract's three control-plane routes (`POST /webhooks/v1/register`,
  `POST /webhooks/v1/generate-link`, `GET /webhooks/v1/webhooks`), the ingress
  (`/webhooks/v1/process/{uuid}`) and the session-token route below. Every other route answers 404
  "no such route", whoever added it: an allowlist, so that our extensions (delete, deliveries, replay,
  lifecycle, summary, the dashboard, ...) are covered without being named here. `/_local/*` and
  `/openapi.json` stay only with `--test-mode`, the test harness's own switch.
- answers generate-link with the link string as `data`; register's `envs` and the listing's `config`
  rows with only `productEnv, appEnv, url, method, uuid, active` (url masked as in every answer); a
  listing row as `{tag, name, config}`; the listing in one page, however many webhooks the app defines
  (the gate reads every page of our own listing; no `meta.next_cursor`, no `meta.product_envs`;
  `limit`, `cursor` and our `webhook_tag` filter are ignored).
- requires a session token on the control-plane routes (Ductape's SDK exchanges its access key for a
  user token first). The exchange is this project's guess at it, not a confirmed route:
  `POST /webhooks/v1/session` with the access key (`Authorization: Bearer <key>` or
  `x-access-token: <key>`) answers `{"token", "token_type": "Bearer", "expires_in"}`; the token is then
  sent the same way. An access key sent where a token is needed answers 401 saying so. Tokens live in
  memory: a restart or `--session-ttl` seconds end them (401, and the client fetches a new one).
"""
from __future__ import annotations

import json
import secrets
import threading
import time
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ductape_local.access import key_from_headers, key_problem
from ductape_local.config import INGRESS_PREFIX

ROUTE_REGISTER = "/webhooks/v1/register"
ROUTE_GENERATE_LINK = "/webhooks/v1/generate-link"
ROUTE_WEBHOOKS = "/webhooks/v1/webhooks"
ROUTE_SESSION = "/webhooks/v1/session"

# (method, path) of every route compat mode offers besides the ingress; nothing else is reachable.
OFFERED = frozenset({("POST", ROUTE_REGISTER), ("POST", ROUTE_GENERATE_LINK), ("GET", ROUTE_WEBHOOKS),
                     ("POST", ROUTE_SESSION)})
TEST_MODE_PATHS = ("/_local/", "/openapi.json")

# The keys of a registration row as Ductape's own UI sees them.
ROW_KEYS = ("productEnv", "appEnv", "url", "method", "uuid", "active")
LISTING_PAGE = 250  # the contract's largest page: the gate reads the listing in pages of this size

MISSING_TOKEN = ("missing session token: exchange the access key at POST " + ROUTE_SESSION
                 + " and send 'Authorization: Bearer <token>' or 'x-access-token: <token>'")
KEY_NOT_TOKEN = ("an access key is not a session token: this server (compat mode) takes an access key only at "
                 "POST " + ROUTE_SESSION + ", which answers the token to send")
UNKNOWN_TOKEN = "unknown or expired session token: exchange the access key at POST " + ROUTE_SESSION + " again"


# The shapes.


def row(registration: dict[str, Any]) -> dict[str, Any]:
    return {key: registration.get(key) for key in ROW_KEYS}


def shape_register(data: dict[str, Any]) -> dict[str, Any]:
    return {"product": data.get("product"), "access_tag": data.get("access_tag"),
            "webhook_tag": data.get("webhook_tag"), "envs": [row(r) for r in data.get("envs") or []]}


def shape_generate_link(data: dict[str, Any]) -> str:
    return data["link"]


def shape_listing(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"tag": w.get("tag"), "name": w.get("name"), "config": [row(r) for r in w.get("config") or []]}
            for w in data]


SHAPES: dict[str, Callable[[Any], Any]] = {
    ROUTE_REGISTER: shape_register,
    ROUTE_GENERATE_LINK: shape_generate_link,
}


def listing_query(query_string: bytes, cursor: str | None = None) -> bytes:
    """One page of the listing as compat mode reads it: product and access_tag, the largest page, and
    the cursor of the page before (None for the first)."""
    kept = [(name, value) for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
            if name in ("product", "access_tag")]
    kept.append(("limit", str(LISTING_PAGE)))
    if cursor is not None:
        kept.append(("cursor", cursor))
    return urlencode(kept).encode("latin-1")


# Session tokens.


class SessionTokens:
    """Session token -> (access key, expiry), in memory; thread-safe."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}

    def issue(self, key: str) -> str:
        token = "dts_" + secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            # expired tokens go when a new one is made: the table stays as small as the live sessions
            self._tokens = {t: entry for t, entry in self._tokens.items() if entry[1] > now}
            self._tokens[token] = (key, now + self.ttl)
        return token

    def key_of(self, token: str | None) -> str | None:
        if not token:
            return None
        with self._lock:
            entry = self._tokens.get(token)
        if entry is None or entry[1] <= self._clock():
            return None
        return entry[0]


# The gate.


def _envelope_messages(status: int, body: dict[str, Any]) -> tuple[Message, Message]:
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    start = {"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]}
    return start, {"type": "http.response.body", "body": payload}


async def _answer(send: Send, status: int, body: dict[str, Any]) -> None:
    for message in _envelope_messages(status, body):
        await send(message)


def _failure(message: str) -> dict[str, Any]:
    return {"status": False, "meta": {}, "errors": message}


async def _drain(receive: Receive) -> None:
    """Reads a request body that is answered without being used (bounded by the protocol's deadline)."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _collect(app: ASGIApp, scope: Scope, receive: Receive) -> tuple[int, Message, bytes]:
    """Runs `app` on one request; its status, its http.response.start message and its whole body."""
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def collecting_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, collecting_send)
    return start.get("status", 500), start, b"".join(chunks)


class CompatGate:
    """The outermost middleware in compat mode: the allowlist, the session tokens, the answers' shapes."""

    def __init__(self, app: ASGIApp, fastapi_app: Any, tokens: SessionTokens, test_mode: bool = False):
        self.app = app
        self.fastapi_app = fastapi_app
        self.tokens = tokens
        self.test_mode = test_mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        if path.startswith(INGRESS_PREFIX) or (self.test_mode and path.startswith(TEST_MODE_PATHS)):
            await self.app(scope, receive, send)  # the ingress answers its own 404 for a malformed link
            return
        if (method, path) not in OFFERED:
            await _drain(receive)
            await _answer(send, 404, _failure(f"no such route: {method} {path}"))
            return
        credential = key_from_headers(scope["headers"])
        if path == ROUTE_SESSION:
            await self._session(credential, receive, send)
            return
        key = self.tokens.key_of(credential)
        if key is None:
            await _drain(receive)
            problem = MISSING_TOKEN if not credential else (
                KEY_NOT_TOKEN if key_problem(self.fastapi_app.state.catalog, credential) is None else UNKNOWN_TOKEN)
            await _answer(send, 401, _failure(problem))
            return
        headers = [(name, value) for name, value in scope["headers"]
                   if name.lower() not in (b"authorization", b"x-access-token")]
        headers.append((b"authorization", b"Bearer " + key.encode("latin-1")))
        inner = dict(scope, headers=headers)
        if path == ROUTE_WEBHOOKS:
            await self._listing(inner, receive, send)
            return
        await self.app(inner, receive, self._shaping_send(send, SHAPES[path]))

    async def _listing(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Every page of our listing, answered as the one page the hosted Ductape answers. A failure of
        any page is answered as it is. Each page's cursor is one the listing itself answered, so the
        pages end; a cursor answered twice would be a loop, answered 500."""
        query = scope.get("query_string", b"")
        rows: list[Any] = []
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            status, start, body = await _collect(self.app, dict(scope, query_string=listing_query(query, cursor)),
                                                 receive)
            if not start:  # the request ended without an answer (the client went away)
                return
            if status >= 300:
                await send(start)
                await send({"type": "http.response.body", "body": body})
                return
            envelope = json.loads(body)
            rows.extend(envelope.get("data") or [])
            cursor = (envelope.get("meta") or {}).get("next_cursor")
            if not cursor:
                break
            if cursor in seen:
                await _answer(send, 500, _failure("internal server error: the listing's pages do not end"))
                return
            seen.add(cursor)
            receive = _no_body
        envelope["data"] = shape_listing(rows)
        envelope["meta"] = {}
        await _answer(send, status, envelope)

    async def _session(self, credential: str | None, receive: Receive, send: Send) -> None:
        await _drain(receive)
        problem = key_problem(self.fastapi_app.state.catalog, credential)
        if problem is not None:
            await _answer(send, 401, _failure(problem))
            return
        token = self.tokens.issue(credential)
        await _answer(send, 200, {"status": True, "meta": {},
                                  "data": {"token": token, "token_type": "Bearer", "expires_in": int(self.tokens.ttl)}})

    @staticmethod
    def _shaping_send(send: Send, shape: Callable[[Any], Any]) -> Send:
        """A send that holds a successful answer, reshapes its data, and sends it; failures pass as they are."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def shaping_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if message["status"] >= 300:
                    start = None
                    await send(message)
                    return
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            envelope = json.loads(b"".join(chunks))
            envelope["data"] = shape(envelope.get("data"))
            envelope["meta"] = {}
            status = start["status"]
            start = None
            for shaped in _envelope_messages(status, envelope):
                await send(shaped)

        return shaping_send


def install(app: Any, config: Any) -> SessionTokens:
    """Puts the gate in front of everything `app` serves; call it after every other middleware."""
    tokens = SessionTokens(config.session_ttl)
    app.add_middleware(CompatGate, fastapi_app=app, tokens=tokens, test_mode=config.test_mode)
    return tokens
