"""The contract's four control-plane routes: the one place where their wire format lives."""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Annotated, Any, Union

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, field_validator
from pydantic_core import PydanticCustomError

from ductape_local.auth_digest import mask_auth
from ductape_local.catalog import ENV_SLUG, HTTP_METHODS, Catalog, Connection, Product, WebhookDefinition, is_http_url
from ductape_local.envelope import ApiError, quoted, success
from ductape_local.registrations import DesiredRegistration, Registrar, RegistrationResult
from ductape_local.store import Registration, Store

DEFAULT_PAGE = 50
MAX_PAGE = 250

router = APIRouter(prefix="/webhooks/v1", tags=["control plane"])

Scalar = Union[StrictStr, StrictInt, StrictFloat, StrictBool]


class AuthParts(BaseModel):
    """IActionRequest: how the provider registration call authenticates and is shaped."""

    model_config = ConfigDict(extra="forbid")
    headers: dict[str, Scalar] | None = None
    query: dict[str, Scalar] | None = None
    body: dict[str, Any] | None = None
    params: dict[str, Scalar] | None = None


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
    slug: StrictStr = Field(json_schema_extra=SLUG_SCHEMA)
    url: StrictStr = Field(json_schema_extra=URL_SCHEMA)
    method: StrictStr = Field(default="POST", json_schema_extra=METHOD_SCHEMA)
    auth: AuthParts | None = None

    _url = field_validator("url")(_check_url)
    _method = field_validator("method")(_check_method)


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product: StrictStr = Field(min_length=1)
    access_tag: StrictStr = Field(min_length=1)
    webhook_tag: StrictStr = Field(min_length=1)
    envs: list[EnvRegistration] = Field(min_length=1)


class GenerateLinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product: StrictStr = Field(min_length=1)
    access_tag: StrictStr = Field(min_length=1)
    webhook_tag: StrictStr = Field(min_length=1)
    env: StrictStr = Field(json_schema_extra=SLUG_SCHEMA)
    url: StrictStr = Field(json_schema_extra=URL_SCHEMA)
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
               422: "invalid field, named in errors", 429: "rate limited (Retry-After)",
               502: "the provider refused the registration", 503: "unavailable (Retry-After)"}
    return {code: {"model": ErrorEnvelope, "description": reasons[code]} for code in codes}


COMMON_FAILURES = (401, 403, 404, 405, 422, 429, 503)


# Declared for the OpenAPI schema; the key itself is checked in `access`.
_bearer = HTTPBearer(auto_error=False)
_token_header = APIKeyHeader(name="x-access-token", auto_error=False)


@dataclass(frozen=True)
class Access:
    catalog: Catalog
    products: frozenset[str]
    store: Store
    registrar: Registrar

    def product(self, tag: str, field: str = "product") -> Product:
        product = self.catalog.products.get(tag)
        if product is None:
            raise ApiError(404, f"{field}: unknown product {quoted(tag)}")
        if tag not in self.products:
            raise ApiError(403, f"{field}: this access key is not allowed on product {quoted(tag)}")
        return product

    def connection(self, product: Product, access_tag: str) -> Connection:
        connection = product.connections.get(access_tag)
        if connection is None:
            raise ApiError(404, f"access_tag: unknown access tag {quoted(access_tag)} for product {quoted(product.tag)}")
        return connection

    def webhook(self, connection: Connection, webhook_tag: str) -> WebhookDefinition:
        webhook = self.catalog.apps[connection.app].webhooks.get(webhook_tag)
        if webhook is None:
            raise ApiError(
                404,
                f"webhook_tag: unknown webhook {quoted(webhook_tag)} for access tag {quoted(connection.access_tag)}",
            )
        return webhook


def access(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    token: Annotated[str | None, Depends(_token_header)],
) -> Access:
    key = (bearer.credentials if bearer else None) or token
    if not key or not key.strip():
        raise ApiError(401, "missing access key: send 'Authorization: Bearer <key>' or 'x-access-token: <key>'")
    state = request.app.state
    products = state.catalog.products_for_key(key.strip())
    if products is None:
        raise ApiError(401, "unknown access key")
    return Access(catalog=state.catalog, products=products, store=state.store, registrar=state.registrar)


AccessDep = Annotated[Access, Depends(access)]


