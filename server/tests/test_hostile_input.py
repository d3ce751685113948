"""Bad input of every class is refused before anything is written, naming the field: lone surrogates,
invalid UTF-8, NUL characters, deep nesting, oversized fields and bodies; and nothing of it reaches the
log as a traceback."""
from __future__ import annotations

import json

import pytest
import requests

from conftest import PRODUCT, STRIPE, Api, error_of, live_registrations

GOOD_ENV = {"slug": "prd", "url": "https://a.example.com/h", "auth": {"headers": {"X-Key": "v"}}}


def raw_register(api: Api, text: str | bytes) -> requests.Response:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return api.call("POST", "/webhooks/v1/register", data=data, headers={"Content-Type": "application/json"})


def body_with(tag: str, second_env: dict) -> dict:
    return {"product": PRODUCT, "access_tag": STRIPE, "webhook_tag": tag, "envs": [GOOD_ENV, second_env]}


# (where the bad string goes, the field the error must name). The JSON text carries the escape itself.
PLACES = [
    (lambda bad: {"slug": "stg", "url": f"https://b.example.com/{bad}"}, "envs[1].url"),
    (lambda bad: {"slug": "stg", "url": "https://b.example.com/h", "method": bad}, "envs[1].method"),
    (lambda bad: {"slug": bad, "url": "https://b.example.com/h"}, "envs[1].slug"),
    (lambda bad: {"slug": "stg", "url": "https://b.example.com/h", "auth": {"headers": {"X-Key": bad}}},
     "envs[1].auth.headers.X-Key"),
    (lambda bad: {"slug": "stg", "url": "https://b.example.com/h", "auth": {"body": {"a": {"b": [bad]}}}},
     "envs[1].auth.body.a.b[0]"),
    (lambda bad: {"slug": "stg", "url": "https://b.example.com/h", "auth": {"query": {bad: "v"}}},
     "envs[1].auth.query"),
]
BAD_STRINGS = {"lone high surrogate": "\ud800", "lone low surrogate": "x\udfffy", "NUL": "a\u0000b"}


@pytest.mark.parametrize("kind", BAD_STRINGS)
@pytest.mark.parametrize("place", range(len(PLACES)))
def test_a_bad_string_anywhere_is_422_naming_the_field_and_nothing_is_written(api, case_tags, kind, place):
    tag = next(case_tags)
    build, field = PLACES[place]
    text = json.dumps(body_with(tag, build(BAD_STRINGS[kind])))  # ensure_ascii: "\ud800", "\u0000" escapes
    message = error_of(raw_register(api, text), 422)
    assert message.startswith(field + ": "), message
    assert live_registrations(api, webhook_tag=tag) == []  # the good first env was not committed


@pytest.mark.parametrize("field", ["product", "access_tag", "webhook_tag"])
def test_a_surrogate_in_a_top_level_field_is_422(api, tag, field):
    body = {"product": PRODUCT, "access_tag": STRIPE, "webhook_tag": tag, "envs": [GOOD_ENV]}
    body[field] = "x\ud800"
    assert error_of(raw_register(api, json.dumps(body)), 422).startswith(field + ": ")
    assert live_registrations(api, webhook_tag=tag) == []


def test_generate_link_refuses_the_same_classes(api, tag):
    for bad in BAD_STRINGS.values():
        body = {"product": PRODUCT, "access_tag": STRIPE, "webhook_tag": tag, "env": "dev",
                "url": f"https://b.example.com/{bad}"}
        response = api.call("POST", "/webhooks/v1/generate-link", data=json.dumps(body),
                            headers={"Content-Type": "application/json"})
        assert error_of(response, 422).startswith("url: ")
    assert live_registrations(api, webhook_tag=tag) == []


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"])
def test_invalid_utf8_is_refused_and_nothing_is_written(api, tag, raw):
    text = json.dumps(body_with(tag, {"slug": "stg", "url": "https://b.example.com/PLACE"})).encode("utf-8")
    response = raw_register(api, text.replace(b"PLACE", raw))
    assert response.status_code in (400, 422)
    assert error_of(response, response.status_code).startswith("request body: ")
    assert live_registrations(api, webhook_tag=tag) == []


@pytest.mark.parametrize("depth", [40, 1000, 5000, 100_000])
def test_deep_nesting_is_422_never_500(api, tag, depth):
    nested = "[" * depth + "]" * depth
    text = json.dumps(body_with(tag, {"slug": "stg", "url": "https://b.example.com/h",
                                      "auth": {"body": {"deep": "NESTED"}}})).replace('"NESTED"', nested)
    message = error_of(raw_register(api, text), 422)
    assert "nested deeper than" in message, message
    assert live_registrations(api, webhook_tag=tag) == []


@pytest.mark.parametrize("second,field", [
    ({"slug": "stg", "url": "https://b.example.com/" + "u" * 3000}, "envs[1].url"),
    ({"slug": "s" * 300, "url": "https://b.example.com/h"}, "envs[1].slug"),
    ({"slug": "stg", "url": "https://b.example.com/h", "auth": {"headers": {"K" * 300: "v"}}}, "envs[1].auth.headers"),
    ({"slug": "stg", "url": "https://b.example.com/h", "auth": {"query": {"k": "v" * 9000}}}, "envs[1].auth.query"),
    ({"slug": "stg", "url": "https://b.example.com/h", "auth": {"body": {"k": ["v" * 5000] * 2}}},
     "envs[1].auth.body"),
    ({"slug": "stg", "url": "https://b.example.com/h", "auth": {"params": {f"k{i}": "v" for i in range(70)}}},
     "envs[1].auth.params"),
    ({"slug": "stg", "url": "https://b.example.com/h", "auth": {"headers": {"X-Key": "v\r\nX-Injected: 1"}}},
     "envs[1].auth.headers"),
    ({"slug": "stg", "url": "https://b.example.com/h", "auth": {"headers": {"Bad Header:": "v"}}},
     "envs[1].auth.headers"),
])
def test_field_limits_are_422_naming_the_field(api, tag, second, field):
    message = error_of(api.call("POST", "/webhooks/v1/register", json=body_with(tag, second)), 422)
    assert message.startswith(field), message
    assert "v" * 50 not in message and "X-Injected" not in message
    assert live_registrations(api, webhook_tag=tag) == []


def test_too_many_envs_and_long_tags_are_422(api, tag):
    many = [{"slug": "prd", "url": "https://a.example.com/h"}] * 51
    assert error_of(api.register(webhook_tag=tag, envs=many), 422).startswith("envs: ")
    assert error_of(api.register(webhook_tag="t" * 300), 422).startswith("webhook_tag: ")
    assert error_of(api.webhooks(webhook_tag="t" * 300), 422).startswith("webhook_tag: ")


def test_a_10_mb_url_is_413_before_anything_is_stored(api, tag):
    response = api.register(webhook_tag=tag, envs=[{"slug": "prd", "url": "https://a.example.com/" + "x" * 10_000_000}])
    assert error_of(response, 413).startswith("request body: larger than the limit of")
    assert live_registrations(api, webhook_tag=tag) == []


def test_no_traceback_in_the_log_after_all_of_it(server):
    assert "Traceback" not in server.log_text()
