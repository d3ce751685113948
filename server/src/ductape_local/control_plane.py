"""The contract's four control-plane routes: the one place where their wire format lives."""
from __future__ import annotations

import json
import re
from typing import Annotated, Any, Union

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, field_validator
from pydantic_core import PydanticCustomError

from ductape_local.access import Access, AccessDep, check_product_env
from ductape_local.auth_digest import mask_auth, mask_url
from ductape_local.catalog import ENV_SLUG, HTTP_METHODS, Catalog, Connection, Product, is_http_url
from ductape_local.cursor import BadCursor, decode_cursor, encode_cursor
from ductape_local.destinations import destination_refusal
from ductape_local.envelope import ApiError, quoted, success
from ductape_local.events import ingress_counts
from ductape_local.limits import (
    MAX_AUTH_ENTRIES, MAX_AUTH_KEY_LENGTH, MAX_AUTH_VALUE_LENGTH, MAX_ENVS, MAX_TAG_LENGTH,
    MAX_URL_LENGTH,
)
from ductape_local.registrations import DesiredRegistration, RegistrationResult, registration_for_route
from ductape_local.store import Registration

DEFAULT_PAGE = 50
MAX_PAGE = 250
WEBHOOKS_CURSOR = "webhooks"

router = APIRouter(prefix="/webhooks/v1", tags=["control plane"])

Scalar = Union[StrictStr, StrictInt, StrictFloat, StrictBool]


class AuthParts(BaseModel):
    """IActionRequest: how the provider registration call authenticates and is shaped."""

    model_config = ConfigDict(extra="forbid")
    headers: dict[str, Scalar] | None = None
    query: dict[str, Scalar] | None = None
    body: dict[str, Any] | None = None
    params: dict[str, Scalar] | None = None

    @field_validator("headers", "query", "body", "params")
    @classmethod
    def _bounded(cls, values: dict[str, Any] | None, info: Any) -> dict[str, Any] | None:
        """Sizes are bounded (limits.py); header names and values must be sendable as headers. A value
        is never quoted in the error: it is a secret."""
        if values is None:
            return values
        if len(values) > MAX_AUTH_ENTRIES:
            raise PydanticCustomError("auth_entries", f"at most {MAX_AUTH_ENTRIES} entries (got {len(values)})")
        for key, value in values.items():
            if not key or len(key) > MAX_AUTH_KEY_LENGTH:
                raise PydanticCustomError("auth_key", f"each key must be 1-{MAX_AUTH_KEY_LENGTH} characters")
            if info.field_name == "headers" and not HEADER_NAME.match(key):
                raise PydanticCustomError("auth_key", f"{quoted(key)} is not an HTTP header name")
            size = len(value) if isinstance(value, str) else len(json.dumps(value, default=str))
            if size > MAX_AUTH_VALUE_LENGTH:
                raise PydanticCustomError(
                    "auth_value", f"the value of {quoted(key)} is longer than {MAX_AUTH_VALUE_LENGTH} characters")
            if info.field_name == "headers" and isinstance(value, str) and any(c in value for c in "\r\n"):
                raise PydanticCustomError("auth_value", f"the value of {quoted(key)} must not contain a line break")
        return values


HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
Tag = Annotated[StrictStr, Field(min_length=1, max_length=MAX_TAG_LENGTH)]


def _check_url(value: str) -> str:
    if not is_http_url(value):
        raise PydanticCustomError("url", "must be an absolute http or https URL")
    return value


def _check_method(value: str) -> str:
    if value not in HTTP_METHODS:
        raise PydanticCustomError("method", "must be one of " + ", ".join(HTTP_METHODS))
    return value


# Documented in the schema; checked by the validators below, whose errors read better.
URL_SCHEMA = {"format": "uri", "pattern": "^https?://[^/?#\\s]+"}
METHOD_SCHEMA = {"enum": list(HTTP_METHODS)}
SLUG_SCHEMA = {"pattern": ENV_SLUG.pattern}


class EnvRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: StrictStr = Field(max_length=MAX_TAG_LENGTH, json_schema_extra=SLUG_SCHEMA)
    url: StrictStr = Field(max_length=MAX_URL_LENGTH, json_schema_extra=URL_SCHEMA)
    method: StrictStr = Field(default="POST", json_schema_extra=METHOD_SCHEMA)
    auth: AuthParts | None = None

    _url = field_validator("url")(_check_url)
    _method = field_validator("method")(_check_method)


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product: Tag
    access_tag: Tag
    webhook_tag: Tag
    envs: list[EnvRegistration] = Field(min_length=1, max_length=MAX_ENVS)


class GenerateLinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product: Tag
    access_tag: Tag
    webhook_tag: Tag
    env: StrictStr = Field(max_length=MAX_TAG_LENGTH, json_schema_extra=SLUG_SCHEMA)
    url: StrictStr = Field(max_length=MAX_URL_LENGTH, json_schema_extra=URL_SCHEMA)
    method: StrictStr = Field(default="POST", json_schema_extra=METHOD_SCHEMA)

    _url = field_validator("url")(_check_url)
    _method = field_validator("method")(_check_method)


class ErrorEnvelope(BaseModel):
    status: bool = False
    meta: dict[str, Any] = {}
    errors: str


def failures(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error answers a route can give, for the OpenAPI schema; all use the error envelope."""
    reasons = {400: "malformed JSON", 401: "missing or unknown access key", 403: "key not allowed on the product",
               404: "unknown product, access tag, webhook tag or uuid", 405: "method not allowed",
               409: "the registration is disabled", 410: "an earlier uuid of a rotated registration",
               422: "invalid field, named in errors", 429: "rate limited (Retry-After)",
               502: "the provider refused the registration", 503: "unavailable (Retry-After)"}
    return {code: {"model": ErrorEnvelope, "description": reasons[code]} for code in codes}


COMMON_FAILURES = (401, 403, 404, 405, 422, 429, 503)


def check_env(product: Product, connection: Connection, slug: str, field: str) -> None:
    check_product_env(product, slug, field)
    if slug not in connection.envs:
        raise ApiError(
            422, f"{field}: env {quoted(slug)} is not mapped to an app env for access tag {quoted(connection.access_tag)}"
        )


def check_receiver(grant: Access, url: str, field: str) -> None:
    """A receiver url this relay must not deliver to (itself, or an address the policy refuses) is a 422."""
    reason = destination_refusal(url, grant.config)
    if reason is not None:
        raise ApiError(422, f"{field}: {reason}")


UNREGISTERED = {"status": "unregistered", "http_status": None, "at": None, "error": None}


def provider_view(registration: Registration, catalog: Catalog) -> dict[str, Any] | None:
    """provider_registration as the catalog stands now: a registration made while its app env had no
    provider registration endpoint, whose seed has one now, shows "unregistered" (not sent to the
    provider), so a client sends it again and the register call registers it at the provider."""
    provider = registration.provider_registration
    if provider is not None:
        return {"status": provider.status, "http_status": provider.http_status, "at": provider.at,
                "error": provider.error}
    endpoint = catalog.provider_endpoint(registration.product, registration.access_tag, registration.webhook_tag,
                                         registration.app_env)
    return dict(UNREGISTERED) if endpoint is not None else None


def ingress_views(grant: Access, registrations: list[Registration]) -> dict[str, dict[str, Any]]:
    """Each registration's `ingress` block: events refused (signature) and repeats not delivered again."""
    from ductape_local.deliveries import iso_utc  # deliveries.py imports this module

    with grant.store.connect() as conn:
        counts = ingress_counts(conn, [(r.uuid, r.origin_uuid) for r in registrations])
    for entry in counts.values():
        if entry["last_rejection"] is not None:
            entry["last_rejection"]["at"] = iso_utc(entry["last_rejection"]["at"])
    return counts


def registration_view(registration: Registration, grant: Access,
                      ingress: dict[str, Any] | None = None) -> dict[str, Any]:
    if ingress is None:
        ingress = ingress_views(grant, [registration])[registration.uuid]
    return {
        "uuid": registration.uuid,
        "productEnv": registration.product_env,
        "appEnv": registration.app_env,
        "url": mask_url(registration.url),
        "method": registration.method,
        "link": grant.registrar.link(registration.uuid),
        "active": registration.active,
        "auth": mask_auth(registration.auth),
        "auth_digest": registration.auth_digest,
        "url_digest": registration.url_digest,
        "provider_registration": provider_view(registration, grant.catalog),
        "created_at": registration.created_at,
        "updated_at": registration.updated_at,
        # the lifecycle (contract L1, our extension)
        "state": registration.state,
        "generation": registration.generation,
        "link_created_at": registration.link_created_at,
        "previous_link": previous_link_view(registration, grant),
        "ingress": ingress,
    }


def previous_link_view(registration: Registration, grant: Access) -> dict[str, str] | None:
    """The link a rotation retired, while its grace period runs (it still forwards until expires_at)."""
    grace = registration.grace_link()
    if grace is None:
        return None
    uuid, expires_at = grace
    return {"uuid": uuid, "link": grant.registrar.link(uuid), "expires_at": expires_at}


def result_view(result: RegistrationResult, grant: Access) -> dict[str, Any]:
    return {**registration_view(result.registration, grant), "changed": result.changed, "created": result.created}


def raise_provider_failures(results: list[RegistrationResult]) -> None:
    failures = [r.provider_failure for r in results if r.provider_failure]
    if failures:
        raise ApiError(502, "; ".join(failures))


@router.post("/register", responses=failures(400, *COMMON_FAILURES, 502), summary="Full registration of one webhook in several product envs (upsert per env)")
def register(body: RegisterRequest, grant: AccessDep) -> dict[str, Any]:
    product = grant.product(body.product)
    connection = grant.connection(product, body.access_tag)
    webhook = grant.webhook(connection, body.webhook_tag)
    seen: set[str] = set()
    for index, env in enumerate(body.envs):
        if env.slug in seen:
            raise ApiError(422, f"envs[{index}].slug: duplicate env {quoted(env.slug)} in one request")
        seen.add(env.slug)
        check_env(product, connection, env.slug, f"envs[{index}].slug")
        check_receiver(grant, env.url, f"envs[{index}].url")
    desired = [
        DesiredRegistration(env.slug, env.url, env.method, env.auth.model_dump() if env.auth else {})
        for env in body.envs
    ]
    results = grant.registrar.apply(product.tag, connection, webhook, desired, register_at_providers=True)
    raise_provider_failures(results)
    return success({
        "product": product.tag,
        "access_tag": connection.access_tag,
        "webhook_tag": webhook.tag,
        "envs": [result_view(r, grant) for r in results],
    })


@router.post("/generate-link", responses=failures(400, *COMMON_FAILURES), summary="Create or reuse the registration of one env and return its wrapped link")
def generate_link(body: GenerateLinkRequest, grant: AccessDep) -> dict[str, Any]:
    product = grant.product(body.product)
    connection = grant.connection(product, body.access_tag)
    webhook = grant.webhook(connection, body.webhook_tag)
    check_env(product, connection, body.env, "env")
    check_receiver(grant, body.url, "url")
    desired = [DesiredRegistration(body.env, body.url, body.method, auth=None)]
    [result] = grant.registrar.apply(product.tag, connection, webhook, desired, register_at_providers=False)
    return success(result_view(result, grant))


@router.get("/webhooks", responses=failures(*COMMON_FAILURES), summary="The webhooks of the app behind an access tag, with their registrations")
def list_webhooks(
    grant: AccessDep,
    product: Annotated[str, Query(min_length=1, max_length=MAX_TAG_LENGTH)],
    access_tag: Annotated[str, Query(min_length=1, max_length=MAX_TAG_LENGTH)],
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query()] = None,
    webhook_tag: Annotated[str | None, Query(
        min_length=1, max_length=MAX_TAG_LENGTH,
        description="ductape-local extension: only the webhook of this tag (an empty page when the app has none)",
    )] = None,
) -> dict[str, Any]:
    found = grant.product(product)
    connection = grant.connection(found, access_tag)
    webhooks = grant.catalog.apps[connection.app].sorted_webhooks
    if webhook_tag is not None:
        # An extension of the contract, so that a client looking for one webhook reads one short page;
        # a server without it answers the whole listing and the client filters.
        webhooks = [w for w in webhooks if w.tag == webhook_tag]
    if cursor:
        position = decode_cursor(WEBHOOKS_CURSOR, cursor)
        if not (isinstance(position, list) and len(position) == 2 and position[0] == connection.app
                and isinstance(position[1], str)):
            raise BadCursor("cursor", cursor)
        after = position[1]
        webhooks = [w for w in webhooks if w.tag > after]
    page, rest = webhooks[:limit], webhooks[limit:]
    registrations: dict[str, list[dict[str, Any]]] = {w.tag: [] for w in page}
    live = grant.store.live_registrations(found.tag, connection.access_tag, list(registrations))
    ingress = ingress_views(grant, live)
    for registration in live:
        registrations[registration.webhook_tag].append(registration_view(registration, grant, ingress[registration.uuid]))
    data = [{"tag": w.tag, "name": w.name, "config": registrations[w.tag]} for w in page]
    next_cursor = encode_cursor(WEBHOOKS_CURSOR, [connection.app, page[-1].tag]) if page and rest else None
    # product_envs: a ductape-local extension, so that a client can name the product's envs when a
    # user asks for one that does not exist (the contract has no route that lists them).
    return success(data, meta={"next_cursor": next_cursor, "product_envs": list(found.envs)})


@router.delete("/registrations/{uuid}", responses=failures(*COMMON_FAILURES), summary="Remove a registration (its wrapped link stops forwarding)")
def delete_registration(uuid: str, grant: AccessDep) -> dict[str, Any]:
    registration_for_route(grant.store, grant.catalog, grant.products, uuid)
    removed = grant.store.soft_delete(uuid)
    if removed is None:  # deleted by a concurrent request between the two statements
        raise ApiError(404, f"uuid: no registration {quoted(uuid)}")
    return success(registration_view(removed, grant))
