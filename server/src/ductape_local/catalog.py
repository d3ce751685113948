"""The seed: access keys, products, app connections and webhook definitions, parsed and checked.

A seed file holds access keys in clear; the catalog that is kept in the database holds only their
sha256, so that a database file never contains a usable key.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
LINK_PLACES = ("body", "query", "headers")
ENV_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{2,}$")


class SeedError(ValueError):
    pass


def key_fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in value)


@dataclass(frozen=True)
class ProviderEndpoint:
    url: str
    method: str
    link_in: str
    link_key: str


@dataclass(frozen=True)
class WebhookDefinition:
    tag: str
    name: str
    registration: dict[str, ProviderEndpoint] = field(default_factory=dict)


@dataclass(frozen=True)
class App:
    tag: str
    webhooks: dict[str, WebhookDefinition]

    @property
    def sorted_webhooks(self) -> list[WebhookDefinition]:
        return [self.webhooks[tag] for tag in sorted(self.webhooks)]


@dataclass(frozen=True)
class Connection:
    access_tag: str
    app: str
    envs: dict[str, str]


@dataclass(frozen=True)
class Product:
    tag: str
    envs: tuple[str, ...]
    connections: dict[str, Connection]


@dataclass(frozen=True)
class Catalog:
    key_products: dict[str, frozenset[str]]
    products: dict[str, Product]
    apps: dict[str, App]

    def provider_endpoint(self, product: str, access_tag: str, webhook_tag: str, app_env: str) -> ProviderEndpoint | None:
        """The provider registration endpoint that the seed declares now for this webhook and app env."""
        connection = self.products[product].connections.get(access_tag) if product in self.products else None
        app = self.apps.get(connection.app) if connection else None
        webhook = app.webhooks.get(webhook_tag) if app else None
        return webhook.registration.get(app_env) if webhook else None

    def products_for_key(self, key: str) -> frozenset[str] | None:
        fingerprint = key_fingerprint(key)
        for known, products in self.key_products.items():
            if hmac.compare_digest(known, fingerprint):
                return products
        return None

    def to_document(self) -> dict[str, Any]:
        return {
            "access_keys": [
                {"key_sha256": fp, "products": sorted(products)} for fp, products in sorted(self.key_products.items())
            ],
            "products": [
                {
                    "tag": p.tag,
                    "envs": list(p.envs),
                    "connections": [
                        {"access_tag": c.access_tag, "app": c.app, "envs": dict(c.envs)} for c in p.connections.values()
                    ],
                }
                for p in self.products.values()
            ],
            "apps": [
                {
                    "tag": a.tag,
                    "webhooks": [
                        {
                            "tag": w.tag,
                            "name": w.name,
                            "registration": {
                                env: {"url": e.url, "method": e.method, "link_in": e.link_in, "link_key": e.link_key}
                                for env, e in w.registration.items()
                            },
                        }
                        for w in a.webhooks.values()
                    ],
                }
                for a in self.apps.values()
            ],
        }


def load_seed_file(path: Path) -> Catalog:
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SeedError(f"cannot read seed file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise SeedError(f"seed file {path} is not valid YAML: {exc}") from exc
    return parse_catalog(document)


def parse_catalog(document: Any) -> Catalog:
    """Check a seed (or a stored catalog) and build the catalog; errors name the offending path."""
    root = _mapping(document, "seed")
    apps = {}
    for i, raw_app in enumerate(_list(root.get("apps", []), "apps")):
        app = _parse_app(raw_app, f"apps[{i}]")
        if app.tag in apps:
            raise SeedError(f"apps[{i}].tag: duplicate app {app.tag!r}")
        apps[app.tag] = app
    products = {}
    for i, raw_product in enumerate(_list(root.get("products", []), "products")):
        product = _parse_product(raw_product, f"products[{i}]", apps)
        if product.tag in products:
            raise SeedError(f"products[{i}].tag: duplicate product {product.tag!r}")
        products[product.tag] = product
    key_products: dict[str, frozenset[str]] = {}
    for i, raw_key in enumerate(_list(root.get("access_keys", []), "access_keys")):
        where = f"access_keys[{i}]"
        entry = _mapping(raw_key, where)
        if "key" in entry:
            fingerprint = key_fingerprint(_text(entry["key"], f"{where}.key", echo=False))
        else:
            fingerprint = _text(entry.get("key_sha256"), f"{where}.key", echo=False)
        allowed = []
        for j, tag in enumerate(_list(entry.get("products", []), f"{where}.products")):
            tag = _text(tag, f"{where}.products[{j}]")
            if tag not in products:
                raise SeedError(f"{where}.products[{j}]: unknown product {tag!r}")
            allowed.append(tag)
        key_products[fingerprint] = key_products.get(fingerprint, frozenset()) | frozenset(allowed)
    return Catalog(key_products=key_products, products=products, apps=apps)


def _parse_app(raw: Any, where: str) -> App:
    entry = _mapping(raw, where)
    tag = _text(entry.get("tag"), f"{where}.tag")
    webhooks: dict[str, WebhookDefinition] = {}
    for i, raw_webhook in enumerate(_list(entry.get("webhooks", []), f"{where}.webhooks")):
        hook_where = f"{where}.webhooks[{i}]"
        hook = _mapping(raw_webhook, hook_where)
        hook_tag = _text(hook.get("tag"), f"{hook_where}.tag")
        if hook_tag in webhooks:
            raise SeedError(f"{hook_where}.tag: duplicate webhook {hook_tag!r} in app {tag!r}")
        name = _text(hook.get("name", hook_tag), f"{hook_where}.name")
        registration = {}
        for app_env, raw_endpoint in _mapping(hook.get("registration") or {}, f"{hook_where}.registration").items():
            registration[str(app_env)] = _parse_endpoint(raw_endpoint, f"{hook_where}.registration.{app_env}")
        webhooks[hook_tag] = WebhookDefinition(tag=hook_tag, name=name, registration=registration)
    return App(tag=tag, webhooks=webhooks)


def _parse_endpoint(raw: Any, where: str) -> ProviderEndpoint:
    entry = _mapping(raw, where)
    url = _text(entry.get("url"), f"{where}.url")
    if not is_http_url(url):
        raise SeedError(f"{where}.url: must be an http or https URL (got {url!r})")
    method = _text(entry.get("method", "POST"), f"{where}.method")
    if method not in HTTP_METHODS:
        raise SeedError(f"{where}.method: must be one of {', '.join(HTTP_METHODS)} (got {method!r})")
    link_in = _text(entry.get("link_in", "body"), f"{where}.link_in")
    if link_in not in LINK_PLACES:
        raise SeedError(f"{where}.link_in: must be one of {', '.join(LINK_PLACES)} (got {link_in!r})")
    link_key = _text(entry.get("link_key", "url"), f"{where}.link_key")
    return ProviderEndpoint(url=url, method=method, link_in=link_in, link_key=link_key)


def _parse_product(raw: Any, where: str, apps: dict[str, App]) -> Product:
    entry = _mapping(raw, where)
    tag = _text(entry.get("tag"), f"{where}.tag")
    envs: list[str] = []
    for i, slug in enumerate(_list(entry.get("envs", []), f"{where}.envs")):
        slug = _text(slug, f"{where}.envs[{i}]")
        if not ENV_SLUG.match(slug):
            raise SeedError(f"{where}.envs[{i}]: env slug must be lowercase, 3+ characters (got {slug!r})")
        if slug in envs:
            raise SeedError(f"{where}.envs[{i}]: duplicate env {slug!r}")
        envs.append(slug)
    connections = {}
    for i, raw_connection in enumerate(_list(entry.get("connections", []), f"{where}.connections")):
        conn_where = f"{where}.connections[{i}]"
        conn = _mapping(raw_connection, conn_where)
        access_tag = _text(conn.get("access_tag"), f"{conn_where}.access_tag")
        if access_tag in connections:
            raise SeedError(f"{conn_where}.access_tag: duplicate access tag {access_tag!r}")
        app_tag = _text(conn.get("app"), f"{conn_where}.app")
        if app_tag not in apps:
            raise SeedError(f"{conn_where}.app: unknown app {app_tag!r}")
        mapping = {}
        for product_env, app_env in _mapping(conn.get("envs") or {}, f"{conn_where}.envs").items():
            if product_env not in envs:
                raise SeedError(f"{conn_where}.envs: {product_env!r} is not an env of product {tag!r}")
            mapping[str(product_env)] = _text(app_env, f"{conn_where}.envs.{product_env}")
        connections[access_tag] = Connection(access_tag=access_tag, app=app_tag, envs=mapping)
    return Product(tag=tag, envs=tuple(envs), connections=connections)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SeedError(f"{where}: must be a mapping")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise SeedError(f"{where}: must be a list")
    return value


def _text(value: Any, where: str, echo: bool = True) -> str:
    if not isinstance(value, str) or not value:
        shown = f" (got {value!r})" if echo and value is not None else ""
        raise SeedError(f"{where}: must be a non-empty string{shown}")
    return value
