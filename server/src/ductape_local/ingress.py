"""The middleware's routes: a provider's event coming in through a wrapped link, and the delivery log.

`/webhooks/v1/process/{uuid}` answers 202 only after the event is committed; the delivery worker
(delivery.py) takes it from there. The deliveries routes are read with the access key, like every
control-plane route.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Annotated, Any, AsyncIterator

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from .control_plane import AccessDep
from .config import ServerConfig
from .delivery import DeliveryWorker
from .envelope import ApiError, quoted, success
from .events import IN_FLIGHT, WIRE_STATUSES, DeliveryFilter, EventStore, ReceivedEvent, Target
from .events import decode_cursor, encode_cursor
from .store import Registration, Store

DEFAULT_LIMIT = 50
MAX_LIMIT = 250
INGRESS_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

router = APIRouter()


class Middleware:
    """The event store and the delivery worker of one server process; kept at app.state.middleware."""

    def __init__(self, registrations: Store, config: ServerConfig):
        self.registrations = registrations
        self.max_body = config.max_body
        self.events = EventStore(str(config.db_path))
        self.worker = DeliveryWorker(
            self.events,
            retry_schedule=config.retry_schedule,
            timeout=config.delivery_timeout,
            on_delivered=registrations.mark_active,
        )
        # uuid -> (registrations_version when read, Target): the accept path reads the registration
        # once per version instead of opening a connection per event.
        self._targets: dict[str, tuple[int, Target]] = {}

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


def _accept(middleware: Middleware, uuid: str, received: ReceivedEvent) -> str:
    return middleware.events.add_event(middleware.live_target(uuid), received)


@router.api_route("/webhooks/v1/process/{uuid}", methods=INGRESS_METHODS, status_code=202)
async def process_event(uuid: str, request: Request) -> JSONResponse:
    middleware = _middleware(request)
    body = await _read_body(request, middleware.max_body)
    received = ReceivedEvent(
        method=request.method,
        path=request.url.path,
        query=request.url.query,
        headers=[(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw],
        body=body,
    )
    # one hop to a thread for both the lookup and the insert: the accept path is the hot one
    event_id = await run_in_threadpool(_accept, middleware, uuid, received)
    middleware.worker.wake()
    return JSONResponse(success({"event_id": event_id}), status_code=202)


# --- the delivery log ------------------------------------------------------------------------


def _status_filter(status: str | None) -> str | None:
    if status is not None and status not in WIRE_STATUSES:
        raise ApiError(422, f"status: must be one of {', '.join(WIRE_STATUSES)} (got {quoted(status)})")
    return status


def _cursor_position(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return decode_cursor(cursor)
    except ValueError:
        raise ApiError(
            422, f"cursor: not a cursor of this listing (got {quoted(cursor)}); pass meta.next_cursor as given"
        ) from None


def _readable_delivery(middleware: Middleware, grant: AccessDep, event_id: str) -> dict[str, Any]:
    delivery = middleware.events.get(event_id)
    if delivery is None:
        raise ApiError(404, f"event_id: no delivery {quoted(event_id)}")
    grant.product(delivery["product"])
    return delivery


@router.get("/webhooks/v1/deliveries", summary="Deliveries of provider events, newest first, with their attempts")
def list_deliveries(
    request: Request,
    grant: AccessDep,
    product: Annotated[str | None, Query(min_length=1)] = None,
    access_tag: Annotated[str | None, Query(min_length=1)] = None,
    webhook_tag: Annotated[str | None, Query(min_length=1)] = None,
    env: Annotated[str | None, Query(min_length=1)] = None,
    status: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    products = (grant.product(product).tag,) if product is not None else tuple(sorted(grant.products))
    where = DeliveryFilter(
        products=products,
        access_tag=access_tag,
        webhook_tag=webhook_tag,
        env=env,
        status=_status_filter(status),
    )
    page, last_seq = _middleware(request).events.list(where, limit, _cursor_position(cursor))
    next_cursor = encode_cursor(last_seq) if last_seq is not None else None
    return success(page, meta={"next_cursor": next_cursor})


@router.get("/webhooks/v1/deliveries/{event_id}", summary="One delivery with every attempt")
def get_delivery(event_id: str, request: Request, grant: AccessDep) -> dict[str, Any]:
    return success(_readable_delivery(_middleware(request), grant, event_id))


@router.post(
    "/webhooks/v1/deliveries/{event_id}/replay",
    status_code=202,
    summary="Deliver an event again, now, to the registration's current url, with a fresh retry budget",
)
def replay_delivery(event_id: str, request: Request, grant: AccessDep) -> JSONResponse:
    middleware = _middleware(request)
    delivery = _readable_delivery(middleware, grant, event_id)
    registration = _live_registration(middleware, delivery["registration_uuid"])
    found = middleware.events.replay(event_id, _target(registration))
    if found == IN_FLIGHT:
        raise ApiError(409, f"event_id: delivery {quoted(event_id)} is being attempted right now; replay it after")
    middleware.worker.wake()
    return JSONResponse(success(middleware.events.get(event_id)), status_code=202)
