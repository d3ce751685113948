"""Over real HTTP: dead letters (status, reason, replay), the delivery-time destination check, loops
through a relay's own links, and the event id that receivers deduplicate by."""

from __future__ import annotations

import base64
import time

import pytest
import requests
from delivery_receiver import Answer, Forwarder, Receiver

from conftest import CLOSED_URL, Api, data_of, error_of
from ductape_local.delivery import HOPS_HEADER, MAX_HOPS
from ductape_local.testing import LocalServer

SCHEDULE = "0.05,0.05"
RETRIES = 2


@pytest.fixture(scope="module")
def server():
    with LocalServer(retry_schedule=SCHEDULE, delivery_timeout=2) as running:
        yield running


def send_event(api: Api, url: str, env: str = "dev", body: bytes = b'{"n": 1}', **link) -> str:
    registration = data_of(api.generate_link(url=url, env=env, **link))
    return data_of(requests.post(registration["link"], data=body, timeout=10), 202)["event_id"]


def delivery(api: Api, event_id: str) -> dict:
    return data_of(api.call("GET", f"/webhooks/v1/deliveries/{event_id}"))


def settled(api: Api, event_id: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = delivery(api, event_id)
        if record["status"] != "pending":
            return record
        time.sleep(0.02)
    raise AssertionError(f"still pending: {record}")


def test_retries_exhausted_make_a_visible_dead_letter_that_replay_takes_back(api):
    with Receiver(default=Answer(503)) as receiver:
        event_id = send_event(api, receiver.url + "/flaky")
        record = settled(api, event_id)
        assert record["status"] == "failed"
        assert record["attempt_count"] == RETRIES + 1
        assert record["dead_letter"]["reason"] == (
            f"retries exhausted after {RETRIES + 1} attempts; the last: receiver answered HTTP 503"
        )
        assert record["dead_letter"]["at"] >= record["attempts"][-1]["at"]
        # the dead letters are listed as failed deliveries, with their reason
        listed = data_of(api.call("GET", "/webhooks/v1/deliveries", params={"status": "failed", "limit": 250}))
        assert record in listed

        receiver.set_default(Answer(200))
        replayed = data_of(api.call("POST", f"/webhooks/v1/deliveries/{event_id}/replay"), 202)
        assert replayed["dead_letter"] is None and replayed["status"] in ("pending", "delivered")
        again = settled(api, event_id)
        got = receiver.wait_for(RETRIES + 2)
    assert again["status"] == "delivered" and again["dead_letter"] is None
    assert [a["status_code"] for a in again["attempts"]] == [503] * (RETRIES + 1) + [200]
    # one event id on every attempt, retries and replay alike: receivers deduplicate by it
    assert {r.header("X-Ductape-Event-Id") for r in got} == {event_id}


@pytest.mark.parametrize("status", [400, 404, 410])
def test_an_answer_not_worth_retrying_is_a_dead_letter_at_once(api, status):
    with Receiver(default=Answer(status)) as receiver:
        event_id = send_event(api, receiver.url + "/gone")
        record = settled(api, event_id)
    assert record["attempt_count"] == 1
    assert record["dead_letter"]["reason"] == f"not retried: receiver answered HTTP {status}"


@pytest.mark.parametrize("retry_after", ["²", "¹", "3.5", "NaN"])
def test_a_receiver_sending_an_unreadable_retry_after_still_gets_the_event(api, retry_after):
    with Receiver(script=[Answer(503, headers={"Retry-After": retry_after})]) as receiver:
        event_id = send_event(api, receiver.url + "/odd")
        record = settled(api, event_id)
    assert record["status"] == "delivered"
    assert [a["status_code"] for a in record["attempts"]] == [503, 200]


def test_a_loop_through_the_relays_own_link_ends_after_a_few_hops(api):
    """A receiver that passes every event on to the same link (a proxy the registration check cannot
    see through): each delivery adds a hop, and the relay refuses the event once it has gone round
    MAX_HOPS times, which the last delivery records as a dead letter saying why."""
    with Forwarder() as forwarder:
        registration = data_of(api.generate_link(url=forwarder.url + "/loop", env="stg", webhook_tag="charge_refunded"))
        forwarder.target = registration["link"]
        first = data_of(requests.post(registration["link"], data=b'{"loop": true}', timeout=10), 202)["event_id"]

        def the_loop() -> list[dict]:
            listing = data_of(api.call("GET", "/webhooks/v1/deliveries",
                                       params={"webhook_tag": "charge_refunded", "env": "stg", "limit": 250}))
            assert len(listing) <= MAX_HOPS, f"the loop went on: {len(listing)} events"
            return listing

        deadline = time.monotonic() + 30
        listing = the_loop()
        while time.monotonic() < deadline and not any(d["status"] == "failed" for d in listing):
            time.sleep(0.05)
            listing = the_loop()
        time.sleep(0.5)  # nothing more comes
        listing = the_loop()
    assert len(listing) == MAX_HOPS
    assert listing[-1]["event_id"] == first
    last = listing[0]
    assert last["status"] == "failed" and last["attempt_count"] == 1
    assert last["attempts"][0]["status_code"] == 508
    assert "Loop Detected" in last["dead_letter"]["reason"] and "not retried" in last["dead_letter"]["reason"]
    assert all(d["status"] == "delivered" for d in listing[1:])
    # Each forward's status is recorded by its own handler thread, so the list's order is the order the
    # threads finished in, not the hop order: count them instead.
    assert sorted(forwarder.statuses) == [202] * (MAX_HOPS - 1) + [508]


def test_an_event_over_the_hop_limit_is_refused_at_the_link(api):
    registration = data_of(api.generate_link(url=f"{CLOSED_URL}/never", env="prd"))
    refused = requests.post(registration["link"], data=b"x", headers={HOPS_HEADER: str(MAX_HOPS)}, timeout=10)
    assert HOPS_HEADER in error_of(refused, 508)
    for hops in (str(MAX_HOPS - 1), "not a number", ""):
        accepted = requests.post(registration["link"], data=b"x", headers={HOPS_HEADER: hops}, timeout=10)
        assert accepted.status_code == 202, (hops, accepted.text)


def test_credentials_inside_the_receiver_url_are_sent_as_basic_auth(api):
    with Receiver() as receiver:
        event_id = send_event(api, f"http://us%40er:p%3Ass@{receiver.url[7:]}/basic", env="prd",
                              webhook_tag="charge_refunded")
        [got] = receiver.wait_for(1)
        record = settled(api, event_id)
    assert record["status"] == "delivered"
    assert base64.b64decode(got.header("Authorization").split()[1]) == b"us@er:p:ss"


def test_the_destination_policy_is_checked_again_at_delivery():
    """A registration allowed when it was made (no policy then, or a name that resolved elsewhere) is
    refused at delivery once the policy refuses it: a recorded failure, not retried, url masked."""
    with Receiver() as receiver, LocalServer(retry_schedule=SCHEDULE) as before:
        api = Api(before)
        registration = data_of(api.generate_link(url=f"http://user:s3cr3t-pw@{receiver.url[7:]}/in?token=t0ken&v=1"))
        before.stop()
        with LocalServer(db_path=before.db_path, load_seed=False, retry_schedule=SCHEDULE,
                         block_private_destinations=True) as after:
            link = after.url + "/webhooks/v1/process/" + registration["uuid"]
            event_id = data_of(requests.post(link, data=b"x", timeout=10), 202)["event_id"]
            record = settled(Api(after), event_id)
            log = after.log_path.read_text()
        assert receiver.requests == []
    assert record["status"] == "failed" and record["attempt_count"] == 1
    error = record["attempts"][0]["error"]
    assert "block-private-destinations" in error
    assert "http://********@127.0.0.1" in error and "token=********" in error
    assert record["dead_letter"]["reason"] == f"not retried: {error}"
    for secret in ("s3cr3t-pw", "t0ken"):
        assert secret not in str(record) and secret not in log
