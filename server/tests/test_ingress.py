"""A provider's event through a wrapped link, over real HTTP: accepted, then delivered byte for byte
to a receiver that the test runs, with the header rules of the contract; refused when the link is
unknown, deleted, or the body too large."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests
from delivery_receiver import Receiver

from conftest import PRODUCT, STRIPE, Api, data_of, error_of
from ductape_local.testing import LocalServer

MAX_BODY = 4096


@pytest.fixture(scope="module")
def server():
    with LocalServer(retry_schedule="0.05,0.05", delivery_timeout=5, max_body=MAX_BODY) as running:
        yield running


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


def link_to(api: Api, url: str, method: str = "POST", env: str = "dev", webhook_tag: str = "payment_succeeded"):
    """The registration of (webhook_tag, env) pointed at url; its link stays the same across calls."""
    return data_of(api.generate_link(url=url, method=method, env=env, webhook_tag=webhook_tag))


def accepted(response: requests.Response) -> str:
    data = data_of(response, 202)
    assert set(data) == {"event_id"}
    return data["event_id"]


def delivery(api: Api, event_id: str) -> dict:
    return data_of(api.call("GET", f"/webhooks/v1/deliveries/{event_id}"))


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/json", '{"id": "evt_1",  "amount": 4200, "note": "caf\u00e9 \u2713"}\n'.encode("utf-8")),
        ("application/x-www-form-urlencoded", b"type=charge.succeeded&amount=4200&note=a%20b+c&empty="),
        ("application/octet-stream", bytes(range(256)) * 3),
    ],
    ids=["json", "form", "binary"],
)
def test_body_arrives_byte_for_byte(api, receiver, content_type, body):
    registration = link_to(api, receiver.url + "/hooks/payments")
    event_id = accepted(requests.post(registration["link"], data=body, headers={"Content-Type": content_type}))
    [got] = receiver.wait_for(1)
    assert got.body == body
    assert got.header("Content-Type") == content_type
    assert got.header("Content-Length") == str(len(body))
    assert got.method == "POST" and got.path == "/hooks/payments"
    assert got.header("X-Ductape-Event-Id") == event_id


def test_the_registrations_method_is_used_whatever_the_provider_sent(api, receiver):
    registration = link_to(api, receiver.url + "/in", method="PUT", env="stg")
    accepted(requests.patch(registration["link"], data=b"patched"))
    [got] = receiver.wait_for(1)
    assert (got.method, got.body) == ("PUT", b"patched")


def test_header_rules(api, receiver):
    registration = link_to(api, receiver.url + "/in", env="prd", webhook_tag="charge_refunded")
    body = b'{"ok": true}'
    event_id = accepted(
        requests.post(
            registration["link"],
            data=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": "t=1,v1=abc",
                "Connection": "keep-alive, X-Hop-Only",
                "X-Hop-Only": "named by Connection",
                "Keep-Alive": "timeout=5",
                "Proxy-Authorization": "Basic cHJveHk6cHJveHk=",
                "TE": "trailers",
                "X-Ductape-Event-Id": "evt_spoofed",
                "X-Ductape-Env": "spoofed",
            },
        )
    )
    [got] = receiver.wait_for(1)
    assert got.header("Stripe-Signature") == "t=1,v1=abc"
    assert got.header("User-Agent") == "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
    assert got.header("Content-Type") == "application/json"
    for dropped in ("x-hop-only", "keep-alive", "proxy-authorization", "te"):
        assert dropped not in got.header_names()
    assert got.header("Host") == receiver.url.removeprefix("http://")
    assert got.header("Content-Length") == str(len(body))
    # Ductape's own headers are set by the middleware, never taken from the provider
    assert got.header("X-Ductape-Event-Id") == event_id
    assert got.header("X-Ductape-Webhook-Tag") == "charge_refunded"
    assert got.header("X-Ductape-Env") == "prd"


def test_the_providers_query_string_is_passed_on(api, receiver):
    registration = link_to(api, receiver.url + "/in?source=ductape")
    accepted(requests.get(registration["link"], params={"challenge": "a b", "id": "7"}))
    [got] = receiver.wait_for(1)
    assert got.path == "/in?source=ductape&challenge=a+b&id=7"


def test_a_delivery_marks_the_registration_active_and_is_recorded(api, receiver):
    registration = link_to(api, receiver.url + "/active", env="prd", webhook_tag="payment_succeeded")
    assert registration["active"] is False
    event_id = accepted(requests.post(registration["link"], json={"n": 1}))
    receiver.wait_for(1)
    record = wait_delivered(api, event_id)
    assert record["registration_uuid"] == registration["uuid"]
    assert (record["product"], record["access_tag"], record["webhook_tag"], record["env"], record["method"]) == (
        PRODUCT, STRIPE, "payment_succeeded", "prd", "POST")
    assert record["attempt_count"] == 1 and record["last_error"] is None
    [attempt] = record["attempts"]
    assert attempt["n"] == 1 and attempt["status_code"] == 200 and attempt["error"] is None
    assert attempt["latency_ms"] >= 0
    listing = data_of(api.webhooks())
    [config] = [r for w in listing for r in w["config"] if r["uuid"] == registration["uuid"]]
    assert config["active"] is True


def wait_delivered(api: Api, event_id: str) -> dict:
    """The delivery record once the worker has written its outcome (the receiver sees it a moment before)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        record = delivery(api, event_id)
        if record["status"] != "pending":
            return record
        time.sleep(0.02)
    raise AssertionError(f"still pending: {record}")


def test_unknown_link_is_404_and_stores_nothing(api):
    missing = str(uuid.uuid4())
    before = data_of(api.call("GET", "/webhooks/v1/deliveries", params={"limit": 250}))
    message = error_of(requests.post(f"{api.server.url}/webhooks/v1/process/{missing}", json={"a": 1}), 404)
    assert missing in message
    after = data_of(api.call("GET", "/webhooks/v1/deliveries", params={"limit": 250}))
    assert len(after) == len(before)


def test_deleted_registration_is_410(api, receiver):
    registration = link_to(api, receiver.url + "/gone", env="stg", webhook_tag="charge_refunded")
    data_of(api.delete(registration["uuid"]))
    message = error_of(requests.post(registration["link"], json={"a": 1}), 410)
    assert registration["uuid"] in message and "deleted" in message
    assert receiver.requests == []


def test_body_over_the_limit_is_413_at_the_limit_accepted(api, receiver):
    registration = link_to(api, receiver.url + "/big", env="dev", webhook_tag="charge_refunded")
    message = error_of(requests.post(registration["link"], data=b"x" * (MAX_BODY + 1)), 413)
    assert str(MAX_BODY) in message and "--max-body" in message
    # without Content-Length (chunked), the limit holds while the body streams in
    chunks = (b"y" * 1024 for _ in range(MAX_BODY // 1024 + 1))
    error_of(requests.post(registration["link"], data=chunks), 413)
    accepted(requests.post(registration["link"], data=b"z" * MAX_BODY))
    [got] = receiver.wait_for(1)
    assert got.body == b"z" * MAX_BODY


def test_event_id_lets_a_receiver_drop_duplicates(api, receiver):
    registration = link_to(api, receiver.url + "/ids", env="dev", webhook_tag="payment_succeeded")
    ids = {accepted(requests.post(registration["link"], data=json.dumps({"n": n}))) for n in range(5)}
    got = receiver.wait_for(5)
    assert {r.header("X-Ductape-Event-Id") for r in got} == ids
    assert len(ids) == 5
