"""The delivery order of a registration's events (server/README.md, "Signatures, duplicates and
order"): first attempts in receipt order, oldest due first; not FIFO under retries, by design: an
event that its receiver refuses waits for its retry while the events received after it go on, so one
bad event never holds back the rest. Checked over real HTTP with receivers that fail some events
first; the waits are for outcomes (bounded), never for a time to pass."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import Api, data_of
from ductape_local.testing import LocalServer

LATER = 9


class HoldingReceiver:
    """Answers 503 to the events whose body has "hold": true until it has answered 200 to `needed`
    other events, 200 to everything else; records the order of the 200s."""

    def __init__(self, needed: int):
        self.needed = needed
        self.delivered: list[int] = []  # the "n" of each event answered 200, in order
        self.refused: list[int] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                event = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                with receiver._lock:
                    others = sum(1 for n in receiver.delivered if n != event["n"])
                    status = 503 if event.get("hold") and others < receiver.needed else 200
                    (receiver.delivered if status == 200 else receiver.refused).append(event["n"])
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = "http://127.0.0.1:%d" % self._server.server_address[1]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.delivered) >= count:
                    return list(self.delivered)
            time.sleep(0.02)
        raise AssertionError(f"{len(self.delivered)} of {count} events delivered: {self.delivered}")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# enough retries for the held event to outlast the others however slow the machine
RETRIES = ",".join(["0.05"] * 4 + ["0.2"] * 10 + ["1"] * 20)


@pytest.fixture(scope="module")
def apis():
    """A server with one delivery worker and one with eight (two of them may serve one receiver)."""
    with LocalServer(retry_schedule=RETRIES, delivery_workers=1) as one, \
            LocalServer(retry_schedule=RETRIES, delivery_workers=8) as eight:
        yield {1: Api(one), 8: Api(eight)}


def post_events(link: str, events: list[dict]) -> list[str]:
    ids = []
    for event in events:  # one after the other: each is committed (202) before the next is sent
        response = requests.post(link, json=event, timeout=30)
        assert response.status_code == 202, response.text
        ids.append(response.json()["data"]["event_id"])
    return ids


@pytest.mark.parametrize("workers", [1, 8])
def test_a_refused_event_does_not_hold_back_the_events_after_it(apis, workers):
    api = apis[workers]
    receiver = HoldingReceiver(needed=LATER)
    try:
        link = data_of(api.generate_link(env="dev", url=receiver.url + "/hold"))["link"]
        ids = post_events(link, [{"n": 0, "hold": True}] + [{"n": n} for n in range(1, LATER + 1)])
        order = receiver.wait_for(LATER + 1)
    finally:
        receiver.close()
    # every later event got through while the first one was being retried, and it came last
    assert sorted(order[:LATER]) == list(range(1, LATER + 1))
    assert order[LATER] == 0 and len(order) == LATER + 1
    assert receiver.refused and set(receiver.refused) == {0}
    records = {event_id: data_of(api.call("GET", f"/webhooks/v1/deliveries/{event_id}")) for event_id in ids}
    assert records[ids[0]]["attempt_count"] == len(receiver.refused) + 1
    assert [a["status_code"] for a in records[ids[0]]["attempts"]] == [503] * len(receiver.refused) + [200]
    for event_id in ids[1:]:
        assert records[event_id]["attempt_count"] == 1


def test_first_attempts_follow_receipt_order_with_one_worker(apis):
    api = apis[1]
    receiver = HoldingReceiver(needed=0)
    try:
        link = data_of(api.generate_link(env="stg", url=receiver.url + "/in-order"))["link"]
        post_events(link, [{"n": n} for n in range(20)])
        order = receiver.wait_for(20)
    finally:
        receiver.close()
    assert order == list(range(20))
