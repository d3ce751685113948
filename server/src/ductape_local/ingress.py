"""The middleware's accept path: a provider's event coming in through a wrapped link.

`/webhooks/v1/process/{uuid}` answers 202 only after the event is committed; the delivery worker
(delivery.py) takes it from there. The delivery log's routes are in deliveries.py.

What "committed" promises (WAL mode, synchronous=NORMAL, see events.py): an event answered 202 is
in the database even if the server process is killed at any moment after (SIGKILL, a crash of
Python); an operating-system crash or a power loss can lose the events of the last commits before a
checkpoint, never leave the database inconsistent.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from .backpressure import Backpressure
from .batching import BatchingThread
from .config import INGRESS_PREFIX, ServerConfig
from .delivery import DeliveryWorker, loop_refusal
from .envelope import ApiError, failure_response, quoted, success
from .events import EventStore, ReceivedEvent, Rejection, Target
from .store import DISABLED, Registration, Store, parse_utc
from .verification import NO_RULE, IngressRule, IngressRules, admit

INGRESS_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_INGRESS_METHOD_SET = frozenset(INGRESS_METHODS)

# Most events committed in one transaction; more wait for the next one.
MAX_BATCH = 256

router = APIRouter()
log = logging.getLogger(__name__)


class GroupCommit:
    """One thread that commits the events of all concurrent requests in one transaction.

    A request hands its event over and waits; the thread takes every event waiting, looks up each
    one's registration, commits them together, and only then answers each request (202 with its id,
    or its 404/410). Under load one commit serves many events; alone, an event waits for nobody.
    """

    def __init__(self, middleware: "Middleware"):
        self._middleware = middleware
        self._committer = BatchingThread("ductape-ingress-commit", self._commit, MAX_BATCH,
                                         on_exit=middleware.events.close_thread_connection)

    async def accept(self, uuid: str, received: ReceivedEvent) -> str:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future = loop.create_future()
        self._committer.put((uuid, received, loop, answer))
        return await answer

    def stop(self, wait_s: float) -> None:
        self._committer.stop(wait_s)

    def _commit(self, batch: list) -> None:
        outcomes: list[Any] = [None] * len(batch)
        accepted: list[tuple[int, Target, ReceivedEvent, tuple[str, float] | None]] = []
        rejections: list[Rejection] = []
        now = time.time()
        for index, (uuid, received, _, _) in enumerate(batch):
            try:
                target, rule = self._middleware.live_ingress(uuid)
            except Exception as error:  # pylint: disable=broad-except  # 404/410 go to that request
                outcomes[index] = error
                continue
            try:
                # a test event is sent by the registration's owner (the access key authenticated it),
                # not by the provider: no provider signature to check, no provider event id
                admission = admit(NO_RULE if received.test else rule, received.headers, received.body, now)
            except Exception as error:  # pylint: disable=broad-except  # this request fails, not the batch
                log.error("could not check an event for registration %s: %s", target.registration_uuid,
                          type(error).__name__)
                outcomes[index] = error
                continue
            if admission.rejection is not None:
                # the reason names what was wrong with the request, never the secret or a signature
                log.warning("event refused for registration %s: %s", target.registration_uuid, admission.rejection)
                rejections.append(Rejection(target, admission.rejection, now))
                outcomes[index] = ApiError(401, admission.rejection)
                continue
            accepted.append((index, target, received, admission.dedup))
        if accepted or rejections:
            try:
                results: list[Any] = self._middleware.events.commit_ingress(
                    [(target, received, dedup) for _, target, received, dedup in accepted], rejections)
            except Exception as error:  # pylint: disable=broad-except  # nothing was committed: each request fails
                log.exception("could not commit %d events", len(accepted))
                results = [error] * len(accepted)
            for (index, _, _, _), outcome in zip(accepted, results):
                outcomes[index] = outcome.event_id if not isinstance(outcome, BaseException) else outcome
            if accepted:
                urls = {target.url for _, target, _, _ in accepted}
                self._middleware.worker.wake(urls)
                self._middleware.backpressure.note(urls)
        # one call per event loop (one per server process) settles every answer of the batch
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, Any]]] = {}
        for (_, _, loop, answer), outcome in zip(batch, outcomes):
            by_loop.setdefault(loop, []).append((answer, outcome))
        for loop, answers in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, answers)
            except RuntimeError:  # the loop is closed: the server stopped, nobody waits for these answers
                pass


def _settle(answers: list[tuple[asyncio.Future, Any]]) -> None:
    for answer, outcome in answers:
        if answer.done():  # the client went away and the request was cancelled
            continue
        if isinstance(outcome, BaseException):
            answer.set_exception(outcome)
        else:
            answer.set_result(outcome)


class Middleware:
    """The event store and the delivery worker of one server process; kept at app.state.middleware."""

    def __init__(self, registrations: Store, config: ServerConfig, rules: IngressRules | None = None):
        self.registrations = registrations
        # each webhook definition's signature check and dedup (verification.py); None: none at all
        self.rules = rules
        self.max_body = config.max_body
        self.events = EventStore(str(config.db_path))
        self.worker = DeliveryWorker.for_config(self.events, config, on_delivered=registrations.mark_active)
        self.backpressure = Backpressure(self.events, config.backpressure_lag, config.backpressure_hold)
        # uuid -> (registrations_version when read, Target, IngressRule, end of a rotation's grace period
        # or None): the accept path reads the registration once per version instead of opening a
        # connection per event.
        self._targets: dict[str, tuple[int, Target, IngressRule, float | None]] = {}
        self.group_commit = GroupCommit(self)
        self.ingress = EventIngress(self)

    def known_url(self, uuid: str) -> str | None:
        """The receiver url of a link as last read (None if not read yet), without reading the store."""
        cached = self._targets.get(uuid)
        return cached[1].url if cached is not None else None

    def live_target(self, uuid: str) -> Target:
        """Where an event for this link goes; 404 or 410 (ApiError) when the link forwards nowhere."""
        return self.live_ingress(uuid)[0]

    def live_ingress(self, uuid: str) -> tuple[Target, IngressRule]:
        """live_target, and the rule (signature check, dedup) that this link's events pass."""
        version = self.registrations.registrations_version
        cached = self._targets.get(uuid)
        if cached is not None and cached[0] == version and (cached[3] is None or time.time() < cached[3]):
            return cached[1], cached[2]
        registration, grace_until = _live_registration(self, uuid)
        target = _target(registration)
        rule = NO_RULE if self.rules is None else self.rules.rule(
            registration.product, registration.access_tag, registration.webhook_tag, registration.app_env)
        self._targets[uuid] = (version, target, rule, grace_until)
        return target, rule


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs the delivery worker for as long as the server runs."""
    worker = app.state.middleware.worker
    backpressure = app.state.middleware.backpressure
    app.state.middleware.events.start_checkpoints()
    worker.start()
    backpressure.start()
    try:
        yield
    finally:
        # A delivery still in flight stays so in the database and is sent again on the next start.
        await run_in_threadpool(backpressure.stop, 2.0)
        await run_in_threadpool(app.state.middleware.group_commit.stop, 2.0)
        await run_in_threadpool(worker.stop, 2.0)
        await run_in_threadpool(app.state.middleware.events.stop_checkpoints, 2.0)


def _middleware(request: Request) -> Middleware:
    return request.app.state.middleware


def _target(registration: Registration) -> Target:
    return Target.of(registration)


def _live_registration(middleware: Middleware, uuid: str) -> tuple[Registration, float | None]:
    """The registration a link forwards to, and when it stops (the end of a rotation's grace period,
    epoch seconds) or None; 404/410 (ApiError) when it forwards nothing, never naming a newer link."""
    found = middleware.registrations.lookup_link(uuid)
    if found is None:
        raise ApiError(404, f"no webhook registration has the link uuid {quoted(uuid)}")
    registration, grace_until = found.registration, None
    if found.retired is not None and registration.deleted_at is None:
        grace = registration.grace_link()
        if grace is None or grace[0] != uuid:
            ended = (f"; its grace period ended at {registration.previous_expires_at}"
                     if registration.previous_uuid == uuid else "")
            raise ApiError(410, f"the link {quoted(uuid)} was rotated at {found.retired.retired_at}{ended}; "
                                "it no longer forwards events")
        grace_until = parse_utc(grace[1]).timestamp()
    if registration.deleted_at is not None:
        raise ApiError(
            410,
            f"the webhook registration {quoted(uuid)} was deleted at {registration.deleted_at}; "
            "its link no longer forwards events",
        )
    if registration.state == DISABLED:
        raise ApiError(
            410,
            f"the webhook registration {quoted(uuid)} is disabled; its link stores no events until the "
            "registration is enabled again",
        )
    return registration, grace_until


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"the event body is larger than the limit of {limit} bytes (--max-body)")


def is_event_request(scope: Scope) -> bool:
    """True for what the `process_event` route answers: one of its methods on `INGRESS_PREFIX<uuid>`."""
    path: str = scope["path"]
    return (
        path.startswith(INGRESS_PREFIX)
        and len(path) > len(INGRESS_PREFIX)
        and "/" not in path[len(INGRESS_PREFIX):]
        and scope["method"] in _INGRESS_METHOD_SET
        and not scope.get("root_path")
    )


class EventIngress:
    """The accept path as a plain ASGI application: `/webhooks/v1/process/{uuid}` without FastAPI's
    routing, dependency resolution and response classes, which cost more per event than the commit.

    It answers exactly what the `process_event` route declares: 202 with the event id once the event
    is committed, the route's 404/410/413 in the envelope, 500 in the envelope if anything else fails.
    A client that hangs up before its body is complete gets nothing, and nothing is stored.
    """

    def __init__(self, middleware: "Middleware"):
        self._middleware = middleware

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            event_id = await self.accept(scope, receive)
        except ApiError as error:
            await failure_response(error.status, error.message, error.headers)(scope, receive, send)
            return
        except ClientDisconnect:
            return
        except Exception as error:  # pylint: disable=broad-except  # answered like any route's failure
            # The exception's text could quote a request value, so only its type reaches the log line.
            log.error("internal error on %s %s: %s", scope["method"], scope["path"], type(error).__name__)
            await failure_response(500, "internal server error")(scope, receive, send)
            return
        body = _ACCEPTED_HEAD + event_id.encode("ascii") + _ACCEPTED_TAIL
        _skip_access_line(send)
        await send({"type": "http.response.start", "status": 202,
                    "headers": [(b"content-length", str(len(body)).encode("latin-1")), _JSON_TYPE]})
        await send({"type": "http.response.body", "body": body})

    async def accept(self, scope: Scope, receive: Receive) -> str:
        """Reads the event, hands it to the group commit and returns its id once committed."""
        middleware = self._middleware
        raw_headers = scope["headers"]
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw_headers]
        # an event that came back through relays too often is a loop: refused before its body is read
        looping = loop_refusal(headers)
        if looping is not None:
            raise ApiError(508, looping)
        body = await _read_body(raw_headers, receive, middleware.max_body)
        # the link's uuid as the route's path parameter reads it: from the decoded path, unescaped
        uuid = scope["path"][len(INGRESS_PREFIX):]
        backpressure = middleware.backpressure
        if backpressure.enabled:
            # held (not yet stored) while deliveries to its receiver lag: see backpressure.py
            await backpressure.admit(middleware.known_url(uuid))
        path, query = _path_and_query(scope)
        received = ReceivedEvent(
            method=scope["method"],
            path=path,
            query=query,
            headers=headers,
            body=body,
        )
        return await middleware.group_commit.accept(uuid, received)


def _skip_access_line(send: Send) -> None:
    """Tells uvicorn's request cycle (whose bound method `send` is) not to build an access-log record
    for this answer: the delivery log records every accepted event, and the record alone costs about
    a tenth of the accept path. Where `send` is not uvicorn's, cli.NoIngressLines drops the line."""
    cycle = getattr(send, "__self__", None)
    if getattr(cycle, "access_log", None) is True:
        cycle.access_log = False


