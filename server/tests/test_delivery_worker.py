"""The event store and the delivery worker on their own: a SQLite file, worker threads, and a real
receiver over HTTP. The HTTP-level behaviour of the server is in test_ingress*.py."""

from __future__ import annotations

import time

import pytest
from conftest import CLOSED_URL
from delivery_receiver import Answer, Receiver

from ductape_local import delivery
from ductape_local.delivery import DeliveryWorker, SendResult, decide, parse_retry_after
from ductape_local.events import (
    DELIVERED,
    FAILED,
    PENDING,
    DeliveryFilter,
    EventStore,
    ReceivedEvent,
    Target,
)
from ductape_local.deliveries import wire_delivery


def target_for(url: str, method: str = "POST", **overrides) -> Target:
    fields = dict(
        registration_uuid="11111111-1111-4111-8111-111111111111",
        product="my-product",
        access_tag="stripe-payments",
        webhook_tag="order_created",
        env="prd",
        url=url,
        method=method,
    )
    fields.update(overrides)
    return Target(**fields)


def event(body: bytes = b'{"id": "evt_1"}', headers=None, query: str = "") -> ReceivedEvent:
    return ReceivedEvent(
        method="POST",
        path="/webhooks/v1/process/x",
        query=query,
        headers=headers if headers is not None else [("content-type", "application/json")],
        body=body,
    )


def view(store: EventStore, event_id: str) -> dict:
    """A delivery as the API answers it."""
    return wire_delivery(store.get(event_id))


