"""Ingress first (backpressure.py): during a burst of events the delivery threads leave the CPUs to the
accept path while no due delivery has waited half the back-pressure lag, then deliver everything.
The rule on a real event store, and the worker's side of it against a real receiver over HTTP."""

from __future__ import annotations

import threading
import time

from delivery_receiver import Receiver
from test_delivery_worker import event, running, store, target_for, wait_final  # noqa: F401  # fixtures

from ductape_local import backpressure
from ductape_local.backpressure import Backpressure
from ductape_local.events import DELIVERED, PENDING, EventStore

URL = "http://127.0.0.1:9/receiver"


def looked(rule: Backpressure, stored: int, seconds: float = 0.1) -> bool:
    """deliveries_wait after one look that follows `stored` events stored in `seconds`."""
    rule._looked_at = time.monotonic() - seconds  # pylint: disable=protected-access
    rule.note([URL], stored)
    rule._look()  # pylint: disable=protected-access
    return rule.deliveries_wait


def test_delivery_waits_during_a_burst_and_goes_on_when_it_ends(store: EventStore):
    rule = Backpressure(store, lag=2.0, hold=1.0)
    resumed = []
    rule.on_deliveries_resume = lambda: resumed.append(True)
    store.add_event(target_for(URL), event())  # due now: it has not waited yet
    burst = int(backpressure.BURST_RATE * 0.1) + 1
    assert looked(rule, burst) is True
    assert resumed == []
    # fewer events than BURST_RATE per second: no burst, and the worker is woken
    assert looked(rule, 1) is False
    assert resumed == [True]


def test_delivery_does_not_wait_once_a_due_delivery_waited_half_the_lag(store: EventStore):
    rule = Backpressure(store, lag=2.0, hold=1.0)
    store.add_event(target_for(URL), event(), now=time.time() - 2.0 * backpressure.DEFER_SHARE - 0.5)
    assert looked(rule, int(backpressure.BURST_RATE) * 10) is False


def test_without_back_pressure_delivery_never_waits(store: EventStore):
    rule = Backpressure(store, lag=0, hold=1.0)
    rule.note([URL], 10**6)
    assert rule.deliveries_wait is False


def test_the_worker_claims_nothing_while_told_to_wait_then_delivers_everything(store: EventStore, running):
    with Receiver() as receiver:
        waiting = threading.Event()
        waiting.set()
        worker = running()
        worker.wait_while(waiting.is_set)
        ids = [store.add_event(target_for(receiver.url), event(body=f'{{"n": {n}}}'.encode())) for n in range(5)]
        worker.wake([receiver.url])
        time.sleep(0.3)  # several of the worker's looks (BURST_POLL_S)
        assert [(store.get(event_id)["state"], store.get(event_id)["attempts"]) for event_id in ids] == [
            (PENDING, [])] * 5
        assert receiver.requests == []
        waiting.clear()
        assert [wait_final(store, event_id)["status"] for event_id in ids] == [DELIVERED] * 5
        assert sorted(r.header("X-Ductape-Event-Id") for r in receiver.wait_for(5)) == sorted(ids)
