"""The guard in front of every route (pure ASGI), and the limits it and the routes enforce.

For every HTTP request:
- the whole request body must arrive within `body_timeout` seconds of its first read (a slower body is
  answered 408 and its connection closed); a client that hangs up mid-body costs one log line, no traceback;
- any exception that escapes a route is answered 500 in the envelope and logged as one line naming the
  route and the exception's type only: no request value (an auth value, an access key) reaches the log,
  whatever fails.

For a request with a body to the control plane (`/webhooks/v1/*` except the ingress, and `/_local/*` in
test mode):
- without a known access key it is answered 401 before its body is read;
- a body larger than `max_request_body` is answered 413, from its Content-Length before it is read, or
  as soon as a chunked body passes the limit;
- the body is then read whole (it is small) and checked as JSON text before any route sees it: invalid
  UTF-8, a lone surrogate (`\\ud800`), a NUL character or nesting deeper than MAX_JSON_DEPTH anywhere is
  a 422 naming the field, so that nothing of such a request is ever written.

The ingress (`/webhooks/v1/process/`) gets only the quiet errors (a try block and a prefix test): its
accept path reads and bounds its own body (`--max-body`), and its slow bodies are cut by the protocol.

`GuardedHttpToolsProtocol` adds what uvicorn lacks: a connection that does not complete its request
headers within `header_timeout` seconds (a slowloris, or a connection that never sends), or its body
within `body_timeout` after them, is closed: two timers per request, nothing in the ASGI path.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ductape_local.access import key_from_headers, key_problem
from ductape_local.config import INGRESS_PREFIX

log = logging.getLogger("ductape_local")

CONTROL_PREFIX = "/webhooks/v1/"
TEST_MODE_PREFIX = "/_local/"
MAX_JSON_DEPTH = 32

# Field limits of the control plane, checked by the request models (control_plane.py).
MAX_URL_LENGTH = 2048
MAX_TAG_LENGTH = 200
MAX_ENVS = 50
MAX_AUTH_ENTRIES = 64
MAX_AUTH_KEY_LENGTH = 256
MAX_AUTH_VALUE_LENGTH = 8192


def _envelope(status: int, message: str, extra_headers: list[tuple[bytes, bytes]] = ()) -> tuple[dict, dict]:
    body = json.dumps({"status": False, "meta": {}, "errors": message}).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status in (401, 408, 413):
        # The body was not read (whole): the connection cannot carry another request.
        headers.append((b"connection", b"close"))
    return ({"type": "http.response.start", "status": status, "headers": headers + list(extra_headers)},
            {"type": "http.response.body", "body": body})


class BodyTimeout(Exception):
    pass


class ClientGone(Exception):
    pass


def json_problem(body: bytes) -> str | None:
    """Why a JSON request body cannot be taken, naming the field; None when its text is fine (whether it
    is valid JSON at all is left to the routes, which answer 400 naming the syntax error)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"request body: is not valid UTF-8 (byte {error.start})"
    try:
        document = json.loads(text)
    except RecursionError:
        return f"request body: JSON nested deeper than {MAX_JSON_DEPTH} levels"
    except ValueError:
        return None
    # Iterative walk: a document nested thousands deep never costs a Python stack frame per level.
    stack: list[tuple[Any, str, int]] = [(document, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"{path or 'request body'}: JSON nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(value, str):
            problem = _text_problem(value)
            if problem:
                return f"{path or 'request body'}: {problem}"
        elif isinstance(value, dict):
            for key, inner in value.items():
                problem = _text_problem(key)
                if problem:
                    return f"{path or 'request body'}: a key {problem}"
                stack.append((inner, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(value, list):
            for index, inner in enumerate(value):
                stack.append((inner, f"{path}[{index}]", depth + 1))
    return None


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "must not contain a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must not contain a lone surrogate (not a Unicode character)"
    return None


class Guard:
    def __init__(self, app: ASGIApp, fastapi_app: Any, max_request_body: int, body_timeout: float,
                 test_mode: bool = False):
        self.app = app
        self.control_prefixes = (CONTROL_PREFIX, TEST_MODE_PREFIX) if test_mode else (CONTROL_PREFIX,)
        self.fastapi_app = fastapi_app
        self.max_request_body = max_request_body
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        try:
            if path.startswith(INGRESS_PREFIX) or not path.startswith(self.control_prefixes) or not _has_body(scope):
                # Nothing wraps receive or send here: the ingress's accept rate is measured against a bare
                # stack. Its body deadline is kept by the protocol (GuardedHttpToolsProtocol).
                await self.app(scope, receive, send)
            else:
                await self._control(scope, receive, send)
        except BodyTimeout:
            log.info("request body too slow on %s %s: answered 408", scope["method"], path)
            await _send_all(send, *_envelope(408, f"request body: not received within {self.body_timeout:g} s"))
        except ClientGone:
            log.info("client went away during %s %s", scope["method"], path)
        except Exception as error:  # pylint: disable=broad-except  # the last word on any failure
            if _disconnected(error):
                log.info("client went away during %s %s", scope["method"], path)
                return
            # Only the type: the exception's text or a traceback could quote a request value.
            log.error("internal error on %s %s: %s", scope["method"], path, type(error).__name__)
            # Refused by the server when the response has started already; then the connection just ends.
            await _send_all(send, *_envelope(500, "internal server error"))

    def _timed(self, receive: Receive) -> Receive:
        timeout = self.body_timeout
        complete = False
        deadline: float | None = None

        async def timed_receive() -> Message:
            nonlocal complete, deadline
            if complete:
                return await receive()
            if deadline is None:  # the whole body, not each read: a trickle of bytes does not reset it
                deadline = asyncio.get_running_loop().time() + timeout
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout() from None
            if message["type"] == "http.disconnect":
                raise ClientGone()
            if not message.get("more_body", False):
                complete = True
            return message

        return timed_receive

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = key_problem(self.fastapi_app.state.catalog, key_from_headers(scope["headers"]))
        if problem is not None:
            await _send_all(send, *_envelope(401, problem))
            return
        limit = self.max_request_body
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _send_all(send, *_too_large(limit))
            return
        timed = self._timed(receive)
        chunks, size = [], 0
        while True:
            message = await timed()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _send_all(send, *_too_large(limit))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = json_problem(body)
        if problem is not None:
            await _send_all(send, *_envelope(422, problem))
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _too_large(limit: int) -> tuple[dict, dict]:
    return _envelope(413, f"request body: larger than the limit of {limit} bytes (--max-request-body)")


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
        if name == b"transfer-encoding":
            return True
    return False


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _disconnected(error: BaseException) -> bool:
    name = type(error).__name__
    return name in ("ClientDisconnect", "ClientGone") or isinstance(error, (ConnectionResetError, BrokenPipeError))


async def _send_all(send: Send, *messages: Message) -> None:
    try:
        for message in messages:
            await send(message)
    except Exception:  # pylint: disable=broad-except  # the client is gone: nobody to answer
        pass


def guarded_protocol(header_timeout: float, body_timeout: float) -> type | str:
    """uvicorn's httptools protocol with deadlines on each request's headers and then on its body, or
    "auto" without httptools. A connection that misses one is closed (the app sees a disconnect)."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a dependency
        return "auto"

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None

        def _arm(self, seconds: float) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm(header_timeout)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm(header_timeout)

        def on_headers_complete(self) -> None:
            # The guard answers a slow control-plane body 408 itself, a little before this closes it.
            self._arm(body_timeout + 1.0)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return GuardedHttpToolsProtocol