# The 202 answer, as JSONResponse(success({"event_id": ...})) renders it, around the id.
_ACCEPTED_HEAD, _, _ACCEPTED_TAIL = JSONResponse(success({"event_id": "@"})).body.partition(b"@")
_JSON_TYPE = (b"content-type", b"application/json")
_PLAIN_PATH = re.compile(r"[A-Za-z0-9/._~-]*")


def _path_and_query(scope: Scope) -> tuple[str, str]:
    """The path and query string as Starlette's `Request.url` reads them from the scope."""
    path: str = scope["path"]
    if not scope["query_string"] and _PLAIN_PATH.fullmatch(path):
        return path, ""
    url = URL(scope=scope)
    return url.path, url.query


async def _read_body(headers: list[tuple[bytes, bytes]], receive: Receive, limit: int) -> bytes:
    """The whole body, or 413 as soon as it is known to exceed `limit` (declared or streamed)."""
    for name, value in headers:
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                raise _too_large(limit)
            break
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect: the client went away
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


@router.api_route(INGRESS_PREFIX + "{uuid}", methods=INGRESS_METHODS, status_code=202)
async def process_event(uuid: str, request: Request) -> Response:  # pylint: disable=unused-argument
    """A provider's event, answered 202 once committed. The application hands these requests to
    `EventIngress` before routing (`is_event_request`); this route declares them, and answers them
    the same way if they ever reach it."""
    responses: list[Message] = []

    async def collect(message: Message) -> None:
        responses.append(message)

    await _middleware(request).ingress(request.scope, request.receive, collect)
    if not responses:  # the client hung up before its body was complete
        raise ClientDisconnect()
    start, body = responses
    return Response(body["body"], status_code=start["status"],
                    headers={k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]})

