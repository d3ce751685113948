"""Dashboard sessions: a sign-in exchanges the access key for a random session token, kept in an
HttpOnly, SameSite=Strict cookie that the page's JavaScript cannot read.

The token stands for the key only on requests that also carry the `X-Ductape-Dashboard: 1` header
(which a page of another origin cannot send without a CORS preflight that this server never grants):
`SessionAuth` then adds `Authorization: Bearer <key>` to the request before anything else sees it, so
that every control-plane route authenticates the dashboard exactly as it authenticates any client.
Sessions live in this process's memory only: a restart signs everybody out.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from ductape_local.config import INGRESS_PREFIX

COOKIE = "ductape_dashboard"
MARKER_HEADER = b"x-ductape-dashboard"
IDLE_SECONDS = 3600.0
LIFETIME_SECONDS = 12 * 3600.0
MAX_SESSIONS = 1024
# The paths whose requests a session may authenticate: the control plane (less the ingress) only.
CONTROL_PREFIX = "/webhooks/v1/"


@dataclass
class _Session:
    key: str
    created: float
    used: float


class Sessions:
    """token -> access key, bounded in number, idle time and lifetime."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS, lifetime_seconds: float = LIFETIME_SECONDS,
                 max_sessions: int = MAX_SESSIONS):
        self.idle_seconds = idle_seconds
        self.lifetime_seconds = lifetime_seconds
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, key: str) -> str:
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            self._sessions[token] = _Session(key, now, now)
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)  # the least recently used
        return token

    def key_for(self, token: str | None) -> str | None:
        if not token:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if now - session.used > self.idle_seconds or now - session.created > self.lifetime_seconds:
                del self._sessions[token]
                return None
            session.used = now
            self._sessions.move_to_end(token)
            return session.key

    def close(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._sessions.pop(token, None)


def cookie_value(raw_headers: list[tuple[bytes, bytes]], name: str = COOKIE) -> str | None:
    for header, value in raw_headers:
        if header.lower() != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            cookie, equals, content = part.strip().partition("=")
            if equals and cookie == name:
                return content.strip()
    return None


def _carries_key(raw_headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name.lower() in (b"authorization", b"x-access-token") for name, _ in raw_headers)


def _marked(raw_headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name.lower() == MARKER_HEADER and value.strip() == b"1" for name, value in raw_headers)


class SessionAuth:
    """Pure ASGI, outermost: a control-plane request with a live session cookie and the dashboard's
    header, and no key of its own, is given the session's key as its Authorization header."""

    def __init__(self, app: ASGIApp, sessions: Sessions):
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            headers = scope["headers"]
            if (path.startswith(CONTROL_PREFIX) and not path.startswith(INGRESS_PREFIX)
                    and _marked(headers) and not _carries_key(headers)):
                key = self.sessions.key_for(cookie_value(headers))
                if key is not None:
                    scope = dict(scope, headers=[*headers, (b"authorization", b"Bearer " + key.encode("latin-1"))])
        await self.app(scope, receive, send)
