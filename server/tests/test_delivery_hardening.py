"""Deliveries that must never stop for good or stop others: any failure of an attempt is a recorded,
retried attempt; the delivery timeout bounds the whole attempt; no destination takes more than its
share of the worker threads; retries keep the event id. The event store and worker on their own,
over real HTTP to local receivers."""

from __future__ import annotations

import time

import pytest
from delivery_receiver import Answer, Dribbler, Receiver

from ductape_local import delivery
from ductape_local.delivery import EVENT_ID_HEADER
from ductape_local.events import DELIVERED, FAILED, PENDING
# store and running are the delivery worker tests' fixtures, shared rather than copied
from test_delivery_worker import event, running, store, target_for, view, wait_final  # noqa: F401


def wait_until(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


# --- any failure of an attempt is an attempt ---------------------------------------------------

LONG_LABEL = "a" * 64


@pytest.mark.parametrize(
    "url",
    [
        f"http://{LONG_LABEL}.example/hook",  # a DNS label over 63 characters
        f"http://x.{'b' * 70}.example:8080/hook",
        "http://[::1/hook",  # an unclosed IPv6 literal
        "http://127.0.0.1:99999/hook",  # a port out of range
        "http://127.0.0.1:port/hook",
    ],
)
def test_a_receiver_url_that_cannot_be_sent_to_is_recorded_and_retried(store, running, url):
    worker = running(retry_schedule=(0.05, 0.05))
    event_id = store.add_event(target_for(url), event())
    worker.wake()
    record = wait_final(store, event_id)
    assert record["status"] == FAILED
    assert record["attempt_count"] == 3  # the first attempt and both retries of the schedule
    assert all(a["error"] and a["status_code"] is None for a in record["attempts"])
    assert record["last_error"]
    # and replay works on it: a fresh budget, recorded again
    assert store.replay(event_id) == FAILED
    worker.wake()
    assert wait_until(lambda: view(store, event_id)["attempt_count"] == 6, what="replayed attempts")


@pytest.mark.parametrize("retry_after", ["²", "¹²", "1.5", "1e3", "-5", "NaN", "inf", " "])
def test_any_retry_after_header_is_read_or_ignored_never_fatal(store, running, retry_after):
    with Receiver(script=[Answer(503, headers={"Retry-After": retry_after})]) as receiver:
        worker = running(retry_schedule=(0.05,))
        event_id = store.add_event(target_for(receiver.url), event())
        worker.wake()
        record = wait_final(store, event_id, timeout=30)
    if record["status"] == PENDING:  # pragma: no cover - only a huge valid delay keeps it waiting
        pytest.fail(f"Retry-After {retry_after!r} was read as a long delay: {record}")
    assert record["status"] == DELIVERED
    assert [a["status_code"] for a in record["attempts"]] == [503, 200]


def test_parse_retry_after_never_raises():
    for value in ("²", "٣", "١٢", "1e3", "-5", "NaN", "inf", "9" * 400, "\x00", "Mon, 99 Foo 2024 99:99:99 GMT"):
        seconds = delivery.parse_retry_after(value, 1_700_000_000.0)
        assert seconds is None or 0 <= seconds <= delivery.MAX_RETRY_AFTER


def test_an_exception_while_building_the_request_is_a_recorded_attempt(store, running, monkeypatch):
    calls = []

    def broken(claimed):
        calls.append(claimed.event_id)
        if len(calls) == 1:
            raise RuntimeError("header building broke")
        return original(claimed)

    original = delivery.forwarded_headers
    monkeypatch.setattr(delivery, "forwarded_headers", broken)
    with Receiver() as receiver:
        worker = running(retry_schedule=(0.05,))
        event_id = store.add_event(target_for(receiver.url), event())
        worker.wake()
        record = wait_final(store, event_id)
    assert record["status"] == DELIVERED
    assert record["attempts"][0]["status_code"] is None
    assert "RuntimeError" in record["attempts"][0]["error"]
    assert [a["status_code"] for a in record["attempts"]][1:] == [200]


def test_a_store_failure_while_recording_leaves_the_delivery_due_again(store, running, monkeypatch):
    original = store.record_attempts
    failures = []

    def flaky(outcomes):
        if not failures:
            failures.extend(claimed.event_id for claimed, _ in outcomes)
            raise RuntimeError("disk I/O error")
        return original(outcomes)

    monkeypatch.setattr(store, "record_attempts", flaky)
    with Receiver(script=[Answer(503)]) as receiver:
        worker = running(retry_schedule=(0.05, 0.05))
        event_id = store.add_event(target_for(receiver.url), event())
        worker.wake()
        record = wait_final(store, event_id)
        # the worker survived and took the delivery again
        later = store.add_event(target_for(receiver.url), event(body=b"later"))
        worker.wake()
        assert wait_final(store, later)["status"] == DELIVERED
    assert failures == [event_id]
    assert record["status"] == DELIVERED


# --- the timeout bounds the whole attempt ------------------------------------------------------


def test_a_receiver_dribbling_its_answer_is_cut_at_the_delivery_timeout(store, running):
    # 0.3 s between bytes: no single read waits 1 s, the whole header takes about 20 s
    with Dribbler(interval=0.3) as dribbler:
        worker = running(retry_schedule=(), timeout=1.0)
        event_id = store.add_event(target_for(dribbler.url), event())
        worker.wake()
        record = wait_final(store, event_id, timeout=15)
        assert dribbler.finished == 0
    assert record["status"] == FAILED
    [attempt] = record["attempts"]
    assert attempt["status_code"] is None
    assert attempt["error"] == "no answer within the delivery timeout of 1s"


# --- no destination takes more than its share of the workers -----------------------------------


def test_a_healthy_receiver_is_served_while_others_hang(store, running):
    workers = 4
    with Receiver(default=Answer(hang=True)) as hanging, Receiver(default=Answer(hang=True)) as also_hanging, \
            Dribbler(interval=0.5) as dribbler, Receiver() as healthy:
        worker = running(workers=workers, timeout=60.0, retry_schedule=())
        stuck = []
        for n in range(3 * workers):
            stuck.append(store.add_event(target_for(hanging.url, registration_uuid=f"r-hang-{n}"), event()))
            stuck.append(store.add_event(target_for(also_hanging.url), event()))
            stuck.append(store.add_event(target_for(dribbler.url), event()))
        worker.wake()
        wait_until(lambda: hanging.hung >= 1 and also_hanging.hung >= 1, what="both hanging receivers reached")
        fine = store.add_event(target_for(healthy.url + "/ok", product="another-product"), event(body=b"fine"))
        worker.wake()
        record = wait_final(store, fine, timeout=30)
        assert record["status"] == DELIVERED
        assert [r.body for r in healthy.wait_for(1)] == [b"fine"]
        # while every hanging event is still waiting for its outcome
        assert all(view(store, event_id)["status"] == PENDING for event_id in stuck)
        assert all(view(store, event_id)["attempt_count"] == 0 for event_id in stuck)
        share = delivery.destination_share(workers)
        assert hanging.hung <= share and also_hanging.hung <= share and dribbler.connections <= share
        hanging.release()
        also_hanging.release()


def test_destinations_are_receiver_host_and_port_in_any_spelling():
    key = delivery.destination_key
    assert key("http://Example.COM./a") == key("http://example.com:80/b?x=1")
    assert key("https://example.com/a") == key("https://EXAMPLE.com:443/")
    assert key("http://example.com/a") != key("https://example.com/a")
    assert key("http://127.0.0.1:8001/") != key("http://127.0.0.1:8002/")
    assert key("http://[::1/") == key("http://[::1/")  # unreadable urls still get a key


# --- at-least-once: one event id across retries --------------------------------------------------


def test_the_event_id_header_is_the_same_on_every_retry_and_replay(store, running):
    with Receiver(script=[Answer(503), Answer(500), Answer(404)]) as receiver:
        worker = running(retry_schedule=(0.05, 0.05, 0.05))
        event_id = store.add_event(target_for(receiver.url), event())
        worker.wake()
        assert wait_final(store, event_id)["status"] == FAILED
        store.replay(event_id)
        worker.wake()
        assert wait_final(store, event_id)["status"] == DELIVERED
        got = receiver.wait_for(4)
    assert [r.header(EVENT_ID_HEADER) for r in got] == [event_id] * 4
