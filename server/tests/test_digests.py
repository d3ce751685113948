"""Salted digests (contract C1), urls with credentials masked in every answer and a url_digest (C2), and
the database file kept owner-only."""
from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import stat

import pytest

from conftest import Api, data_of, error_of, live_registrations, registered, shared_seed
from ductape_local.auth_digest import auth_matches, mask_url
from ductape_local.testing import LocalServer
from test_register import expected_digest, expected_url_digest

DIGEST = re.compile(r"^hmac-sha256:[0-9a-f]{32}:[0-9a-f]{64}$")
SECRET = "s3cr3t-123456"
CRED_URL = f"https://alice:{SECRET}@hooks.example.com/in?token={SECRET}x&v=2&Api_Key={SECRET}y#frag"
MASKED_CRED_URL = "https://********@hooks.example.com/in?token=********&v=2&Api_Key=********#frag"


@pytest.mark.parametrize("url,masked", [
    ("https://user:pa55@h.example/p?a=1", "https://********@h.example/p?a=1"),
    ("https://tok3n@h.example/p", "https://********@h.example/p"),
    ("https://h.example/p?token=abc&v=2&API_KEY=x#frag", "https://h.example/p?token=********&v=2&API_KEY=********#frag"),
    ("http://127.0.0.1:8080/hooks/a", "http://127.0.0.1:8080/hooks/a"),
    # the rest of the class: every secret word, any case, percent-encoded names, empty values, odd shapes
    ("https://h/p?SIGNATURE=1&passwd=2&pwd=3&x_credential=4&sessionid=5&my_secret=6&Auth=7&q=8",
     "https://h/p?SIGNATURE=********&passwd=********&pwd=********&x_credential=********&sessionid=********"
     "&my_secret=********&Auth=********&q=8"),
    ("https://h/p?%74oken=abc", "https://h/p?%74oken=********"),
    ("https://h/p?token=&x", "https://h/p?token=********&x"),
    ("https://a@b@h.example:8443/p@q?x=1", "https://********@h.example:8443/p@q?x=1"),
    ("https://h.example/p#token=abc", "https://h.example/p#token=abc"),
    ("https://h.example/p?x=a%20b&y", "https://h.example/p?x=a%20b&y"),
])
def test_mask_url_vectors(url, masked):
    assert mask_url(url) == masked


