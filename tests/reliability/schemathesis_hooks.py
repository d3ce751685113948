"""schemathesis hooks for fuzzing ductape-local (SCHEMATHESIS_HOOKS=schemathesis_hooks).

Random tags only ever reach the 404 of an unknown product. Half of the generated register,
generate-link and listing requests get the seed's real product, access tag, webhook tag and env
slugs instead, so that the fuzzer reaches the code that validates, stores and lists registrations.

Receiver URLs of those requests are moved to a closed loopback port: registrations that the fuzzer
stores must never make the server send anything to a host outside this machine.
"""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import schemathesis
from hypothesis import strategies as st

PRODUCT = "my-product"
ACCESS_TAGS = ["stripe-payments", "paystack-payments"]
WEBHOOK_TAGS = {"stripe-payments": ["payment_succeeded", "charge_refunded"],
                "paystack-payments": ["charge_success", "transfer_success"]}
ENVS = ["prd", "stg", "dev"]
LOOPBACK = "127.0.0.1:9"


def _loopback(url):
    """The same URL (path, query and all) on a closed loopback port; anything else as it was."""
    if not isinstance(url, str):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return url
    return urlunsplit((parts.scheme, LOOPBACK, parts.path, parts.query, parts.fragment))


def _path(ctx):
    return getattr(ctx.operation, "path", "") if ctx is not None else ""


def _realistic(body, access_tag, webhook_tag, envs):
    body = dict(body)
    body.update(product=PRODUCT, access_tag=access_tag, webhook_tag=webhook_tag)
    if "env" in body:
        body["env"] = envs[0]
    if isinstance(body.get("envs"), list):
        items = []
        for index, item in enumerate(body["envs"]):
            if isinstance(item, dict):
                item = dict(item)
                item["slug"] = envs[index % len(envs)]
                items.append(item)
            else:
                items.append(item)
        body["envs"] = items
    return body


@schemathesis.hook
def flatmap_body(ctx, body):
    """Half the time: the seed's real tags, and receiver URLs on a closed loopback port."""
    if not isinstance(body, dict):
        return st.just(body)
    if "url" in body:
        body = {**body, "url": _loopback(body["url"])}
    if isinstance(body.get("envs"), list):
        body = {**body, "envs": [{**e, "url": _loopback(e.get("url"))} if isinstance(e, dict) and "url" in e else e
                                 for e in body["envs"]]}
    if not _path(ctx).endswith(("/register", "/generate-link")):
        return st.just(body)
    realistic = st.sampled_from(ACCESS_TAGS).flatmap(
        lambda tag: st.tuples(st.just(tag), st.sampled_from(WEBHOOK_TAGS[tag]), st.permutations(ENVS)))
    return st.one_of(st.just(body), realistic.map(lambda drawn: _realistic(body, *drawn)))


@schemathesis.hook
def flatmap_query(ctx, query):
    """Half the time, a listing of a real product and access tag."""
    if not isinstance(query, dict) or "product" not in query or not _path(ctx).endswith("/webhooks"):
        return st.just(query)
    return st.one_of(st.just(query), st.sampled_from(ACCESS_TAGS).map(
        lambda tag: {**query, "product": PRODUCT, "access_tag": tag}))