def check_env(product: Product, connection: Connection, slug: str, field: str) -> None:
    if slug not in product.envs:
        raise ApiError(
            422, f"{field}: {quoted(slug)} is not an env of product {quoted(product.tag)} ({', '.join(product.envs)})"
        )
    if slug not in connection.envs:
        raise ApiError(
            422, f"{field}: env {quoted(slug)} is not mapped to an app env for access tag {quoted(connection.access_tag)}"
        )


def registration_view(registration: Registration, registrar: Registrar) -> dict[str, Any]:
    provider = registration.provider_registration
    return {
        "uuid": registration.uuid,
        "productEnv": registration.product_env,
        "appEnv": registration.app_env,
        "url": registration.url,
        "method": registration.method,
        "link": registrar.link(registration.uuid),
        "active": registration.active,
        "auth": mask_auth(registration.auth),
        "auth_digest": registration.auth_digest,
        "provider_registration": None if provider is None else {
            "status": provider.status, "http_status": provider.http_status, "at": provider.at, "error": provider.error,
        },
        "created_at": registration.created_at,
        "updated_at": registration.updated_at,
    }


def result_view(result: RegistrationResult, registrar: Registrar) -> dict[str, Any]:
    return {**registration_view(result.registration, registrar), "changed": result.changed, "created": result.created}


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
        "envs": [result_view(r, grant.registrar) for r in results],
    })


@router.post("/generate-link", responses=failures(400, *COMMON_FAILURES), summary="Create or reuse the registration of one env and return its wrapped link")
def generate_link(body: GenerateLinkRequest, grant: AccessDep) -> dict[str, Any]:
    product = grant.product(body.product)
    connection = grant.connection(product, body.access_tag)
    webhook = grant.webhook(connection, body.webhook_tag)
    check_env(product, connection, body.env, "env")
    desired = [DesiredRegistration(body.env, body.url, body.method, auth=None)]
    [result] = grant.registrar.apply(product.tag, connection, webhook, desired, register_at_providers=False)
    return success(result_view(result, grant.registrar))


def encode_cursor(app: str, after_tag: str) -> str:
    raw = json.dumps({"app": app, "after": after_tag}, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, app: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw)
        after = position["after"]
        valid = isinstance(after, str) and position.get("app") == app
    except (binascii.Error, ValueError, TypeError, KeyError):
        valid = False
    if not valid:
        raise ApiError(422, f"cursor: not a cursor of this listing (got {quoted(cursor)}); pass meta.next_cursor as given")
    return after


@router.get("/webhooks", responses=failures(*COMMON_FAILURES), summary="The webhooks of the app behind an access tag, with their registrations")
def list_webhooks(
    grant: AccessDep,
    product: Annotated[str, Query(min_length=1)],
    access_tag: Annotated[str, Query(min_length=1)],
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query()] = None,
    webhook_tag: Annotated[str | None, Query(
        min_length=1,
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
        after = decode_cursor(cursor, connection.app)
        webhooks = [w for w in webhooks if w.tag > after]
    page, rest = webhooks[:limit], webhooks[limit:]
    registrations: dict[str, list[dict[str, Any]]] = {w.tag: [] for w in page}
    for registration in grant.store.live_registrations(found.tag, connection.access_tag, list(registrations)):
        registrations[registration.webhook_tag].append(registration_view(registration, grant.registrar))
    data = [{"tag": w.tag, "name": w.name, "config": registrations[w.tag]} for w in page]
    next_cursor = encode_cursor(connection.app, page[-1].tag) if page and rest else None
    # product_envs: a ductape-local extension, so that a client can name the product's envs when a
    # user asks for one that does not exist (the contract has no route that lists them).
    return success(data, meta={"next_cursor": next_cursor, "product_envs": list(found.envs)})


@router.delete("/registrations/{uuid}", responses=failures(*COMMON_FAILURES), summary="Remove a registration (its wrapped link stops forwarding)")
def delete_registration(uuid: str, grant: AccessDep) -> dict[str, Any]:
    existing = grant.store.get_registration(uuid, include_deleted=False)
    if existing is None:
        raise ApiError(404, f"uuid: no registration {quoted(uuid)}")
    grant.product(existing.product, field="uuid")
    removed = grant.store.soft_delete(uuid)
    if removed is None:  # deleted by a concurrent request between the two statements
        raise ApiError(404, f"uuid: no registration {quoted(uuid)}")
    return success(registration_view(removed, grant.registrar))
