"""Retries over real HTTP: a receiver that fails and recovers, asks to wait, never answers, or refuses."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
import requests
from delivery_receiver import Answer, Receiver

from conftest import CLOSED_URL, Api, data_of
from ductape_local.testing import LocalServer

SCHEDULE = (0.05, 0.05, 0.05)
DELIVERY_TIMEOUT = 0.5


@pytest.fixture(scope="module")
def server():
    with LocalServer(retry_schedule=",".join(map(str, SCHEDULE)), delivery_timeout=DELIVERY_TIMEOUT) as running:
        yield running


def send_event(api: Api, receiver: Receiver, body: bytes = b'{"type": "charge.succeeded"}') -> str:
    registration = data_of(api.generate_link(url=receiver.url + "/in"))
    response = requests.post(registration["link"], data=body, headers={"Content-Type": "application/json"})
    return data_of(response, 202)["event_id"]


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def finished(api: Api, event_id: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = data_of(api.call("GET", f"/webhooks/v1/deliveries/{event_id}"))
        if record["status"] != "pending":
            return record
        time.sleep(0.02)
    raise AssertionError(f"delivery still pending: {record}")


@pytest.mark.parametrize("first_status", [500, 503, 408, 425, 429])
def test_receiver_failing_its_first_requests_gets_the_event_later(api, first_status):
    with Receiver(script=[Answer(first_status), Answer(first_status)]) as receiver:
        event_id = send_event(api, receiver)
        got = receiver.wait_for(3)
        record = finished(api, event_id)
    assert record["status"] == "delivered"
    assert [a["status_code"] for a in record["attempts"]] == [first_status, first_status, 200]
    assert record["attempt_count"] == 3 and record["last_error"] is None
    assert record["attempts"][0]["error"] == f"receiver answered HTTP {first_status}"
    assert [r.header("X-Ductape-Event-Id") for r in got] == [event_id] * 3
    assert len({r.body for r in got}) == 1


def test_a_receiver_failing_every_attempt_leaves_a_failed_delivery(api):
    with Receiver(default=Answer(503)) as receiver:
        event_id = send_event(api, receiver)
        record = finished(api, event_id)
        assert len(receiver.wait_for(len(SCHEDULE) + 1)) == len(SCHEDULE) + 1
    assert record["status"] == "failed"
    assert record["attempt_count"] == len(SCHEDULE) + 1
    assert record["next_attempt_at"] is None and record["delivered_at"] is None
    assert record["last_error"] == "receiver answered HTTP 503"


@pytest.mark.parametrize("status", [400, 401, 404, 410, 302])
def test_other_statuses_fail_at_once(api, status):
    with Receiver(default=Answer(status, headers={"Location": f"{CLOSED_URL}/elsewhere"})) as receiver:
        event_id = send_event(api, receiver)
        record = finished(api, event_id)
        assert len(receiver.requests) == 1
    assert record["status"] == "failed"
    assert [a["status_code"] for a in record["attempts"]] == [status]


def test_retry_after_is_honoured(api):
    with Receiver(script=[Answer(429, headers={"Retry-After": "1"})]) as receiver:
        event_id = send_event(api, receiver)
        first, second = receiver.wait_for(2)
        record = finished(api, event_id)
    # the schedule alone would retry after 0.05 s; the receiver asked for a full second
    assert second.at - first.at >= 1.0
    assert [a["status_code"] for a in record["attempts"]] == [429, 200]


def test_a_long_retry_after_keeps_the_delivery_pending_until_then(api):
    with Receiver(script=[Answer(503, headers={"Retry-After": "3600"})]) as receiver:
        event_id = send_event(api, receiver)
        receiver.wait_for(1)
        deadline = time.monotonic() + 20
        record = data_of(api.call("GET", f"/webhooks/v1/deliveries/{event_id}"))
        while not record["attempts"] and time.monotonic() < deadline:
            time.sleep(0.02)
            record = data_of(api.call("GET", f"/webhooks/v1/deliveries/{event_id}"))
    assert record["status"] == "pending" and record["attempt_count"] == 1
    waited = moment(record["next_attempt_at"]) - moment(record["attempts"][0]["at"])
    assert waited.total_seconds() >= 3599  # as the receiver asked, not the schedule's 0.05 s


def test_a_receiver_that_never_answers_times_out_and_is_retried(api):
    with Receiver(default=Answer(hang=True)) as receiver:
        event_id = send_event(api, receiver)
        record = finished(api, event_id)
        assert receiver.hung == len(SCHEDULE) + 1
    assert record["status"] == "failed"
    assert [a["status_code"] for a in record["attempts"]] == [None] * (len(SCHEDULE) + 1)
    assert record["last_error"] == f"no answer within the delivery timeout of {DELIVERY_TIMEOUT:g}s"
    assert all(a["latency_ms"] >= DELIVERY_TIMEOUT * 1000 for a in record["attempts"])


def test_an_unreachable_receiver_is_a_connection_error(api):
    with Receiver() as receiver:
        gone = receiver
    event_id = send_event(api, gone)
    record = finished(api, event_id)
    assert record["status"] == "failed"
    assert all(a["status_code"] is None for a in record["attempts"])
    assert record["last_error"].startswith("connection error")
