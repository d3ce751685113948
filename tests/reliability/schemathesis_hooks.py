"""schemathesis hooks for fuzzing ductape-local (SCHEMATHESIS_HOOKS=schemathesis_hooks).

Random tags, uuids and event ids only ever reach a 404. Half of the generated requests get real
values instead, so that the fuzzer reaches the code behind the 404:
- register, generate-link, the webhooks listing, the deliveries listing and summary, and the bulk
  replay: the seed's product, access tag, webhook tag and env slugs;
- the ingress routes (/webhooks/v1/process/{uuid}) and the test event of a registration: the uuid of a
  registered link (FUZZ_LINK_UUIDS; a test event is sent to the link's receiver, as an event is);
- deleting a registration: the uuid of one registered for the fuzzer to delete (FUZZ_DELETE_UUIDS),
  so that the links above keep working;
- one delivery and its replay: the id of an event the server accepted (FUZZ_EVENT_IDS).
test_fuzz_server.py registers those links and sends those events before the fuzzer starts, and passes
them in these variables (comma-separated).

Receiver URLs of those requests are moved to FUZZ_RECEIVER (host:port), a loopback port held bound
and never listening by the test: registrations that the fuzzer stores must never make the server send
anything to a host outside this machine, nor to a program that happens to listen on a fixed port.
"""
from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import schemathesis
from hypothesis import strategies as st

PRODUCT = "my-product"
ACCESS_TAGS = ["stripe-payments", "paystack-payments"]
WEBHOOK_TAGS = {"stripe-payments": ["payment_succeeded", "charge_refunded"],
                "paystack-payments": ["charge_success", "transfer_success"]}
ENVS = ["prd", "stg", "dev"]
LOOPBACK = os.environ.get("FUZZ_RECEIVER", "")


def _listed(name):
    return [value for value in os.environ.get(name, "").split(",") if value]


LINK_UUIDS = _listed("FUZZ_LINK_UUIDS")
DELETE_UUIDS = _listed("FUZZ_DELETE_UUIDS")
EVENT_IDS = _listed("FUZZ_EVENT_IDS")


def _loopback(url):
    """The same URL (path, query and all) on a closed loopback port; anything else as it was."""
    if not isinstance(url, str):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.scheme not in ("http", "https") or not parts.netloc or not LOOPBACK:
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
    if _path(ctx).endswith("/deliveries/replay") and "product" in body:
        return st.one_of(st.just(body), _real_filter(body))
    if not _path(ctx).endswith(("/register", "/generate-link")):
        return st.just(body)
    realistic = st.sampled_from(ACCESS_TAGS).flatmap(
        lambda tag: st.tuples(st.just(tag), st.sampled_from(WEBHOOK_TAGS[tag]), st.permutations(ENVS)))
    return st.one_of(st.just(body), realistic.map(lambda drawn: _realistic(body, *drawn)))


@schemathesis.hook
def flatmap_query(ctx, query):
    """Half the time, a listing (of webhooks or of deliveries) or the summary of a real product and access tag."""
    if not isinstance(query, dict) or "product" not in query or not _path(ctx).endswith(
            ("/webhooks", "/deliveries", "/deliveries/summary")):
        return st.just(query)
    return st.one_of(st.just(query), _real_filter(query))


def _real_filter(fields):
    """The delivery log's filter (query or replay body) on the seed's product and one access tag, with
    a webhook tag of its app and an env of the product where the fuzzer put one (the server refuses
    names the product lacks)."""
    def real(drawn):
        tag, webhook_tag, env = drawn
        found = {**fields, "product": PRODUCT, "access_tag": tag}
        if "webhook_tag" in found:
            found["webhook_tag"] = webhook_tag
        if "env" in found:
            found["env"] = env
        return found
    return st.sampled_from(ACCESS_TAGS).flatmap(
        lambda tag: st.tuples(st.just(tag), st.sampled_from(WEBHOOK_TAGS[tag]), st.sampled_from(ENVS))).map(real)


def _real_path_values(ctx):
    """(path parameter, real values) for the operation, or None."""
    path = _path(ctx)
    if "{uuid}" in path:
        # Disable, rotate and delete would stop the links the ingress routes are sent to: they get the
        # registrations made to be deleted. A test event leaves its link as it was.
        if path.startswith("/webhooks/v1/registrations/") and not path.endswith("/test"):
            return "uuid", DELETE_UUIDS
        return "uuid", LINK_UUIDS
    if "{event_id}" in path:
        return "event_id", EVENT_IDS
    return None


@schemathesis.hook
def flatmap_path_parameters(ctx, path_parameters):
    """Half the time, a real registration uuid or event id."""
    real = _real_path_values(ctx)
    if not isinstance(path_parameters, dict) or real is None or not real[1] or real[0] not in path_parameters:
        return st.just(path_parameters)
    name, values = real
    return st.one_of(st.just(path_parameters), st.sampled_from(values).map(
        lambda value: {**path_parameters, name: value}))
