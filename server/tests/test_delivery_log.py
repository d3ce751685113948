"""The delivery log over real HTTP: listing with filters and cursors, one delivery with its attempts,
replay; and the access key rules that every control-plane route has."""

from __future__ import annotations

import base64
import time

import pytest
import requests
from delivery_receiver import Answer, Receiver

from conftest import PRODUCT, Api, data_of, error_of, example_seed
from ductape_local.cursor import encode_cursor
from ductape_local.testing import LocalServer

OTHER_KEY = "dtl_other_product_key"


def seed_with_a_second_product() -> dict:
    seed = example_seed()
    seed["products"].append(
        {
            "tag": "other-product",
            "envs": ["prd"],
            "connections": [{"access_tag": "stripe-other", "app": "stripe", "envs": {"prd": "live"}}],
        }
    )
    seed["access_keys"].append({"key": OTHER_KEY, "products": ["other-product"]})
    return seed


@pytest.fixture(scope="module")
def server():
    with LocalServer(seed_with_a_second_product(), retry_schedule="0.05", delivery_timeout=5) as running:
        yield running


@pytest.fixture(scope="module")
def receiver():
    with Receiver() as running:
        yield running


@pytest.fixture(scope="module")
def events(server, receiver):
    """Seven delivered events: four to (payment_succeeded, dev), three to (charge_refunded, prd),
    and one of the other product; oldest first."""
    api = Api(server)
    links = {
        ("payment_succeeded", "dev"): data_of(api.generate_link(url=receiver.url + "/a", env="dev"))["link"],
        ("charge_refunded", "prd"): data_of(
            api.generate_link(url=receiver.url + "/b", env="prd", webhook_tag="charge_refunded")
        )["link"],
    }
    other = Api(server, key=OTHER_KEY)
    other_link = data_of(
        other.generate_link(product="other-product", access_tag="stripe-other", env="prd", url=receiver.url + "/c")
    )["link"]
    sent = []
    for n in range(7):
        key = ("payment_succeeded", "dev") if n < 4 else ("charge_refunded", "prd")
        response = requests.post(links[key], json={"n": n})
        sent.append((data_of(response, 202)["event_id"], key))
    foreign = data_of(requests.post(other_link, json={"n": "other"}), 202)["event_id"]
    receiver.wait_for(8)
    for event_id, _ in sent:
        settled(api, event_id)
    settled(other, foreign)
    return {"mine": sent, "foreign": foreign}


def settled(api: Api, event_id: str) -> dict:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        record = data_of(api.call("GET", f"/webhooks/v1/deliveries/{event_id}"))
        if record["status"] != "pending":
            return record
        time.sleep(0.02)
    raise AssertionError(f"still pending: {record}")


def listing(api: Api, **params) -> requests.Response:
    return api.call("GET", "/webhooks/v1/deliveries", params=params)


def test_listing_is_newest_first_and_pages_with_a_cursor(api, events):
    mine = [event_id for event_id, _ in events["mine"]]
    first = listing(api, product=PRODUCT, limit=3)
    page1 = data_of(first)
    cursor = first.json()["meta"]["next_cursor"]
    assert [d["event_id"] for d in page1] == mine[::-1][:3]
    second = listing(api, product=PRODUCT, limit=3, cursor=cursor)
    third = listing(api, product=PRODUCT, limit=3, cursor=second.json()["meta"]["next_cursor"])
    assert [d["event_id"] for d in data_of(second) + data_of(third)] == mine[::-1][3:]
    assert third.json()["meta"]["next_cursor"] is None


def test_listing_filters(api, events):
    by_kind = {}
    for event_id, (webhook_tag, env) in events["mine"]:
        by_kind.setdefault(webhook_tag, []).append(event_id)
        by_kind.setdefault(env, []).append(event_id)

    def ids(**params):
        return [d["event_id"] for d in data_of(listing(api, **params))][::-1]

    assert ids(webhook_tag="charge_refunded") == by_kind["charge_refunded"]
    assert ids(env="dev") == by_kind["dev"]
    assert ids(env="dev", webhook_tag="charge_refunded") == []
    assert ids(access_tag="stripe-payments", status="delivered") == by_kind["dev"] + by_kind["prd"]
    assert ids(status="failed") == []
    assert ids(access_tag="paystack-payments") == []


def test_a_key_sees_only_its_products(api, server, events):
    everything = [d["event_id"] for d in data_of(listing(api, limit=250))]
    assert events["foreign"] not in everything
    other = Api(server, key=OTHER_KEY)
    assert [d["event_id"] for d in data_of(listing(other))] == [events["foreign"]]
    mine = events["mine"][0][0]
    assert "not allowed" in error_of(other.call("GET", f"/webhooks/v1/deliveries/{mine}"), 403)
    assert "not allowed" in error_of(other.call("POST", f"/webhooks/v1/deliveries/{mine}/replay"), 403)
    assert "not allowed" in error_of(listing(other, product=PRODUCT), 403)


