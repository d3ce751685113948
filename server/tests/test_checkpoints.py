"""WAL checkpoints run in a thread of their own (EventStore.start_checkpoints), not in the commit of
whichever writer (group commit, claim, recorder) takes the WAL past SQLite's automatic threshold; and
what is committed still reaches the database file itself."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time

from conftest import CLOSED_URL
from ductape_local.events import EventStore, ReceivedEvent, Target

TARGET = Target("11111111-1111-4111-8111-111111111111", "p", "a", "w", "prd", f"{CLOSED_URL}/in", "POST")


def _events(count: int, size: int = 4096) -> list[tuple[Target, ReceivedEvent]]:
    return [(TARGET, ReceivedEvent("POST", "/webhooks/v1/process/x", "", [("x-n", str(n))], bytes(size)))
            for n in range(count)]


def _in_a_thread(work):
    result: list = []
    thread = threading.Thread(target=lambda: result.append(work()))
    thread.start()
    thread.join(30)
    return result[0]


def test_a_writer_made_after_start_checkpoints_never_checkpoints_in_its_commit(tmp_path):
    store = EventStore(str(tmp_path / "events.db"))
    store.start_checkpoints()
    try:
        def write_and_look():
            store.add_events(_events(10))
            value = store._connection().execute("PRAGMA wal_autocheckpoint").fetchone()[0]
            store.close_thread_connection()
            return value
        assert _in_a_thread(write_and_look) == 0
    finally:
        store.stop_checkpoints()


def test_the_checkpoint_thread_copies_commits_into_the_database_file(tmp_path):
    db = tmp_path / "events.db"
    store = EventStore(str(db))
    store.start_checkpoints()
    try:
        # more than the 1,000 pages after which SQLite would checkpoint by itself
        _in_a_thread(lambda: (store.add_events(_events(1500)), store.close_thread_connection()))
        deadline = time.monotonic() + 10
        count = 0
        while time.monotonic() < deadline:
            time.sleep(0.1)
            # the database file alone, without its WAL: what a checkpoint copied into it (copied while
            # no checkpoint writes to it)
            store.stop_checkpoints()
            shutil.copyfile(db, tmp_path / "copy.db")
            conn = sqlite3.connect(tmp_path / "copy.db")
            try:
                count = conn.execute("SELECT COUNT(*) FROM middleware_events").fetchone()[0]
            finally:
                conn.close()
            if count == 1500:
                break
            store.start_checkpoints()
        assert count == 1500
    finally:
        store.stop_checkpoints()
