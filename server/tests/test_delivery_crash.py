"""Crash safety: events acknowledged with 202 reach the receiver even when the server is killed with
SIGKILL before or while delivering them, and started again on the same database."""

from __future__ import annotations

import time

import requests
from delivery_receiver import Answer, Receiver

from conftest import Api, data_of
from ductape_local.config import DEFAULT_DELIVERY_WORKERS
from ductape_local.delivery import destination_share
from ductape_local.testing import LocalServer

EVENTS = 20
# one receiver gets its share of the worker threads: that many deliveries are in flight when the
# server is killed, the rest wait
IN_FLIGHT = destination_share(DEFAULT_DELIVERY_WORKERS)


def test_sigkill_with_undelivered_events_then_restart_delivers_every_event():
    with Receiver(default=Answer(hang=True)) as receiver, LocalServer(
        retry_schedule="0.05", delivery_timeout=60
    ) as server:
        api = Api(server)
        registration = data_of(api.generate_link(url=receiver.url + "/in"))
        sent = {}
        for n in range(EVENTS):
            body = f'{{"n": {n}}}'.encode()
            response = requests.post(registration["link"], data=body, headers={"Content-Type": "application/json"})
            sent[data_of(response, 202)["event_id"]] = body
        receiver.wait_for(IN_FLIGHT)

        server.kill()
        receiver.release()
        receiver.set_default(Answer(200))
        server.start()

        got = receiver.wait_for(EVENTS, answered_only=True)
        assert {r.header("X-Ductape-Event-Id"): r.body for r in got} == sent
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            listing = data_of(api.call("GET", "/webhooks/v1/deliveries", params={"limit": 250}))
            if all(d["status"] == "delivered" for d in listing):
                break
            time.sleep(0.05)
        assert {d["event_id"] for d in listing} == set(sent)
        assert {d["status"] for d in listing} == {"delivered"}
        # the deliveries killed in flight left no attempt behind; their one attempt is the successful one
        assert all([a["status_code"] for a in d["attempts"]] == [200] for d in listing)