def test_digests_are_salted_per_registration_and_per_version(api, tag):
    auth = {"headers": {"X-Secret": SECRET}}
    first = registered(api, webhook_tag=tag, envs=[{"slug": "prd", "url": "https://a.example.com/h", "auth": auth},
                                                   {"slug": "stg", "url": "https://a.example.com/h", "auth": auth}])
    prd, stg = first["prd"], first["stg"]
    for env in (prd, stg):
        assert DIGEST.match(env["auth_digest"]) and DIGEST.match(env["url_digest"])
        assert env["auth_digest"] == expected_digest(auth, env["auth_digest"])
        assert env["url_digest"] == expected_url_digest("https://a.example.com/h", env["auth_digest"])
        assert env["url_digest"].split(":")[1] == env["auth_digest"].split(":")[1]  # one salt
    # The same secret in two registrations is not visible as the same.
    assert prd["auth_digest"] != stg["auth_digest"] and prd["url_digest"] != stg["url_digest"]
    # The old unsalted form is gone: a guess cannot be tested against a table.
    unsalted = hashlib.sha256(json.dumps({"body": {}, "headers": auth["headers"], "params": {}, "query": {}},
                                         sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert unsalted not in json.dumps(first)
    # Nothing changed: same digest (a client can tell "unchanged").
    again = registered(api, webhook_tag=tag, envs=[{"slug": "prd", "url": "https://a.example.com/h", "auth": auth}])
    assert again["prd"]["auth_digest"] == prd["auth_digest"] and not again["prd"]["changed"]
    # A changed secret, and a changed url, each bring a new salt.
    rotated = registered(api, webhook_tag=tag, envs=[{"slug": "prd", "url": "https://a.example.com/h",
                                                      "auth": {"headers": {"X-Secret": "other"}}}])["prd"]
    assert rotated["auth_digest"].split(":")[1] != prd["auth_digest"].split(":")[1]
    moved = registered(api, webhook_tag=tag, envs=[{"slug": "prd", "url": "https://b.example.com/h",
                                                    "auth": {"headers": {"X-Secret": "other"}}}])["prd"]
    assert moved["auth_digest"].split(":")[1] != rotated["auth_digest"].split(":")[1]
    assert auth_matches(moved["auth_digest"], {"headers": {"X-Secret": "other"}})
    assert not auth_matches(moved["auth_digest"], auth)


def test_credentials_in_urls_are_masked_in_every_answer(api, tag):
    answers = [api.register(webhook_tag=tag, envs=[{"slug": "prd", "url": CRED_URL}])]
    prd = data_of(answers[0])["envs"][0]
    assert prd["url"] == MASKED_CRED_URL
    assert prd["url_digest"] == expected_url_digest(CRED_URL, prd["auth_digest"])
    answers.append(api.register(webhook_tag=tag, envs=[{"slug": "prd", "url": CRED_URL}]))  # unchanged
    answers.append(api.generate_link(webhook_tag=tag, env="dev", url=CRED_URL))
    answers.append(api.webhooks(webhook_tag=tag))
    answers.append(api.generate_link(webhook_tag=tag, env="dev", url=CRED_URL.replace("alice", "al ice")))  # 422
    answers.append(api.register(webhook_tag=tag, envs=[{"slug": "stg", "url": CRED_URL.replace("https", "ftp")}]))
    answers.append(api.delete(prd["uuid"]))
    for answer in answers:
        assert SECRET not in answer.text and "alice" not in answer.text, answer.text
    assert data_of(answers[3])[0]["config"][0]["url"] == MASKED_CRED_URL
    assert "********" in error_of(answers[5], 422)
    # A changed password inside the url is a change, visible through url_digest only.
    changed = registered(api, webhook_tag=tag, envs=[{"slug": "dev", "url": CRED_URL.replace(SECRET, "n3w")}])["dev"]
    assert changed["changed"] and changed["url"] == MASKED_CRED_URL


def test_the_database_and_its_wal_files_are_owner_only(api, tag):
    registered(api, webhook_tag=tag, envs=[{"slug": "prd", "url": "https://a.example.com/h"}])
    db = api.server.db_path
    files = [db] + [db.with_name(db.name + suffix) for suffix in ("-wal", "-shm")]
    assert files[1].exists() and files[2].exists()
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, (path, oct(path.stat().st_mode))


V1_SCHEMA = """
CREATE TABLE catalog (id INTEGER PRIMARY KEY CHECK (id = 1), document TEXT NOT NULL, loaded_at TEXT NOT NULL);
CREATE TABLE registrations (uuid TEXT PRIMARY KEY, product TEXT NOT NULL, access_tag TEXT NOT NULL,
    webhook_tag TEXT NOT NULL, product_env TEXT NOT NULL, app_env TEXT NOT NULL, url TEXT NOT NULL,
    method TEXT NOT NULL, auth TEXT NOT NULL, auth_digest TEXT NOT NULL, active INTEGER NOT NULL DEFAULT 0,
    provider_status TEXT, provider_http_status INTEGER, provider_at TEXT, provider_error TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, deleted_at TEXT);
"""


def test_a_database_of_the_unsalted_version_is_migrated(tmp_path):
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.executescript(V1_SCHEMA)
    auth = {"headers": {"X-Secret": SECRET}}
    for uuid, env in (("11111111-1111-4111-8111-111111111111", "prd"), ("22222222-2222-4222-8222-222222222222", "stg")):
        conn.execute("INSERT INTO registrations (uuid, product, access_tag, webhook_tag, product_env, app_env, url,"
                     " method, auth, auth_digest, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                     (uuid, "my-product", "stripe-payments", "payment_succeeded", env, "live", CRED_URL, "POST",
                      json.dumps(auth), "sha256:" + "0" * 64, "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z"))
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    db.chmod(0o644)
    with LocalServer(shared_seed(), db_path=db) as server:
        envs = {r["productEnv"]: r for r in live_registrations(Api(server), webhook_tag="payment_succeeded")}
        for env in envs.values():
            assert env["auth_digest"] == expected_digest(auth, env["auth_digest"])
            assert env["url_digest"] == expected_url_digest(CRED_URL, env["auth_digest"])
            assert env["url"] == MASKED_CRED_URL
        assert envs["prd"]["auth_digest"] != envs["stg"]["auth_digest"]
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
