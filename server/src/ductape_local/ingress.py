"""The middleware's accept path: a provider's event coming in through a wrapped link.

`/webhooks/v1/process/{uuid}` answers 202 only after the event is committed; the delivery worker
(delivery.py) takes it from there. The delivery log's routes are in deliveries.py.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from .config import ServerConfig
from .delivery import DeliveryWorker, loop_refusal
from .envelope import ApiError, quoted, success
from .events import EventStore, ReceivedEvent, Target
from .store import Registration, Store

INGRESS_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

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
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def accept(self, uuid: str, received: ReceivedEvent) -> str:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future = loop.create_future()
        self._ensure_started()
        self._queue.put((uuid, received, loop, answer))
        return await answer

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="ductape-ingress-commit", daemon=True)
                thread.start()
                self._thread = thread

    def stop(self, wait_s: float) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(wait_s)

    def _run(self) -> None:
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch, stopping = [first], False
                while len(batch) < MAX_BATCH:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stopping = True
                        break
                    batch.append(item)
                self._commit(batch)
                if stopping:
                    return
        finally:
            self._middleware.events.close_thread_connection()

    def _commit(self, batch: list) -> None:
        outcomes: list[Any] = [None] * len(batch)
        accepted: list[tuple[int, Target, ReceivedEvent]] = []
        for index, (uuid, received, _, _) in enumerate(batch):
            try:
                accepted.append((index, self._middleware.live_target(uuid), received))
            except Exception as error:  # pylint: disable=broad-except  # 404/410 go to that request
                outcomes[index] = error
        if accepted:
            try:
                ids = self._middleware.events.add_events([(target, received) for _, target, received in accepted])
            except Exception as error:  # pylint: disable=broad-except  # nothing was committed: each request fails
                log.exception("could not commit %d events", len(accepted))
                ids = [error] * len(accepted)
            for (index, _, _), outcome in zip(accepted, ids):
                outcomes[index] = outcome
            self._middleware.worker.wake()
        for (_, _, loop, answer), outcome in zip(batch, outcomes):
            try:
                loop.call_soon_threadsafe(_settle, answer, outcome)
            except RuntimeError:  # the loop is closed: the server stopped, nobody waits for this answer
                pass


def _settle(answer: asyncio.Future, outcome: Any) -> None:
    if answer.done():  # the client went away and the request was cancelled
        return
    if isinstance(outcome, BaseException):
        answer.set_exception(outcome)
    else:
        answer.set_result(outcome)


class Middleware:
    """The event store and the delivery worker of one server process; kept at app.state.middleware."""

    def __init__(self, registrations: Store, config: ServerConfig):
        self.registrations = registrations
        self.max_body = config.max_body
        self.events = EventStore(str(config.db_path))
        self.worker = DeliveryWorker.for_config(self.events, config, on_delivered=registrations.mark_active)
        # uuid -> (registrations_version when read, Target): the accept path reads the registration
        # once per version instead of opening a connection per event.
        self._targets: dict[str, tuple[int, Target]] = {}
        self.group_commit = GroupCommit(self)

    def live_target(self, uuid: str) -> Target:
        """Where an event for this link goes; 404 or 410 (ApiError) when the link forwards nowhere."""
        version = self.registrations.registrations_version
        cached = self._targets.get(uuid)
        if cached is not None and cached[0] == version:
            return cached[1]
        target = _target(_live_registration(self, uuid))
        self._targets[uuid] = (version, target)
        return target


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs the delivery worker for as long as the server runs."""
    worker = app.state.middleware.worker
    worker.start()
    try:
        yield
    finally:
        # A delivery still in flight stays so in the database and is sent again on the next start.
        await run_in_threadpool(app.state.middleware.group_commit.stop, 2.0)
        await run_in_threadpool(worker.stop, 2.0)


def _middleware(request: Request) -> Middleware:
    return request.app.state.middleware


def _target(registration: Registration) -> Target:
    return Target(
        registration_uuid=registration.uuid,
        product=registration.product,
        access_tag=registration.access_tag,
        webhook_tag=registration.webhook_tag,
        env=registration.product_env,
        url=registration.url,
        method=registration.method,
    )


def _live_registration(middleware: Middleware, uuid: str) -> Registration:
    registration = middleware.registrations.get_registration(uuid, include_deleted=True)
    if registration is None:
        raise ApiError(404, f"no webhook registration has the link uuid {quoted(uuid)}")
    if registration.deleted_at is not None:
        raise ApiError(
            410,
            f"the webhook registration {quoted(uuid)} was deleted at {registration.deleted_at}; "
            "its link no longer forwards events",
        )
    return registration


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"the event body is larger than the limit of {limit} bytes (--max-body)")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


@router.api_route("/webhooks/v1/process/{uuid}", methods=INGRESS_METHODS, status_code=202)
async def process_event(uuid: str, request: Request) -> JSONResponse:
    middleware = _middleware(request)
    headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw]
    # (delivery's check) an event that came back through relays too often is a loop: refused, 508
    looping = loop_refusal(headers)
    if looping is not None:
        raise ApiError(508, looping)
    body = await _read_body(request, middleware.max_body)
    received = ReceivedEvent(
        method=request.method,
        path=request.url.path,
        query=request.url.query,
        headers=headers,
        body=body,
    )
    # answered once the event is committed, together with those of concurrent requests
    event_id = await middleware.group_commit.accept(uuid, received)
    return JSONResponse(success({"event_id": event_id}), status_code=202)
