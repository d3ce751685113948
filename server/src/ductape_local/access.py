"""The access key: read from a request's headers, checked against the catalog, and the grant that the
routes use to reach a product (403 for a product the key may not use).

Every router takes `AccessDep` from here; the ASGI guard (limits.py) uses `key_from_headers` and
`products_for_key` to refuse an unauthenticated request before its body is read.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Iterable

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ductape_local.catalog import Catalog, Connection, Product, WebhookDefinition
from ductape_local.config import ServerConfig
from ductape_local.envelope import ApiError, quoted
from ductape_local.registrations import Registrar
from ductape_local.store import Store

MISSING_KEY = "missing access key: send 'Authorization: Bearer <key>' or 'x-access-token: <key>'"
UNKNOWN_KEY = "unknown access key"

# Declared for the OpenAPI schema; the key itself is checked in `access`.
_bearer = HTTPBearer(auto_error=False)
_token_header = APIKeyHeader(name="x-access-token", auto_error=False)


def key_from_headers(raw_headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The key of `Authorization: Bearer <key>` or else `x-access-token: <key>` (ASGI raw headers)."""
    bearer = token = None
    for name, value in raw_headers:
        name = name.lower()
        if name == b"authorization" and bearer is None:
            scheme, _, credentials = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                bearer = credentials.strip()
        elif name == b"x-access-token" and token is None and value.strip():
            token = value.decode("latin-1").strip()
    return bearer or token


def key_problem(catalog: Catalog, key: str | None) -> str | None:
    """None when `key` is a known key, else the 401 message (which never quotes the key)."""
    if not key:
        return MISSING_KEY
    if catalog.products_for_key(key) is None:
        return UNKNOWN_KEY
    return None


@dataclass(frozen=True)
class Access:
    catalog: Catalog
    products: frozenset[str]
    store: Store
    registrar: Registrar
    config: ServerConfig

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

    def check_filter(self, products: Iterable[Product], access_tag: str | None, webhook_tag: str | None,
                     env: str | None) -> None:
        """A filter of the delivery log (list, summary, bulk replay) names only what `products` have: an
        access tag one of them connects, a webhook that tag's app (or any of their apps) defines, one of
        their envs. A misspelt filter is refused, never answered as "nothing matched"."""
        products = list(products)
        connections = [c for product in products for c in product.connections.values()]
        if access_tag is not None:
            connections = [c for c in connections if c.access_tag == access_tag]
            if not connections:
                if len(products) == 1:
                    self.connection(products[0], access_tag)  # its 404
                raise ApiError(404, f"access_tag: unknown access tag {quoted(access_tag)} for the products of "
                                    "this access key")
        if webhook_tag is not None and not any(webhook_tag in self.catalog.apps[c.app].webhooks for c in connections):
            if access_tag is not None:
                self.webhook(connections[0], webhook_tag)  # its 404
            owner = f"product {quoted(products[0].tag)}" if len(products) == 1 else "the products of this access key"
            raise ApiError(404, f"webhook_tag: no app of {owner} defines a webhook {quoted(webhook_tag)}")
        if env is not None and not any(env in product.envs for product in products):
            if len(products) == 1:
                check_product_env(products[0], env, "env")
            raise ApiError(422, f"env: {quoted(env)} is not an env of any product of this access key")


def check_product_env(product: Product, slug: str, field: str) -> None:
    """422 naming the product's envs when `slug` is not one of them."""
    if slug not in product.envs:
        raise ApiError(
            422, f"{field}: {quoted(slug)} is not an env of product {quoted(product.tag)} ({', '.join(product.envs)})"
        )


def access(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    token: Annotated[str | None, Depends(_token_header)],
) -> Access:
    state = request.app.state
    key = key_from_headers(request.scope["headers"])
    problem = key_problem(state.catalog, key)
    if problem is not None:
        raise ApiError(401, problem)
    return Access(catalog=state.catalog, products=state.catalog.products_for_key(key), store=state.store,
                  registrar=state.registrar, config=state.config)


AccessDep = Annotated[Access, Depends(access)]
