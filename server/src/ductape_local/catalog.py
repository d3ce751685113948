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


# Provider-signature strategies (verification.py implements them) and what each one's seed entry takes.
VERIFY_STRATEGIES = ("hmac", "stripe", "github", "paystack", "none")
HMAC_ALGORITHMS = ("sha256", "sha512")
SIGNATURE_ENCODINGS = ("hex", "base64")
_SECRET_OPTIONS = ("secret_env", "secret_file")
# How the signing secrets of the providers above begin (Stripe's endpoint secret, Paystack's secret
# key): a reference that begins so is the secret pasted in place of its variable or file name.
SECRET_VALUE_PREFIXES = ("whsec_", "sk_live_", "sk_test_")
VERIFY_OPTIONS = {
    "hmac": ("header", "algorithm", "encoding", "prefix", *_SECRET_OPTIONS),
    "stripe": ("header", "tolerance_seconds", *_SECRET_OPTIONS),
    "github": _SECRET_OPTIONS,
    "paystack": _SECRET_OPTIONS,
    "none": (),
}
DEFAULT_STRIPE_TOLERANCE_S = 300
MAX_STRIPE_TOLERANCE_S = 86400
DEFAULT_DEDUP_WINDOW_S = 86400
MAX_DEDUP_WINDOW_S = 30 * 86400
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass(frozen=True)
class SecretRef:
    """Where a signing secret is read at start: an environment variable or a file. Never the value."""

    kind: str  # "secret_env" | "secret_file"
    name: str
    where: str  # the seed path of the reference, for errors

    def describe(self) -> str:
        return f"environment variable {self.name!r}" if self.kind == "secret_env" else f"file {self.name!r}"


@dataclass(frozen=True)
class VerifyConfig:
    """A webhook definition's signature check for one app env, as the seed declares it."""

    strategy: str
    secret: SecretRef | None = None
    header: str = ""
    algorithm: str = "sha256"
    encoding: str = "hex"
    prefix: str = ""
    tolerance_seconds: int = DEFAULT_STRIPE_TOLERANCE_S
    where: str = ""  # the seed path of this verify entry


@dataclass(frozen=True)
class DedupConfig:
    """Where a webhook definition's provider event id lives (one of header / json_path) and for how
    long a repeat of it is dropped."""

    header: str | None = None
    json_path: tuple[str, ...] | None = None
    window_seconds: int = DEFAULT_DEDUP_WINDOW_S


@dataclass(frozen=True)
class WebhookDefinition:
    tag: str
    name: str
    registration: dict[str, ProviderEndpoint] = field(default_factory=dict)
    # verification by app env: `verify_default` for app envs without an entry of their own
    verify_default: VerifyConfig | None = None
    verify_envs: dict[str, VerifyConfig] = field(default_factory=dict)
    dedup: DedupConfig | None = None
    # the seed's own verify / dedup entries (references only), kept in the stored catalog
    raw_verify: dict[str, Any] | None = None
    raw_dedup: dict[str, Any] | None = None

    def verification(self, app_env: str) -> VerifyConfig | None:
        """The signature check of events for this app env; None (or strategy none) checks nothing."""
        return self.verify_envs.get(app_env, self.verify_default)


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
                            **({"verify": w.raw_verify} if w.raw_verify is not None else {}),
                            **({"dedup": w.raw_dedup} if w.raw_dedup is not None else {}),
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
    _check_verify_envs(apps, products)
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
        verify_default, verify_envs, raw_verify = None, {}, None
        if hook.get("verify") is not None:
            raw_verify = _mapping(hook["verify"], f"{hook_where}.verify")
            verify_default, verify_envs = _parse_verify(raw_verify, f"{hook_where}.verify")
        raw_dedup = None if hook.get("dedup") is None else _mapping(hook["dedup"], f"{hook_where}.dedup")
        dedup = _parse_dedup(raw_dedup, f"{hook_where}.dedup") if raw_dedup is not None else None
        webhooks[hook_tag] = WebhookDefinition(
            tag=hook_tag, name=name, registration=registration, verify_default=verify_default,
            verify_envs=verify_envs, dedup=dedup, raw_verify=raw_verify, raw_dedup=raw_dedup)
    return App(tag=tag, webhooks=webhooks)