def wait_final(store: EventStore, event_id: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = view(store, event_id)
        if record["status"] != PENDING:
            return record
        time.sleep(0.02)
    raise AssertionError(f"delivery {event_id} still pending: {view(store, event_id)}")


@pytest.fixture
def store(tmp_path):
    return EventStore(str(tmp_path / "events.db"))


@pytest.fixture
def running(store):
    workers = []

    def start(**options) -> DeliveryWorker:
        options.setdefault("retry_schedule", (0.05, 0.05))
        options.setdefault("timeout", 2.0)
        worker = DeliveryWorker(store, **options)
        worker.start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop(wait_s=3)


# --- decisions, without I/O ---------------------------------------------------------------


@pytest.mark.parametrize("code", [200, 201, 202, 204, 299])
def test_any_2xx_is_delivered(code):
    assert decide(SendResult(code, None, None, 1.0), 1, (1.0,), 100.0) == (DELIVERED, None)


@pytest.mark.parametrize("code", [None, 408, 425, 429, 500, 502, 503, 504, 599])
def test_retryable_outcomes_wait_for_the_schedule(code):
    result = SendResult(code, "x" if code is None else None, None, 1.0)
    assert decide(result, 1, (2.0, 7.0), 100.0) == (PENDING, 102.0)
    assert decide(result, 2, (2.0, 7.0), 100.0) == (PENDING, 107.0)


@pytest.mark.parametrize("code", [301, 302, 400, 401, 403, 404, 410, 422])
def test_other_statuses_fail_at_once(code):
    assert decide(SendResult(code, None, None, 1.0), 1, (2.0, 7.0), 100.0) == (FAILED, None)


def test_the_attempt_after_the_last_delay_is_the_last():
    assert decide(SendResult(503, None, None, 1.0), 3, (2.0, 7.0), 100.0) == (FAILED, None)
    assert decide(SendResult(None, "refused", None, 1.0), 1, (), 100.0) == (FAILED, None)


def test_retry_after_is_honoured_but_never_shortens_the_schedule():
    assert decide(SendResult(429, None, 30.0, 1.0), 1, (2.0,), 100.0) == (PENDING, 130.0)
    assert decide(SendResult(429, None, 0.5, 1.0), 1, (2.0,), 100.0) == (PENDING, 102.0)


def test_retry_after_forms():
    assert parse_retry_after("3", 0.0) == 3.0
    assert parse_retry_after(None, 0.0) is None
    assert parse_retry_after("soon", 0.0) is None
    now = 1_700_000_000.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:40 GMT", now) == pytest.approx(20.0)
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:00 GMT", now) == 0.0
    assert parse_retry_after("999999999", 0.0) == delivery.MAX_RETRY_AFTER


def test_retry_schedule_text():
    assert delivery.parse_retry_schedule("1,5, 30") == (1.0, 5.0, 30.0)
    assert delivery.parse_retry_schedule("0.2") == (0.2,)
    assert delivery.parse_retry_schedule("") == ()
    with pytest.raises(ValueError, match="'fast'"):
        delivery.parse_retry_schedule("1,fast")
    with pytest.raises(ValueError, match="'-1'"):
        delivery.parse_retry_schedule("1,-1")


# --- the worker over real HTTP ------------------------------------------------------------


def test_delivers_body_and_headers_and_records_the_attempt(store, running):
    with Receiver() as receiver:
        calls = []
        worker = running(on_delivered=calls.append)
        body = bytes(range(256)) * 4
        event_id = store.add_event(
            target_for(receiver.url + "/hooks/in", method="PUT"),
            event(body=body, headers=[("content-type", "application/octet-stream"), ("x-sig", "abc")]),
        )
        worker.wake()
        record = wait_final(store, event_id)
        [got] = receiver.wait_for(1)
    assert record["status"] == DELIVERED
    assert record["attempt_count"] == 1
    assert record["delivered_at"] is not None and record["next_attempt_at"] is None
    assert [a["status_code"] for a in record["attempts"]] == [200]
    assert record["attempts"][0]["error"] is None
    assert got.method == "PUT" and got.path == "/hooks/in"
    assert got.body == body
    assert got.header("x-sig") == "abc"
    assert got.header("X-Ductape-Event-Id") == event_id
    assert got.header("X-Ductape-Webhook-Tag") == "order_created"
    assert got.header("X-Ductape-Env") == "prd"
    assert calls == ["11111111-1111-4111-8111-111111111111"]


def test_failing_receiver_is_retried_until_it_succeeds(store, running):
    script = [Answer(503), Answer(500)]
    with Receiver(script) as receiver:
        worker = running(retry_schedule=(0.05, 0.05, 0.05))
        event_id = store.add_event(target_for(receiver.url), event())
        worker.wake()
        record = wait_final(store, event_id)
        got = receiver.wait_for(3)
    assert record["status"] == DELIVERED
    assert [a["status_code"] for a in record["attempts"]] == [503, 500, 200]
    assert [a["n"] for a in record["attempts"]] == [1, 2, 3]
    assert record["attempts"][0]["error"] == "receiver answered HTTP 503"
    assert len({r.header("X-Ductape-Event-Id") for r in got}) == 1


def test_schedule_exhausted_means_failed(store, running):
    with Receiver(default=Answer(502)) as receiver:
        worker = running(retry_schedule=(0.05,))
        event_id = store.add_event(target_for(receiver.url), event())
        worker.wake()
        record = wait_final(store, event_id)
    assert record["status"] == FAILED
    assert record["attempt_count"] == 2
    assert record["last_error"] == "receiver answered HTTP 502"


def test_unreachable_receiver_records_a_connection_error(store, running):
    with Receiver() as receiver:
        url = receiver.url
    worker = running(retry_schedule=(0.05,))
    event_id = store.add_event(target_for(url), event())
    worker.wake()
    record = wait_final(store, event_id)
    assert record["status"] == FAILED
    assert [a["status_code"] for a in record["attempts"]] == [None, None]
    assert record["last_error"].startswith("connection error")


def test_deliveries_left_in_flight_are_sent_after_a_restart(store, running):
    with Receiver() as receiver:
        first = store.add_event(target_for(receiver.url), event(body=b"one"))
        second = store.add_event(target_for(receiver.url), event(body=b"two"))
        # a process claimed the first and died before recording anything
        assert store.claim_due().event_id == first
        worker = running()
        worker.wake()
        assert wait_final(store, first)["status"] == DELIVERED
        assert wait_final(store, second)["status"] == DELIVERED
        bodies = sorted(r.body for r in receiver.wait_for(2))
    assert bodies == [b"one", b"two"]


def test_listing_filters_and_pages_newest_first(store):
    ids = [store.add_event(target_for(f"{CLOSED_URL}/"), event(), now=1000.0 + i) for i in range(5)]
    other = store.add_event(target_for(f"{CLOSED_URL}/", env="stg"), event())
    foreign = store.add_event(target_for(f"{CLOSED_URL}/", product="other"), event())
    mine = DeliveryFilter(products=("my-product",), env="prd")
    page, after = store.list(mine, limit=2)
    assert {d["state"] for d in page} == {PENDING}
    assert [d["event_id"] for d in page] == [ids[4], ids[3]]
    page2, after2 = store.list(mine, limit=2, after_seq=after)
    page3, after3 = store.list(mine, limit=2, after_seq=after2)
    assert [d["event_id"] for d in page2 + page3] == [ids[2], ids[1], ids[0]]
    assert after3 is None
    everything, _ = store.list(DeliveryFilter(products=("my-product",)), limit=50)
    assert other in [d["event_id"] for d in everything]
    assert foreign not in [d["event_id"] for d in everything]
    assert store.list(DeliveryFilter(products=()), limit=50) == ([], None)
    assert store.list(DeliveryFilter(products=("my-product",), status=FAILED), limit=50) == ([], None)


def test_replay_makes_a_finished_delivery_due_with_a_fresh_budget(store, running):
    with Receiver(script=[Answer(404)]) as receiver:
        worker = running(retry_schedule=(0.05,))
        event_id = store.add_event(target_for(receiver.url), event(body=b"again"))
        worker.wake()
        assert wait_final(store, event_id)["status"] == FAILED
        assert store.replay(event_id) == FAILED
        worker.wake()
        record = wait_final(store, event_id)
        got = receiver.wait_for(2)
    assert record["status"] == DELIVERED
    assert [a["status_code"] for a in record["attempts"]] == [404, 200]
    assert [r.body for r in got] == [b"again", b"again"]
    assert store.replay("evt_unknown") == ""
