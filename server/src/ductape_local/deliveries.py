"""The delivery log's routes and their wire format: list deliveries, read one, replay one.

They are read with the access key, like every control-plane route, and a key sees only the
deliveries of its products. A delivery reads as:

- ``status``: ``pending`` (waiting for its first or next attempt, or being attempted), ``delivered``,
  or ``failed``: a dead letter, whose ``dead_letter`` says why (``reason``: retries exhausted, or not
  retried and on what answer) and since when (``at``); ``dead_letter`` is null otherwise. Replay takes
  a dead letter (or any delivery not in flight) back to ``pending`` with a fresh retry budget.
- ``attempts``: every attempt with its status code (null without an answer), latency and error.
- ``duplicates``: how many repeats of the event (the same provider event id within the webhook
  definition's dedup window, see dedup.py) were acknowledged and not delivered again.

The summary route counts a product's deliveries by status beside the events refused at the door
(``rejected``: a provider signature that did not verify, see verification.py) and the duplicates.

The event id (``event_id``, sent as ``X-Ductape-Event-Id``) never changes, across retries and
replays: delivery is at-least-once, and receivers deduplicate by it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from .access import AccessDep
from .cursor import decode_cursor, encode_cursor
from .envelope import ApiError, quoted, success
from .events import DELIVERED, FAILED, IN_FLIGHT, PENDING, DeliveryFilter, Target

DEFAULT_LIMIT = 50
MAX_LIMIT = 250
WIRE_STATUSES = (PENDING, DELIVERED, FAILED)
CURSOR_KIND = "deliveries"

router = APIRouter()


def iso_utc(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wire_delivery(record: dict[str, Any]) -> dict[str, Any]:
    """A stored delivery (EventStore.get / list) as the API answers it."""
    state = record["state"]
    waiting = state in (PENDING, IN_FLIGHT)
    dead_letter = None
    if state == FAILED:
        dead_letter = {
            "reason": record.get("dead_letter_reason") or record["last_error"],
            "at": iso_utc(record.get("dead_lettered_at")),
        }
    return {
        "event_id": record["event_id"],
        "registration_uuid": record["registration_uuid"],
        "product": record["product"],
        "access_tag": record["access_tag"],
        "webhook_tag": record["webhook_tag"],
        "env": record["env"],
        "method": record["target_method"],
        "status": PENDING if waiting else state,
        "attempt_count": record["attempt_count"],
        "received_at": iso_utc(record["received_at"]),
        "delivered_at": iso_utc(record["delivered_at"]),
        "next_attempt_at": iso_utc(record["next_attempt_at"]) if waiting else None,
        "last_error": record["last_error"],
        "dead_letter": dead_letter,
        "test": bool(record.get("test")),
        "duplicates": record.get("duplicates") or 0,
        "attempts": [
            {
                "n": attempt["n"],
                "at": iso_utc(attempt["at"]),
                "status_code": attempt["status_code"],
                "latency_ms": round(attempt["latency_ms"], 3),
                "error": attempt["error"],
            }
            for attempt in record["attempts"]
        ],
    }


def _middleware(request: Request):
    return request.app.state.middleware


def replay_target(middleware: Any, registration_uuid: str) -> Target | None:
    """Where a replay of an event received for `registration_uuid` goes: its registration's current
    receiver, also after rotations and while it is disabled (disabling stops a link taking events,
    not the delivery of events already taken); None once the registration is deleted."""
    found = middleware.registrations.lookup_link(registration_uuid)
    if found is None or found.registration.deleted_at is not None:
        return None
    return Target.of(found.registration)


def _status_filter(status: str | None) -> str | None:
    if status is not None and status not in WIRE_STATUSES:
        raise ApiError(422, f"status: must be one of {', '.join(WIRE_STATUSES)} (got {quoted(status)})")
    return status


def _cursor_position(cursor: str | None) -> int | None:
    if not cursor:
        return None
    position = decode_cursor(CURSOR_KIND, cursor)
    if not isinstance(position, int) or position < 0:
        raise ApiError(
            422, f"cursor: not a cursor of this listing (got {quoted(cursor)}); pass meta.next_cursor as given"
        )
    return position


def _readable_record(request: Request, grant: AccessDep, event_id: str) -> dict[str, Any]:
    record = _middleware(request).events.get(event_id)
    if record is None:
        raise ApiError(404, f"event_id: no delivery {quoted(event_id)}")
    grant.product(record["product"])
    return record


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
    # the seed refuses a key whose products are not all in the catalog
    scope = ((grant.product(product),) if product is not None
             else tuple(grant.catalog.products[tag] for tag in sorted(grant.products)))
    grant.check_filter(scope, access_tag, webhook_tag, env)
    where = DeliveryFilter(
        products=tuple(found.tag for found in scope),
        access_tag=access_tag,
        webhook_tag=webhook_tag,
        env=env,
        status=_status_filter(status),
    )
    records, last_seq = _middleware(request).events.list(where, limit, _cursor_position(cursor))
    next_cursor = encode_cursor(CURSOR_KIND, last_seq) if last_seq is not None else None
    return success([wire_delivery(record) for record in records], meta={"next_cursor": next_cursor})


# Declared before /webhooks/v1/deliveries/{event_id}, which would read "summary" as an event id.
@router.get("/webhooks/v1/deliveries/summary",
            summary="Counts of a product's deliveries by status, of rejected and of duplicate events (our extension)")
def deliveries_summary(
    request: Request,
    grant: AccessDep,
    product: Annotated[str, Query(min_length=1)],
    access_tag: Annotated[str | None, Query(min_length=1)] = None,
    webhook_tag: Annotated[str | None, Query(min_length=1)] = None,
    env: Annotated[str | None, Query(min_length=1)] = None,
) -> dict[str, Any]:
    found_product = grant.product(product)
    grant.check_filter((found_product,), access_tag, webhook_tag, env)
    where = DeliveryFilter(products=(found_product.tag,), access_tag=access_tag, webhook_tag=webhook_tag, env=env)
    found = _middleware(request).events.summary(where)
    states = found["states"]
    last = found["last_rejection"]
    return success({
        "pending": states.get(PENDING, 0) + states.get(IN_FLIGHT, 0),
        "delivered": states.get(DELIVERED, 0),
        "failed": states.get(FAILED, 0),
        "rejected": found["rejected"],
        "duplicates": found["duplicates"],
        "last_rejection": None if last is None else {
            "reason": last["last_rejection_reason"], "at": iso_utc(last["last_rejection_at"]),
            "registration_uuid": last["registration_uuid"]},
    })


@router.get("/webhooks/v1/deliveries/{event_id}", summary="One delivery with every attempt")
def get_delivery(event_id: str, request: Request, grant: AccessDep) -> dict[str, Any]:
    return success(wire_delivery(_readable_record(request, grant, event_id)))


@router.post(
    "/webhooks/v1/deliveries/{event_id}/replay",
    status_code=202,
    summary="Deliver an event again, now, to the registration's current url, with a fresh retry budget",
)
def replay_delivery(event_id: str, request: Request, grant: AccessDep) -> JSONResponse:
    middleware = _middleware(request)
    record = _readable_record(request, grant, event_id)
    target = replay_target(middleware, record["registration_uuid"])
    if target is None:
        raise ApiError(410, f"event_id: the webhook registration {quoted(record['registration_uuid'])} of delivery "
                            f"{quoted(event_id)} was deleted; there is no receiver to replay it to")
    found = middleware.events.replay(event_id, target)
    if found == IN_FLIGHT:
        raise ApiError(409, f"event_id: delivery {quoted(event_id)} is being attempted right now; replay it after")
    middleware.worker.wake()
    return JSONResponse(success(wire_delivery(middleware.events.get(event_id))), status_code=202)