def _check_verify_envs(apps: dict[str, App], products: dict[str, Product]) -> None:
    """A `verify.envs` entry must name an app env that a connection maps a product env to: a misspelt
    one would leave that env's events checked by the default, or (without a default) not at all."""
    app_envs: dict[str, set[str]] = {}
    for product in products.values():
        for connection in product.connections.values():
            app_envs.setdefault(connection.app, set()).update(connection.envs.values())
    for app in apps.values():
        known = app_envs.get(app.tag)
        if not known:  # no product is connected to this app: its events cannot arrive
            continue
        for webhook in app.webhooks.values():
            for app_env, config in webhook.verify_envs.items():
                if app_env not in known:
                    raise SeedError(f"{config.where}: no connection maps a product env to the app env {app_env!r} "
                                    f"of app {app.tag!r} (its app envs: {', '.join(sorted(known))})")


def _parse_verify(entry: dict[str, Any], where: str) -> tuple[VerifyConfig | None, dict[str, VerifyConfig]]:
    """`verify`: a strategy with its options, and under `envs` per app env the options that differ
    there (an env entry's keys replace the base's; its secret reference replaces the base's)."""
    base = {key: value for key, value in entry.items() if key != "envs"}
    if not base and not entry.get("envs"):
        # an empty verify would check nothing, as if it were not there, and look as if it did
        raise SeedError(f"{where}: names no strategy (give strategy, or envs with one per app env; "
                        "strategy none checks nothing)")
    places = {key: f"{where}.{key}" for key in base}
    default = _verify_config(base, places, where) if base else None
    envs = {}
    for app_env, raw_override in _mapping(entry.get("envs") or {}, f"{where}.envs").items():
        env_where = f"{where}.envs.{app_env}"
        override = _mapping(raw_override if raw_override is not None else {}, env_where)
        merged, merged_places = dict(base), dict(places)
        if any(key in override for key in _SECRET_OPTIONS):
            for key in _SECRET_OPTIONS:
                merged.pop(key, None)
        if "strategy" in override and override.get("strategy") != base.get("strategy"):
            # another strategy: none of the base's options carry over, except the secret reference
            # (and not even that to strategy none)
            keep = () if override.get("strategy") == "none" else _SECRET_OPTIONS
            merged = {key: value for key, value in merged.items() if key in keep}
        merged.update(override)
        merged_places.update({key: f"{env_where}.{key}" for key in override})
        envs[str(app_env)] = _verify_config(merged, merged_places, env_where)
    return default, envs


