"""Scripted HTTP exchanges for the client's unit tests: a sender for the client's transport (_http) that
answers from a list.

    http = ScriptedHTTP([answer(503), answer(200, data=[...])])
    client = DuctapeClient(API_URL, KEY, session=http.session, sleep=http.sleeps.append, warn=http.warnings.append)

Every request the client sends is recorded (method, URL, headers, JSON body, timeout, verify); an
exception in the script is raised as the transport's error; a request past the script's end fails the
test. Nothing reaches the network.
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ansible_collections.ductape.webhooks.plugins.module_utils import _http


class Answer:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]):
        self.status = status
        self.body = body
        self.headers = headers


def answer(status: int = 200, data: Any = None, *, errors: str | None = None, meta: dict | None = None,
           headers: dict[str, str] | None = None, raw: bytes | str | None = None) -> Answer:
    """One HTTP answer in Ductape's envelope (or `raw` bytes as they are)."""
    all_headers = {"Content-Type": "application/json"}
    if raw is not None:
        body = raw.encode("utf-8") if isinstance(raw, str) else raw
        all_headers["Content-Type"] = "text/html; charset=utf-8"
    elif status < 400:
        body = json.dumps({"status": True, "meta": meta or {}, "data": data}).encode("utf-8")
    else:
        body = json.dumps({"status": False, "meta": meta or {}, "errors": errors or f"HTTP {status}"}).encode("utf-8")
    all_headers.update(headers or {})
    return Answer(status, body, all_headers)


class Sent:
    """One request as the client sent it."""

    def __init__(self, request: _http.PreparedRequest):
        self.method = request.method
        self.url = request.url
        parts = urlsplit(request.url)
        self.path = parts.path
        self.query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        self.headers = _http.Headers(request.headers.items())
        body = request.body
        if isinstance(body, bytes):
            body = body.decode("utf-8")
        self.json = json.loads(body) if body else None
        self.timeout = request.timeout
        self.verify = request.verify

    def __repr__(self) -> str:
        return f"<{self.method} {self.url}>"


_REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests"}


def _response(item: Answer) -> _http.Response:
    """The transport's Response that a scripted Answer stands for."""
    return _http.Response(item.status, _REASONS.get(item.status, ""), _http.Headers(item.headers.items()), item.body)


class _ScriptedSender:
    def __init__(self, owner: "ScriptedHTTP"):
        self.owner = owner

    def send(self, request: _http.PreparedRequest) -> _http.Response:
        self.owner.sent.append(Sent(request))
        if not self.owner.script:
            raise AssertionError(f"unexpected request past the script's end: {request.method} {request.url}")
        item = self.owner.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return _response(item)


class ScriptedHTTP:
    def __init__(self, script: list[Answer | BaseException]):
        self.script = list(script)
        self.sent: list[Sent] = []
        self.sleeps: list[float] = []
        self.warnings: list[str] = []
        self.session = _http.Session(sender=_ScriptedSender(self))

    @property
    def exhausted(self) -> bool:
        return not self.script


class RoutedHTTP:
    """Answers by request, not by order, for concurrent clients: ``handler(sent) -> Answer`` is called
    in the sending thread; every request is recorded with that thread's name, under a lock."""

    def __init__(self, handler):
        import threading

        self.handler = handler
        self.lock = threading.Lock()
        self.sent: list[Sent] = []
        self.events: list[tuple[str, str]] = []  # (thread name, "request <method> <path>" or "sleep <s>")
        self.warnings: list[str] = []
        self.session = _http.Session(sender=_RoutedSender(self))

    def note(self, event: str) -> None:
        import threading

        with self.lock:
            self.events.append((threading.current_thread().name, event))


class _RoutedSender:
    def __init__(self, owner: RoutedHTTP):
        self.owner = owner

    def send(self, request: _http.PreparedRequest) -> _http.Response:
        sent = Sent(request)
        with self.owner.lock:
            self.owner.sent.append(sent)
        tag = sent.json.get("webhook_tag", "") if isinstance(sent.json, dict) else sent.query.get("webhook_tag", "")
        self.owner.note(f"request {sent.method} {sent.path} {tag}".rstrip())
        item = self.owner.handler(sent)
        if isinstance(item, BaseException):
            raise item
        return _response(item)
