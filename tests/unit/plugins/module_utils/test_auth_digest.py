"""The collection's auth digest is the server's, byte for byte, whatever the auth holds.

The client compares the digest of the desired `auth` with the `auth_digest` that the API returns, so
any difference (key order, number formatting, non-ASCII escaping, absent vs empty parts) would make
every run report a change, or hide one.
"""
from __future__ import annotations

import hashlib
import json
import random

import pytest

from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import auth_digest
from ductape_local.auth_digest import auth_digest as server_auth_digest

CASES = {
    "absent auth": None,
    "empty auth": {},
    "every part empty": {"headers": {}, "query": {}, "body": {}, "params": {}},
    "every part None": {"headers": None, "query": None, "body": None, "params": None},
    "one header": {"headers": {"Authorization": "Bearer sk_live_123"}},
    "header and None parts": {"headers": {"X-Key": "k"}, "query": None, "body": None, "params": None},
    "nested body": {"body": {"metadata": {"tags": ["a", "b", {"deep": [1, 2, {"x": None}]}], "on": True}}},
    "non-ASCII text": {"headers": {"X-Name": "Zoë Ærøskøbing 東京 🚀"}, "body": {"note": "naïve café"}},
    "escapes and quotes": {"body": {"s": 'a "quoted" \\ back\nslash\t\u0001'}},
    "numbers": {"body": {"int": 42, "negative": -7, "float": 0.1, "big": 12345678901234567890, "exp": 1e-7,
                         "zero": 0, "bool": False}},
    "all four parts": {"headers": {"A": "1"}, "query": {"q": "2"}, "body": {"b": [3]}, "params": {"p": 4.5}},
    "key order A": {"query": {"b": "2", "a": "1"}, "headers": {"Y": "y", "X": "x"}},
    "key order B": {"headers": {"X": "x", "Y": "y"}, "query": {"a": "1", "b": "2"}},
}


@pytest.mark.parametrize("auth", list(CASES.values()), ids=list(CASES))
def test_client_digest_equals_the_server_digest(auth):
    assert auth_digest(auth) == server_auth_digest(auth)


def test_the_digest_is_the_documented_canonical_form():
    # Independent of both implementations: docs/developing.md spells the canonical JSON out.
    auth = {"headers": {"X-Key": "sécret"}, "params": {"id": 7}}
    canonical = '{"body":{},"headers":{"X-Key":"sécret"},"params":{"id":7},"query":{}}'.encode("utf-8")
    assert auth_digest(auth) == "sha256:" + hashlib.sha256(canonical).hexdigest()


def test_absent_none_and_empty_parts_are_one_and_the_same():
    digests = {auth_digest(CASES[name]) for name in ("absent auth", "empty auth", "every part empty", "every part None")}
    assert len(digests) == 1
    assert auth_digest({"headers": {"X-Key": "k"}}) == auth_digest(CASES["header and None parts"])


def test_key_order_does_not_matter_but_values_do():
    assert auth_digest(CASES["key order A"]) == auth_digest(CASES["key order B"])
    assert auth_digest({"headers": {"X-Key": "one"}}) != auth_digest({"headers": {"X-Key": "two"}})
    # The same key and value in another part is another auth.
    assert auth_digest({"headers": {"k": "v"}}) != auth_digest({"query": {"k": "v"}})
    # A number and its text are different values.
    assert auth_digest({"body": {"n": 1}}) != auth_digest({"body": {"n": "1"}})


def test_the_digest_never_contains_the_secret():
    digest = auth_digest({"headers": {"Authorization": "Bearer sk_live_never_shown"}})
    assert digest.startswith("sha256:") and len(digest) == len("sha256:") + 64
    assert "sk_live" not in digest


def _random_value(rng: random.Random, depth: int):
    kinds = ["str", "int", "float", "bool", "none", "text"] + (["list", "dict"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "str":
        return "".join(rng.choice("abcXYZ019 _-\"\\/") for _index in range(rng.randint(0, 8)))
    if kind == "text":
        return "".join(rng.choice("éßøΩ漢字🙂\u00a0\u2028") for _index in range(rng.randint(1, 5)))
    if kind == "int":
        return rng.randint(-10**12, 10**12)
    if kind == "float":
        return rng.uniform(-1e6, 1e6)
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "none":
        return None
    if kind == "list":
        return [_random_value(rng, depth + 1) for _index in range(rng.randint(0, 4))]
    return {_random_key(rng): _random_value(rng, depth + 1) for _index in range(rng.randint(0, 4))}


def _random_key(rng: random.Random) -> str:
    return "".join(rng.choice("abkXé_-") for _index in range(rng.randint(1, 6)))


def test_random_auths_digest_alike_on_both_sides():
    rng = random.Random(20261129)
    for _index in range(300):
        auth = {}
        for part in ("headers", "query", "body", "params"):
            roll = rng.random()
            if roll < 0.2:
                continue  # absent
            if roll < 0.3:
                auth[part] = None
            else:
                auth[part] = {_random_key(rng): _random_value(rng, 1 if part == "body" else 3)
                              for _index in range(rng.randint(0, 4))}
        shuffled = {part: auth[part] for part in rng.sample(list(auth), len(auth))}
        assert auth_digest(shuffled) == server_auth_digest(auth), json.dumps(auth, ensure_ascii=False)
