"""A database written before the lifecycle (schema version 2) upgrades in place at start: its
registrations become enabled, generation 1, their link as old as the registration; its deliveries
are no tests; the links and uuids stay; the lifecycle routes then work on it."""
from __future__ import annotations

import json
import sqlite3

import requests
from delivery_receiver import Receiver

from conftest import Api, data_of, shared_seed
from ductape_local.auth_digest import auth_digest, new_salt, url_digest
from ductape_local.store import SCHEMA_VERSION
from ductape_local.testing import LocalServer
from lifecycle_support import delivery, lifecycle, listed, settled

V2_SCHEMA = """
CREATE TABLE catalog (id INTEGER PRIMARY KEY CHECK (id = 1), document TEXT NOT NULL, loaded_at TEXT NOT NULL);
CREATE TABLE registrations (uuid TEXT PRIMARY KEY, product TEXT NOT NULL, access_tag TEXT NOT NULL,
    webhook_tag TEXT NOT NULL, product_env TEXT NOT NULL, app_env TEXT NOT NULL, url TEXT NOT NULL,
    method TEXT NOT NULL, auth TEXT NOT NULL, auth_digest TEXT NOT NULL, digest_salt TEXT NOT NULL DEFAULT '',
    url_digest TEXT NOT NULL DEFAULT '', active INTEGER NOT NULL DEFAULT 0, provider_status TEXT,
    provider_http_status INTEGER, provider_at TEXT, provider_error TEXT, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, deleted_at TEXT);
CREATE UNIQUE INDEX registrations_live_key
    ON registrations (product, access_tag, webhook_tag, product_env) WHERE deleted_at IS NULL;
CREATE TABLE middleware_events (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE,
    registration_uuid TEXT NOT NULL, product TEXT NOT NULL, access_tag TEXT NOT NULL, webhook_tag TEXT NOT NULL,
    env TEXT NOT NULL, target_url TEXT NOT NULL, target_method TEXT NOT NULL, request_method TEXT NOT NULL,
    request_path TEXT NOT NULL, request_query TEXT NOT NULL, request_headers TEXT NOT NULL, body BLOB NOT NULL,
    received_at REAL NOT NULL, state TEXT NOT NULL, attempt_count INTEGER NOT NULL DEFAULT 0,
    round_attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL, delivered_at REAL, last_error TEXT,
    dead_letter_reason TEXT, dead_lettered_at REAL);
CREATE TABLE middleware_attempts (event_id TEXT NOT NULL, n INTEGER NOT NULL, at REAL NOT NULL,
    status_code INTEGER, latency_ms REAL NOT NULL, error TEXT, PRIMARY KEY (event_id, n)) WITHOUT ROWID;
"""
UUID = "33333333-3333-4333-8333-333333333333"
CREATED = "2026-01-01T00:00:00.000Z"
EVENT_ID = "evt_" + "a" * 32


def old_database(path, receiver_url: str) -> str:
    """A version-2 database with one registration and one delivered event; the registration's digest."""
    conn = sqlite3.connect(path)
    conn.executescript(V2_SCHEMA)
    auth, salt = {"headers": {"X-Key": "k_migration_secret"}}, new_salt()
    digest = auth_digest(auth, salt)
    conn.execute(
        "INSERT INTO registrations (uuid, product, access_tag, webhook_tag, product_env, app_env, url, method, auth,"
        " auth_digest, digest_salt, url_digest, active, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (UUID, "my-product", "stripe-payments", "payment_succeeded", "prd", "live", receiver_url, "POST",
         json.dumps(auth), digest, salt, url_digest(receiver_url, salt), 1, CREATED, CREATED))
    conn.execute(
        "INSERT INTO middleware_events (event_id, registration_uuid, product, access_tag, webhook_tag, env,"
        " target_url, target_method, request_method, request_path, request_query, request_headers, body,"
        " received_at, state, attempt_count, delivered_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (EVENT_ID, UUID, "my-product", "stripe-payments", "payment_succeeded", "prd", receiver_url, "POST", "POST",
         "/webhooks/v1/process/" + UUID, "", "[]", b"{}", 1767225600.0, "delivered", 1, 1767225601.0))
    conn.execute("PRAGMA user_version=2")
    conn.commit()
    conn.close()
    return digest


def test_a_version_2_database_upgrades_in_place_and_takes_the_lifecycle(tmp_path):
    db = tmp_path / "v2.db"
    with Receiver() as receiver:
        digest = old_database(db, receiver.url + "/old")
        with LocalServer(shared_seed(), db_path=db) as server:
            api = Api(server)
            registration = listed(api, "payment_succeeded")
            assert registration["uuid"] == UUID and registration["auth_digest"] == digest
            assert (registration["state"], registration["generation"], registration["previous_link"]) == \
                ("enabled", 1, None)
            assert registration["link_created_at"] == CREATED == registration["created_at"]
            old_event = delivery(api, EVENT_ID)
            assert (old_event["test"], old_event["status"]) == (False, "delivered")

            # the link of the stored registration still forwards, and the lifecycle works on it
            event_id = data_of(requests.post(registration["link"], json={"n": 1}), 202)["event_id"]
            assert settled(api, event_id)["status"] == "delivered"
            assert data_of(lifecycle(api, UUID, "disable"))["changed"] is True
            data_of(lifecycle(api, UUID, "enable"))
            rotated = data_of(lifecycle(api, UUID, "rotate", json={"grace_seconds": 600}))
            assert rotated["generation"] == 2 and rotated["previous_link"]["uuid"] == UUID
            tested = data_of(lifecycle(api, rotated["uuid"], "test"), 202)["event_id"]
            assert settled(api, tested)["test"] is True
            assert data_of(requests.post(registration["link"], json={"n": 2}), 202)
            # a replay of the event stored before the upgrade reaches the current receiver
            replayed = data_of(api.call("POST", "/webhooks/v1/deliveries/replay",
                                        json={"product": "my-product", "event_ids": [EVENT_ID]}))
            assert replayed["queued"] == 1
            receiver.wait_for(4)

            # starting again on the upgraded database changes nothing
            server.restart()
            again = listed(api, "payment_succeeded")
            assert {k: again[k] for k in ("uuid", "generation", "link_created_at", "previous_link", "state")} == \
                {k: rotated[k] for k in ("uuid", "generation", "link_created_at", "previous_link", "state")}
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        columns = {row[1] for row in conn.execute("PRAGMA table_info(registrations)")}
        assert {"state", "generation", "link_created_at", "origin_uuid", "previous_uuid",
                "previous_expires_at"} <= columns
    finally:
        conn.close()
