"""Concurrent provider events are committed together (group commit) and each request still gets its own
answer: 202 with a distinct event id that the delivery log already holds, or 410 for a deleted link,
even when both kinds share one transaction; and a link whose registration changed is read afresh."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from delivery_receiver import Receiver

from conftest import CLOSED_URL, Api, data_of
from ductape_local.events import ROWS_PER_INSERT, DeliveryFilter, EventStore, ReceivedEvent, Target
from ductape_local.testing import LocalServer

REQUESTS = 96


@pytest.fixture(scope="module")
def api():
    with LocalServer(retry_schedule="0.05") as server:
        yield Api(server)


def post(link: str, index: int) -> requests.Response:
    return requests.post(link, json={"n": index}, timeout=30)


def test_concurrent_events_each_get_their_own_answer_after_commit(api):
    with Receiver() as receiver:
        live = data_of(api.generate_link(env="dev", url=receiver.url + "/live"))["link"]
        gone = data_of(api.generate_link(env="prd", url=receiver.url + "/gone"))
        data_of(api.delete(gone["uuid"]))
        links = [live if index % 3 else gone["link"] for index in range(REQUESTS)]
        with ThreadPoolExecutor(max_workers=32) as pool:
            responses = list(pool.map(post, links, range(REQUESTS)))

        ids = []
        for link, response in zip(links, responses):
            if link == live:
                assert response.status_code == 202, response.text
                ids.append(response.json()["data"]["event_id"])
            else:
                assert response.status_code == 410, response.text
                assert gone["uuid"] in response.json()["errors"]
        assert len(set(ids)) == len(ids) == links.count(live)
        for event_id in ids:
            # 202 was answered after the commit: the delivery log has every accepted event.
            assert data_of(api.call("GET", f"/webhooks/v1/deliveries/{event_id}"))["event_id"] == event_id
        bodies = sorted(request.body for request in receiver.wait_for(len(ids)))
        assert len(bodies) == len(ids)


def test_a_changed_registration_is_read_again_by_the_next_event(api):
    with Receiver() as first, Receiver() as second:
        link = data_of(api.generate_link(env="stg", url=first.url + "/a"))["link"]
        assert post(link, 1).status_code == 202
        first.wait_for(1)
        data_of(api.generate_link(env="stg", url=second.url + "/b"))
        assert post(link, 2).status_code == 202
        [request] = second.wait_for(1)
        assert request.path == "/b"


def test_a_batch_that_fails_commits_none_of_its_events(tmp_path):
    store = EventStore(str(tmp_path / "events.db"))
    good = Target("11111111-1111-4111-8111-111111111111", "p", "a", "w", "prd", f"{CLOSED_URL}/in", "POST")
    broken = dataclasses.replace(good, url=None)  # NOT NULL: the INSERT of the second event fails
    received = ReceivedEvent("POST", "/webhooks/v1/process/x", "", [("content-type", "application/json")], b"{}")
    with pytest.raises(sqlite3.IntegrityError):
        store.add_events([(good, received), (broken, received)])
    assert store.list(DeliveryFilter(products=("p",)), 10) == ([], None)
    # the connection is usable again: the failed transaction was rolled back, not left open
    [event_id] = store.add_events([(good, received)])
    assert store.get(event_id)["state"] == "pending"
    store.close_thread_connection()


def _target_and_event(number: int) -> tuple[Target, ReceivedEvent]:
    target = Target("11111111-1111-4111-8111-111111111111", "p", "a", "w", "prd", f"{CLOSED_URL}/in", "POST")
    return target, ReceivedEvent("POST", "/webhooks/v1/process/x", f"n={number}", [("x-n", str(number))],
                                 f"body {number}".encode())


def test_a_batch_larger_than_one_insert_statement_is_committed_whole_and_in_order(tmp_path):
    store = EventStore(str(tmp_path / "events.db"))
    events = [_target_and_event(number) for number in range(ROWS_PER_INSERT * 3 + 5)]
    ids = store.add_events(events)
    assert len(set(ids)) == len(events)
    conn = sqlite3.connect(tmp_path / "events.db")
    try:
        rows = conn.execute("SELECT event_id, request_query, body FROM middleware_events ORDER BY seq").fetchall()
    finally:
        conn.close()
    assert rows == [(event_id, f"n={number}", f"body {number}".encode()) for number, event_id in enumerate(ids)]
    store.close_thread_connection()


def test_a_batch_waits_for_another_writer_then_commits(tmp_path):
    store = EventStore(str(tmp_path / "events.db"))
    other = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds SQLite's write lock
    outcome: list = []
    adding = threading.Thread(target=lambda: outcome.append(store.add_events([_target_and_event(1)])))
    adding.start()
    adding.join(0.3)
    assert outcome == []  # still waiting for the lock
    other.execute("COMMIT")
    adding.join(30)
    [[event_id]] = outcome
    assert store.get(event_id)["state"] == "pending"
    other.close()
    store.close_thread_connection()


def test_a_batch_that_cannot_get_the_write_lock_fails_whole_after_the_busy_timeout(tmp_path):
    store = EventStore(str(tmp_path / "events.db"), busy_timeout_s=0.2)
    other = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        store.add_events([_target_and_event(1), _target_and_event(2)])
    other.execute("ROLLBACK")
    other.close()
    assert store.list(DeliveryFilter(products=("p",)), 10) == ([], None)
    # the connection keeps its busy timeout for every other use
    assert store._connection().execute("PRAGMA busy_timeout").fetchone()[0] == 200  # pylint: disable=protected-access
    store.close_thread_connection()