def _verify_config(entry: dict[str, Any], places: dict[str, str], where: str) -> VerifyConfig:
    """One effective verify entry; each error names the seed path of the offending key."""
    def at(key: str) -> str:
        return places.get(key, f"{where}.{key}")

    if "secret" in entry:
        raise SeedError(f"{at('secret')}: a signing secret never goes in the seed; name where it is read "
                        "with secret_env (an environment variable) or secret_file (a file path)")
    strategy = _text(entry.get("strategy"), at("strategy"))
    if strategy not in VERIFY_STRATEGIES:
        raise SeedError(f"{at('strategy')}: must be one of {', '.join(VERIFY_STRATEGIES)} (got {strategy!r})")
    allowed = VERIFY_OPTIONS[strategy]
    for key in entry:
        if key != "strategy" and key not in allowed:
            options = ", ".join(allowed) if allowed else "none"
            raise SeedError(f"{at(str(key))}: not an option of strategy {strategy!r} (its options: {options})")
    if strategy == "none":
        return VerifyConfig(strategy="none", where=where)
    references = [key for key in _SECRET_OPTIONS if key in entry]
    if len(references) != 1:
        problem = "takes one of" if references else "needs"
        raise SeedError(f"{where}: strategy {strategy!r} {problem} secret_env (an environment variable name) "
                        "or secret_file (a file path)")
    kind = references[0]
    name = _text(entry[kind], at(kind), echo=False)
    if name.startswith(SECRET_VALUE_PREFIXES):
        what = "an environment variable name" if kind == "secret_env" else "a file path"
        raise SeedError(f"{at(kind)}: holds a signing secret itself (it begins as Stripe's and Paystack's "
                        f"secrets do); the seed names where the secret is read: {what}")
    if kind == "secret_env" and not ENV_NAME.match(name):
        raise SeedError(f"{at(kind)}: must be an environment variable name (got {name!r})")
    secret = SecretRef(kind=kind, name=name, where=at(kind))
    options: dict[str, Any] = {}
    if "header" in entry:
        header = _text(entry["header"], at("header"))
        if not HEADER_NAME.match(header):
            raise SeedError(f"{at('header')}: must be an HTTP header name (got {header!r})")
        options["header"] = header
    if strategy == "hmac":
        if "header" not in options:
            raise SeedError(f"{where}: strategy 'hmac' needs header (the header that carries the signature)")
        for key, choices in (("algorithm", HMAC_ALGORITHMS), ("encoding", SIGNATURE_ENCODINGS)):
            if key in entry:
                value = _text(entry[key], at(key))
                if value not in choices:
                    raise SeedError(f"{at(key)}: must be one of {', '.join(choices)} (got {value!r})")
                options[key] = value
        if "prefix" in entry:
            prefix = entry["prefix"]
            if not isinstance(prefix, str) or any(c.isspace() or not c.isprintable() for c in prefix):
                raise SeedError(f"{at('prefix')}: must be a string without spaces (got {prefix!r})")
            options["prefix"] = prefix
    elif strategy == "stripe":
        options["header"] = options.get("header", "Stripe-Signature")
        if "tolerance_seconds" in entry:
            options["tolerance_seconds"] = _whole_number(entry["tolerance_seconds"], at("tolerance_seconds"),
                                                         1, MAX_STRIPE_TOLERANCE_S)
    elif strategy == "github":
        options.update(header="X-Hub-Signature-256", algorithm="sha256", encoding="hex", prefix="sha256=")
    elif strategy == "paystack":
        options.update(header="x-paystack-signature", algorithm="sha512", encoding="hex")
    return VerifyConfig(strategy=strategy, secret=secret, where=where, **options)


def _parse_dedup(entry: dict[str, Any], where: str) -> DedupConfig:
    for key in entry:
        if key not in ("header", "json_path", "window_seconds"):
            raise SeedError(f"{where}.{key}: not an option of dedup (its options: header, json_path, window_seconds)")
    places = [key for key in ("header", "json_path") if key in entry]
    if len(places) != 1:
        raise SeedError(f"{where}: needs exactly one of header (the header holding the provider's event id) "
                        "or json_path (its dotted path in a JSON body, e.g. id or data.object.id)")
    window = DEFAULT_DEDUP_WINDOW_S
    if "window_seconds" in entry:
        window = _whole_number(entry["window_seconds"], f"{where}.window_seconds", 1, MAX_DEDUP_WINDOW_S)
    if places[0] == "header":
        header = _text(entry["header"], f"{where}.header")
        if not HEADER_NAME.match(header):
            raise SeedError(f"{where}.header: must be an HTTP header name (got {header!r})")
        return DedupConfig(header=header, window_seconds=window)
    path = _text(entry["json_path"], f"{where}.json_path")
    parts = tuple(path.split("."))
    if not all(parts):
        raise SeedError(f"{where}.json_path: must be dotted object keys such as id or data.object.id (got {path!r})")
    return DedupConfig(json_path=parts, window_seconds=window)


def _whole_number(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SeedError(f"{where}: must be a whole number of seconds from {low} to {high} (got {value!r})")
    return value


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