def test_the_access_key_is_required(api, events):
    event_id = events["mine"][0][0]
    for method, path in (
        ("GET", "/webhooks/v1/deliveries"),
        ("GET", f"/webhooks/v1/deliveries/{event_id}"),
        ("POST", f"/webhooks/v1/deliveries/{event_id}/replay"),
    ):
        assert "missing access key" in error_of(api.call(method, path, key=None), 401)
        assert error_of(api.call(method, path, key="dtl_wrong"), 401) == "unknown access key"


def test_bad_queries_name_the_field_and_value(api, events):
    assert error_of(listing(api, status="lost"), 422) == 'status: must be one of pending, delivered, failed (got "lost")'
    assert error_of(listing(api, cursor="garbage"), 422).startswith('cursor: not a cursor of this listing (got "garbage")')
    for cursor in (
        base64.urlsafe_b64encode(b"seq:99999999999999999999").decode().rstrip("="),  # the old codec's form
        encode_cursor("deliveries", -1),
        encode_cursor("webhooks", ["stripe", "x"]),  # another listing's cursor
        base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode(),
    ):
        assert error_of(listing(api, cursor=cursor), 422).startswith("cursor: not a cursor of this listing")
    assert error_of(listing(api, limit=0), 422).startswith("limit:")
    assert error_of(listing(api, limit=251), 422).startswith("limit:")
    assert error_of(listing(api, product="nope"), 404) == 'product: unknown product "nope"'
    assert error_of(api.call("GET", "/webhooks/v1/deliveries/evt_nope"), 404) == 'event_id: no delivery "evt_nope"'
    assert error_of(api.call("POST", "/webhooks/v1/deliveries/evt_nope/replay"), 404) == 'event_id: no delivery "evt_nope"'


def test_one_delivery_has_its_attempts(api, events):
    event_id = events["mine"][0][0]
    record = data_of(api.call("GET", f"/webhooks/v1/deliveries/{event_id}"))
    assert set(record) == {
        "event_id", "registration_uuid", "product", "access_tag", "webhook_tag", "env", "method", "status",
        "attempt_count", "received_at", "delivered_at", "next_attempt_at", "last_error", "dead_letter", "attempts",
        "test",
    }
    assert record["dead_letter"] is None
    assert record["status"] == "delivered" and record["received_at"] <= record["delivered_at"]
    assert [set(a) for a in record["attempts"]] == [{"n", "at", "status_code", "latency_ms", "error"}]


def test_replay_delivers_again_to_the_current_url(api, server, events):
    event_id = events["mine"][0][0]
    with Receiver() as moved:
        # the registration's url changes after the event; a replay goes where it points now
        data_of(api.generate_link(url=moved.url + "/moved", env="dev"))
        response = api.call("POST", f"/webhooks/v1/deliveries/{event_id}/replay")
        replayed = data_of(response, 202)
        assert replayed["event_id"] == event_id and replayed["status"] in ("pending", "delivered")
        [got] = moved.wait_for(1)
        record = settled(api, event_id)
    assert got.path == "/moved" and got.body == b'{"n": 0}' and got.header("X-Ductape-Event-Id") == event_id
    assert record["status"] == "delivered" and record["attempt_count"] == 2
    assert [a["n"] for a in record["attempts"]] == [1, 2]


def test_replay_of_a_failed_delivery_gets_a_fresh_retry_budget(api):
    with Receiver(default=Answer(503)) as receiver:
        registration = data_of(api.generate_link(url=receiver.url + "/flaky", env="stg"))
        event_id = data_of(requests.post(registration["link"], data=b"retry me"), 202)["event_id"]
        failed = settled(api, event_id)
        assert failed["status"] == "failed" and failed["attempt_count"] == 2
        receiver.set_default(Answer(200))
        data_of(api.call("POST", f"/webhooks/v1/deliveries/{event_id}/replay"), 202)
        record = settled(api, event_id)
    assert record["status"] == "delivered"
    assert [a["status_code"] for a in record["attempts"]] == [503, 503, 200]


def test_replay_of_a_deleted_registrations_event_is_410(api):
    with Receiver() as receiver:
        registration = data_of(api.generate_link(url=receiver.url + "/x", env="prd"))
        event_id = data_of(requests.post(registration["link"], data=b"x"), 202)["event_id"]
        settled(api, event_id)
    data_of(api.delete(registration["uuid"]))
    message = error_of(api.call("POST", f"/webhooks/v1/deliveries/{event_id}/replay"), 410)
    assert registration["uuid"] in message


def test_the_log_never_shows_the_access_key_or_provider_headers(api, events):
    raw = listing(api, limit=250).text
    assert api.server.access_key not in raw and OTHER_KEY not in raw
    assert "content-type" not in raw.lower()
