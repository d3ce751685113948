"""Durability of the accept path under load: the server is killed with SIGKILL while many connections
post events, and every event that was answered 202 is in the database afterwards, byte for byte, and
in the delivery log once the server is started again on it."""

from __future__ import annotations

import sqlite3
import threading

import requests

from conftest import CLOSED_URL, Api, data_of
from ductape_local.testing import LocalServer

SENDERS = 16
# accepted events to wait for before the kill; the senders keep posting until it happens
BEFORE_KILL = 400


def test_sigkill_under_load_loses_no_accepted_event():
    with LocalServer(retry_schedule="600") as server:
        api = Api(server)
        link = data_of(api.generate_link(url=f"{CLOSED_URL}/in"))["link"]
        accepted: dict[str, bytes] = {}
        lock = threading.Lock()
        enough = threading.Event()

        def sender(number: int) -> None:
            session = requests.Session()
            sequence = 0
            while True:
                body = f'{{"sender": {number}, "n": {sequence}}}'.encode()
                sequence += 1
                try:
                    response = session.post(link, data=body, headers={"Content-Type": "application/json"}, timeout=30)
                except requests.RequestException:
                    return  # the server is gone
                assert response.status_code == 202, response.text
                with lock:
                    accepted[response.json()["data"]["event_id"]] = body
                    if len(accepted) >= BEFORE_KILL:
                        enough.set()

        threads = [threading.Thread(target=sender, args=(n,), daemon=True) for n in range(SENDERS)]
        for thread in threads:
            thread.start()
        assert enough.wait(120), f"only {len(accepted)} events accepted"
        server.kill()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)

        conn = sqlite3.connect(server.db_path)
        try:
            stored = dict(conn.execute("SELECT event_id, body FROM middleware_events").fetchall())
        finally:
            conn.close()
        missing = set(accepted) - set(stored)
        assert not missing, f"{len(missing)} of {len(accepted)} accepted events lost"
        assert all(bytes(stored[event_id]) == body for event_id, body in accepted.items())

        server.start()
        listed: set[str] = set()
        cursor = None
        while True:
            params = {"limit": 250, **({"cursor": cursor} if cursor else {})}
            page = api.call("GET", "/webhooks/v1/deliveries", params=params)
            listed |= {delivery["event_id"] for delivery in data_of(page)}
            cursor = page.json()["meta"]["next_cursor"]
            if not cursor:
                break
        assert set(accepted) <= listed
