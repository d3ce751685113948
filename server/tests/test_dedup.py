"""Duplicate provider events, over real HTTP: a repeat of a provider event id within the window is
answered as the first (the same 202 and event id) but delivered once, and the delivery log, the
registration's ingress block and the summary count it; also under concurrent identical posts (one
group commit decides them) and after a restart (the ids are in SQLite)."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from delivery_receiver import Receiver

from conftest import Api, data_of, error_of, example_seed
from ductape_local.testing import LocalServer

APP = "dedup-app"
GITHUB_SECRET = "gh-dedup-secret-8008135"
SECRET_ENV = "DTL_TEST_DEDUP_GITHUB_SECRET"
CONCURRENT = 48


def dedup_seed() -> dict:
    seed = example_seed()
    seed["products"][0]["connections"].append(
        {"access_tag": APP, "app": APP, "envs": {"prd": "live", "stg": "test", "dev": "test"}})
    seed["apps"].append({"tag": APP, "webhooks": [
        {"tag": "by_header", "dedup": {"header": "X-GitHub-Delivery"}},
        {"tag": "by_json", "dedup": {"json_path": "data.object.id", "window_seconds": 3600}},
        {"tag": "short_window", "dedup": {"header": "X-Event-Id", "window_seconds": 1}},
        {"tag": "signed", "verify": {"strategy": "github", "secret_env": SECRET_ENV},
         "dedup": {"header": "X-GitHub-Delivery"}},
        {"tag": "concurrent", "dedup": {"json_path": "id"}},
        {"tag": "restart", "dedup": {"json_path": "id"}},
    ]})
    return seed


@pytest.fixture(scope="module")
def running():
    os.environ[SECRET_ENV] = GITHUB_SECRET
    try:
        with LocalServer(dedup_seed(), retry_schedule="0.05") as server, Receiver() as receiver:
            yield server, receiver
    finally:
        os.environ.pop(SECRET_ENV, None)


@pytest.fixture(scope="module")
def api(running):
    return Api(running[0])


@pytest.fixture(scope="module")
def receiver(running):
    return running[1]


def link_of(api: Api, receiver: Receiver, webhook_tag: str, env: str = "dev") -> dict:
    return data_of(api.generate_link(access_tag=APP, webhook_tag=webhook_tag, env=env,
                                     url=f"{receiver.url}/{webhook_tag}/{env}"))


def accepted(response: requests.Response) -> str:
    return data_of(response, 202)["event_id"]


def delivery(api: Api, event_id: str) -> dict:
    return data_of(api.call("GET", f"/webhooks/v1/deliveries/{event_id}"))


def stored(api: Api, registration: dict) -> list[dict]:
    found = data_of(api.call("GET", "/webhooks/v1/deliveries", params={"product": "my-product", "access_tag": APP,
                                                                       "limit": 250}))
    return [d for d in found if d["registration_uuid"] == registration["uuid"]]


def arrivals(receiver: Receiver, registration: dict, wanted: int) -> list:
    """The requests the receiver got for this registration, once it has `wanted` of them."""
    path = "/" + "/".join(registration["url"].rsplit("/", 2)[-2:])
    deadline = time.monotonic() + 60
    while True:
        found = [r for r in receiver.wait_for(0) if r.path == path]
        if len(found) >= wanted or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def wait_delivered(api: Api, event_id: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        found = delivery(api, event_id)
        if found["status"] == "delivered" or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def ingress_of(api: Api, uuid: str) -> dict:
    listing = data_of(api.webhooks(access_tag=APP, limit=250))
    [found] = [r for w in listing for r in w["config"] if r["uuid"] == uuid]
    return found["ingress"]


def test_a_repeated_header_id_is_acknowledged_and_delivered_once(api, receiver):
    registration = link_of(api, receiver, "by_header")
    link = registration["link"]
    first = accepted(requests.post(link, json={"n": 1}, headers={"X-GitHub-Delivery": "d-1"}, timeout=30))
    # a provider's redelivery: same id, perhaps a different body; the same answer
    again = [accepted(requests.post(link, json={"n": 1, "retry": n}, headers={"X-GitHub-Delivery": "d-1"},
                                    timeout=30)) for n in range(2)]
    other = accepted(requests.post(link, json={"n": 2}, headers={"X-GitHub-Delivery": "d-2"}, timeout=30))
    no_id = [accepted(requests.post(link, json={"n": 3}, timeout=30)) for _ in range(2)]
    assert again == [first, first]
    assert len({first, other, *no_id}) == 4
    assert wait_delivered(api, first)["duplicates"] == 2
    for event_id in (other, *no_id):
        assert wait_delivered(api, event_id)["duplicates"] == 0
    got = arrivals(receiver, registration, 4)
    assert sorted(r.header("X-Ductape-Event-Id") for r in got) == sorted([first, other, *no_id])
    assert json.loads(next(r.body for r in got if r.header("X-Ductape-Event-Id") == first)) == {"n": 1}
    assert {d["event_id"] for d in stored(api, registration)} == {first, other, *no_id}
    assert ingress_of(api, registration["uuid"]) == {"rejected": 0, "duplicates": 2, "last_rejection": None}
    summary = data_of(api.call("GET", "/webhooks/v1/deliveries/summary", params={
        "product": "my-product", "access_tag": APP, "webhook_tag": "by_header", "env": "dev"}))
    assert summary == {"pending": 0, "delivered": 4, "failed": 0, "rejected": 0, "duplicates": 2,
                       "last_rejection": None}


def test_a_json_path_id_and_the_registration_key_scope(api, receiver):
    dev = link_of(api, receiver, "by_json")
    prd = link_of(api, receiver, "by_json", env="prd")
    event = {"type": "charge.succeeded", "data": {"object": {"id": "ch_123"}}}
    first = accepted(requests.post(dev["link"], json=event, timeout=30))
    assert accepted(requests.post(dev["link"], json=event, timeout=30)) == first
    # the same provider id for another registration (another env) is that registration's own event
    elsewhere = accepted(requests.post(prd["link"], json=event, timeout=30))
    assert elsewhere != first
    # ids are read as the JSON holds them: a number, and not an object or a missing path
    number = accepted(requests.post(dev["link"], json={"data": {"object": {"id": 42}}}, timeout=30))
    assert accepted(requests.post(dev["link"], json={"data": {"object": {"id": 42}}}, timeout=30)) == number
    objects = [accepted(requests.post(dev["link"], json={"data": {"object": {"id": {"x": 1}}}}, timeout=30))
               for _ in range(2)]
    not_json = [accepted(requests.post(dev["link"], data=b"ch_123", timeout=30)) for _ in range(2)]
    # nested deeper than a JSON parser goes: no id, delivered as any event (and the batch goes on)
    too_deep = [accepted(requests.post(dev["link"], data=b'{"data":' * 50000 + b"1" + b"}" * 50000, timeout=30))
                for _ in range(2)]
    assert len({first, number, *objects, *not_json, *too_deep}) == 8
    assert len(arrivals(receiver, dev, 8)) == 8
    assert ingress_of(api, dev["uuid"])["duplicates"] == 2
    assert ingress_of(api, prd["uuid"])["duplicates"] == 0


def test_a_repeat_after_the_window_is_a_new_event(api, receiver):
    registration = link_of(api, receiver, "short_window")  # window_seconds: 1
    link = registration["link"]
    first = accepted(requests.post(link, json={}, headers={"X-Event-Id": "w-1"}, timeout=30))
    time.sleep(1.5)  # the window (1 s) is over whatever the machine's speed
    later = accepted(requests.post(link, json={}, headers={"X-Event-Id": "w-1"}, timeout=30))
    assert later != first
    assert len(arrivals(receiver, registration, 2)) == 2


def test_a_refused_signature_is_not_a_duplicate_and_takes_no_id(api, receiver):
    registration = link_of(api, receiver, "signed")
    link, body = registration["link"], b'{"action":"opened"}'
    good = "sha256=" + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    # a forged event with the id a real one will carry is refused, and does not take the id
    error_of(requests.post(link, data=body, headers={"X-GitHub-Delivery": "g-1", "X-Hub-Signature-256": "sha256=00"},
                           timeout=30), 401)
    first = accepted(requests.post(link, data=body, headers={"X-GitHub-Delivery": "g-1",
                                                             "X-Hub-Signature-256": good}, timeout=30))
    assert accepted(requests.post(link, data=body, headers={"X-GitHub-Delivery": "g-1",
                                                            "X-Hub-Signature-256": good}, timeout=30)) == first
    error_of(requests.post(link, data=body, headers={"X-GitHub-Delivery": "g-1"}, timeout=30), 401)
    assert ingress_of(api, registration["uuid"])["rejected"] == 2
    assert ingress_of(api, registration["uuid"])["duplicates"] == 1
    assert [d["event_id"] for d in stored(api, registration)] == [first]


def test_concurrent_identical_posts_are_delivered_once(api, receiver):
    registration = link_of(api, receiver, "concurrent")
    link = registration["link"]

    def post(n: int) -> requests.Response:
        return requests.post(link, json={"id": "evt_same" if n % 2 else "evt_other", "n": n}, timeout=30)

    with ThreadPoolExecutor(max_workers=24) as pool:
        responses = list(pool.map(post, range(CONCURRENT)))
    ids = [accepted(response) for response in responses]
    same, other = set(ids[1::2]), set(ids[0::2])
    assert len(same) == 1 and len(other) == 1 and same != other
    [same_id], [other_id] = same, other
    assert wait_delivered(api, same_id)["duplicates"] == CONCURRENT // 2 - 1
    assert wait_delivered(api, other_id)["duplicates"] == CONCURRENT // 2 - 1
    got = arrivals(receiver, registration, 2)
    assert sorted(r.header("X-Ductape-Event-Id") for r in got) == sorted([same_id, other_id])
    assert len(stored(api, registration)) == 2
    assert ingress_of(api, registration["uuid"])["duplicates"] == CONCURRENT - 2


def test_ids_outlive_a_restart(api, receiver, running):
    server = running[0]
    registration = link_of(api, receiver, "restart")
    first = accepted(requests.post(registration["link"], json={"id": "evt_r"}, timeout=30))
    assert wait_delivered(api, first)["status"] == "delivered"
    server.restart()
    assert accepted(requests.post(registration["link"], json={"id": "evt_r"}, timeout=30)) == first
    assert delivery(api, first)["duplicates"] == 1
    assert len(arrivals(receiver, registration, 1)) == 1
    assert len(stored(api, registration)) == 1
