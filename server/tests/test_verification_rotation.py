"""Ingress counts (rejected, duplicates, last rejection) belong to the registration, not to one of its
uuids: they run on across a rotation, and a database from before is upgraded to that key."""
from __future__ import annotations

import sqlite3

from conftest import data_of
from ductape_local.events import EventStore, ingress_counts
from test_verification import SIGNED, api, body_of, ingress_of, link_of, post, receiver, refused, running  # noqa: F401


def summary_of(api, webhook_tag: str, env: str) -> dict:
    return data_of(api.call("GET", "/webhooks/v1/deliveries/summary", params={
        "product": "my-product", "access_tag": SIGNED, "webhook_tag": webhook_tag, "env": env}))


def test_rejections_before_and_after_a_rotation_add_up(api, receiver):
    registration = link_of(api, receiver, "paystack_charge", env="prd")
    refused(post(registration["link"], body_of(40), {"x-paystack-signature": "00"}), "does not match")
    rotated = data_of(api.call("POST", f"/webhooks/v1/registrations/{registration['uuid']}/rotate", json={}))
    assert rotated["ingress"]["rejected"] == 1
    refused(post(rotated["link"], body_of(41), {"x-paystack-signature": "01"}), "does not match")
    ingress = ingress_of(api, rotated["uuid"])
    assert ingress["rejected"] == 2
    assert "does not match" in ingress["last_rejection"]["reason"]
    summary = summary_of(api, "paystack_charge", "prd")
    assert summary["rejected"] == 2
    assert summary["last_rejection"]["registration_uuid"] == rotated["uuid"]


def test_counts_kept_by_uuid_in_an_older_database_are_merged_under_the_origin_uuid(tmp_path):
    path = str(tmp_path / "old.db")
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE registrations (uuid TEXT PRIMARY KEY, origin_uuid TEXT NOT NULL DEFAULT '');
        CREATE TABLE retired_links (uuid TEXT PRIMARY KEY, origin_uuid TEXT NOT NULL);
        INSERT INTO registrations VALUES ('u3', 'u1'), ('v1', '');
        INSERT INTO retired_links VALUES ('u1', 'u1'), ('u2', 'u1');
        CREATE TABLE middleware_ingress (registration_uuid TEXT PRIMARY KEY, product TEXT NOT NULL,
            access_tag TEXT NOT NULL, webhook_tag TEXT NOT NULL, env TEXT NOT NULL,
            rejected INTEGER NOT NULL DEFAULT 0, duplicates INTEGER NOT NULL DEFAULT 0,
            last_rejection_reason TEXT, last_rejection_at REAL);
        INSERT INTO middleware_ingress VALUES ('u1', 'p', 'a', 'w', 'prd', 2, 1, 'first', 10.0),
            ('u2', 'p', 'a', 'w', 'prd', 3, 0, 'latest', 30.0), ('u3', 'p', 'a', 'w', 'prd', 0, 4, NULL, NULL),
            ('v1', 'p', 'a', 'x', 'prd', 1, 0, 'other', 20.0);
    """)
    conn.close()
    EventStore(path)
    EventStore(path)  # a second open changes nothing
    conn = sqlite3.connect(path)
    counts = ingress_counts(conn, [("u3", "u1"), ("v1", "v1")])
    assert counts["u3"] == {"rejected": 5, "duplicates": 5, "last_rejection": {"reason": "latest", "at": 30.0}}
    assert counts["v1"] == {"rejected": 1, "duplicates": 0, "last_rejection": {"reason": "other", "at": 20.0}}
    rows = conn.execute("SELECT registration_uuid, last_rejection_uuid FROM middleware_ingress ORDER BY 1").fetchall()
    assert rows == [("u1", "u2"), ("v1", "v1")]
