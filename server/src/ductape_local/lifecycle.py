"""The registration lifecycle (contract L1, our extension): disable, enable, rotate, test, bulk replay.

Every route takes the access key like the control plane, and a key sees only its products (another
product's uuid answers 404). `{uuid}` is a registration's current uuid; one it had before a rotation
answers 410 naming it as rotated (registrations.registration_for_route), never the new link.

What each one does to the relay:

- disable: the link answers 410 and stores nothing; events already stored are delivered as usual
  (retries and replays included). enable: the same link forwards again.
- rotate: a new uuid and link; the old one forwards to the same receiver until the grace period ends
  (at once with grace 0), then answers 410. Events already stored are delivered as usual.
- test: a synthetic event through the ingress's own accept function (GroupCommit.accept), stored
  before the answer, delivered like any event with `X-Ductape-Test: true`, `test: true` in the log.
- bulk replay: every delivery a filter selects, oldest first, bounded by `limit`, due again now.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator
from pydantic_core import PydanticCustomError
from starlette.concurrency import run_in_threadpool

from ductape_local.access import Access, AccessDep
from ductape_local.config import INGRESS_PREFIX
from ductape_local.control_plane import (
    COMMON_FAILURES, Tag, failures, raise_provider_failures, registration_view, result_view,
)
from ductape_local.deliveries import WIRE_STATUSES, replay_target
from ductape_local.envelope import ApiError, quoted, success
from ductape_local.events import IN_FLIGHT, ReceivedEvent, ReplayFilter, Target
from ductape_local.limits import MAX_TAG_LENGTH
from ductape_local.registrations import generation_conflict, registration_for_route
from ductape_local.store import DISABLED, ENABLED, Registration, utc_now

MAX_GRACE_SECONDS = 604800
MAX_TEST_ATTEMPTS = 10
DEFAULT_REPLAY_LIMIT = 100
MAX_REPLAY_LIMIT = 1000
MAX_REPLAY_EVENT_IDS = 1000
MAX_ID_LENGTH = 200

router = APIRouter(prefix="/webhooks/v1", tags=["lifecycle"])


class RotateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grace_seconds: StrictInt = Field(default=0, ge=0, le=MAX_GRACE_SECONDS,
                                     description="seconds the old link keeps forwarding (0: it answers 410 at once)")
    expected_generation: StrictInt | None = Field(
        default=None, ge=1, description="rotate only if the registration is still at this generation (the one "
        "the caller saw); otherwise 409 naming both generations, so that a retried rotate never rotates twice")


class TestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payload: dict[str, Any] | None = Field(default=None, description="the event's JSON body (default: a small synthetic one)")
    max_attempts: StrictInt = Field(default=1, ge=1, le=MAX_TEST_ATTEMPTS,
                                    description="most delivery attempts (bounded by the server's retry schedule too)")


def _moment(value: str | None) -> str | None:
    if value is not None:
        try:
            parse_moment(value)
        except (ValueError, OverflowError):
            raise PydanticCustomError(
                "moment", "must be an ISO-8601 time such as 2026-12-02T03:00:00Z") from None
    return value


def parse_moment(value: str) -> float:
    """An ISO-8601 time as epoch seconds; a time without an offset is read as UTC."""
    moment = datetime.fromisoformat(value.strip().replace("z", "Z").replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


Id = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_LENGTH)]


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product: Tag
    access_tag: Tag | None = None
    webhook_tag: Tag | None = None
    env: StrictStr | None = Field(default=None, min_length=1, max_length=MAX_TAG_LENGTH)
    registration_uuid: Id | None = None
    status: StrictStr | None = Field(default=None, json_schema_extra={"enum": list(WIRE_STATUSES)})
    received_after: StrictStr | None = Field(default=None, description="ISO-8601; deliveries received at or after it")
    received_before: StrictStr | None = Field(default=None, description="ISO-8601; deliveries received before it")
    event_ids: list[Id] | None = Field(default=None, max_length=MAX_REPLAY_EVENT_IDS)
    limit: StrictInt = Field(default=DEFAULT_REPLAY_LIMIT, ge=1, le=MAX_REPLAY_LIMIT)
    dry_run: StrictBool = False

    _after = field_validator("received_after")(_moment)
    _before = field_validator("received_before")(_moment)

    @field_validator("status")
    @classmethod
    def _status(cls, value: str | None) -> str | None:
        if value is not None and value not in WIRE_STATUSES:
            raise PydanticCustomError("status", "must be one of " + ", ".join(WIRE_STATUSES))
        return value


def _registration(grant: Access, uuid: str) -> Registration:
    return registration_for_route(grant.store, grant.catalog, grant.products, uuid)


def _set_state(grant: Access, uuid: str, state: str) -> dict[str, Any]:
    _registration(grant, uuid)
    outcome = grant.store.set_state(uuid, state)
    if outcome is None:  # deleted or rotated by a concurrent request
        raise ApiError(404, f"uuid: no registration {quoted(uuid)}")
    registration, changed = outcome
    return success({**registration_view(registration, grant), "changed": changed})


LIFECYCLE_FAILURES = (*COMMON_FAILURES, 410)


@router.post("/registrations/{uuid}/disable", responses=failures(*LIFECYCLE_FAILURES),
             summary="Disable a registration: its link answers 410 and stores nothing (idempotent)")
def disable_registration(uuid: str, grant: AccessDep) -> dict[str, Any]:
    return _set_state(grant, uuid, DISABLED)


@router.post("/registrations/{uuid}/enable", responses=failures(*LIFECYCLE_FAILURES),
             summary="Enable a registration again: the same link forwards events (idempotent)")
def enable_registration(uuid: str, grant: AccessDep) -> dict[str, Any]:
    return _set_state(grant, uuid, ENABLED)


@router.post("/registrations/{uuid}/rotate", responses=failures(400, *LIFECYCLE_FAILURES, 409, 502),
             summary="Give a registration a new uuid and link; the old link works for grace_seconds more")
def rotate_registration(uuid: str, grant: AccessDep, body: RotateRequest | None = None) -> dict[str, Any]:
    body = body or RotateRequest()
    try:
        registration = _registration(grant, uuid)
    except ApiError as error:
        found = grant.store.lookup_link(uuid) if error.status == 410 else None
        if found is None or body.expected_generation is None:
            raise
        # A conditional rotate on a uuid already rotated (a retry after the server did it): 409 naming
        # both generations, as for a stale generation on the current uuid.
        raise generation_conflict(uuid, found.registration.generation, body.expected_generation) from None
    endpoint = grant.catalog.provider_endpoint(registration.product, registration.access_tag,
                                               registration.webhook_tag, registration.app_env)
    result = grant.registrar.rotate(registration, body.grace_seconds, endpoint, body.expected_generation)
    raise_provider_failures([result])
    view = result_view(result, grant)
    view.pop("created")
    return success(view)


def _test_event(registration: Registration, body: TestRequest) -> ReceivedEvent:
    payload = body.payload if body.payload is not None else {
        "type": "ductape.test",
        "webhook_tag": registration.webhook_tag,
        "env": registration.product_env,
        "sent_at": utc_now(),
    }
    return ReceivedEvent(
        method="POST",
        path=INGRESS_PREFIX + registration.uuid,
        query="",
        headers=[("content-type", "application/json")],
        body=json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        test=True,
        max_attempts=body.max_attempts,
    )


@router.post("/registrations/{uuid}/test", status_code=202, responses=failures(400, *LIFECYCLE_FAILURES, 409),
             summary="Send a synthetic event through the registration's link path to its receiver")
async def send_test_event(uuid: str, request: Request, grant: AccessDep,
                          body: TestRequest | None = None) -> JSONResponse:
    registration = await run_in_threadpool(_registration, grant, uuid)
    if registration.state == DISABLED:
        raise ApiError(409, f"uuid: registration {quoted(uuid)} is disabled; enable it before testing it")
    # The ingress's own accept function: the event is committed before this answer, then delivered
    # like a provider's. The access key authenticates it, so no provider signature is asked for.
    event_id = await request.app.state.middleware.group_commit.accept(
        registration.uuid, _test_event(registration, body or TestRequest()))
    return JSONResponse(success({"event_id": event_id, "registration_uuid": registration.uuid}), status_code=202)


@router.post("/deliveries/replay", responses=failures(400, *LIFECYCLE_FAILURES),
             summary="Replay every delivery a filter selects (oldest first, at most limit); dry_run counts only")
def replay_deliveries(request: Request, body: ReplayRequest, grant: AccessDep) -> dict[str, Any]:
    product = grant.product(body.product)
    grant.check_filter((product,), body.access_tag, body.webhook_tag, body.env)
    uuids = None
    if body.registration_uuid is not None:
        registration = _registration(grant, body.registration_uuid)
        if registration.product != product.tag:
            raise ApiError(422, f"registration_uuid: {quoted(body.registration_uuid)} is a registration of product "
                                f"{quoted(registration.product)}, not of {quoted(product.tag)}")
        uuids = tuple(grant.store.link_uuids(registration))
    after = parse_moment(body.received_after) if body.received_after is not None else None
    before = parse_moment(body.received_before) if body.received_before is not None else None
    if after is not None and before is not None and before <= after:
        raise ApiError(422, f"received_before: must be later than received_after (got {quoted(body.received_before)}"
                            f" and {quoted(body.received_after)})")
    where = ReplayFilter(
        products=(product.tag,), access_tag=body.access_tag, webhook_tag=body.webhook_tag, env=body.env,
        status=body.status, registration_uuids=uuids, received_after=after, received_before=before,
        event_ids=tuple(dict.fromkeys(body.event_ids)) if body.event_ids is not None else None,
    )
    middleware = request.app.state.middleware
    matched, truncated = middleware.events.matching(where, body.limit)
    receivers: dict[str, Target | None] = {}
    targets: dict[str, Target] = {}
    for record in matched:
        uuid = record["registration_uuid"]
        if uuid not in receivers:
            receivers[uuid] = replay_target(middleware, uuid)
        if receivers[uuid] is not None:
            targets[record["event_id"]] = receivers[uuid]
    skipped_deleted = len(matched) - len(targets)
    if body.dry_run:
        queued: list[str] = []
        in_flight = [r["event_id"] for r in matched if r["state"] == IN_FLIGHT and r["event_id"] in targets]
    else:
        queued, in_flight = middleware.events.replay_many(targets)
        if queued:
            middleware.worker.wake()
    return success({
        "matched": len(matched),
        "queued": len(queued),
        "skipped_in_flight": len(in_flight),
        "skipped_deleted": skipped_deleted,
        "event_ids": [record["event_id"] for record in matched],
        "truncated": truncated,
    })
