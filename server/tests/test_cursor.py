"""The one cursor codec (cursor.py): every text a client can send is a position of this listing or a 422
naming `cursor`, never a 500."""
from __future__ import annotations

import base64
import json

import pytest

from conftest import error_of
from ductape_local.cursor import BadCursor, decode_cursor, encode_cursor


def b64(raw: bytes | str) -> str:
    raw = raw.encode("utf-8") if isinstance(raw, str) else raw
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


HOSTILE = {
    "old seq form out of int64": b64("seq:99999999999999999999"),
    "number out of int64": b64(json.dumps({"k": "webhooks", "p": 99999999999999999999})),
    "negative out of int64": b64(json.dumps({"k": "webhooks", "p": -(2 ** 63) - 1})),
    "float": b64(json.dumps({"k": "webhooks", "p": 1e308})),
    "bad base64 characters": "not base64!",
    "bad base64 padding": "a",
    "base64 of invalid UTF-8": b64(b"\xff\xfe\xfd"),
    "base64 of a lone surrogate": b64('{"k":"webhooks","p":"\\ud800"}'),
    "json nested 5000 deep": b64(nested(5000)),
    "json object nested 5000 deep": b64('{"a":' * 5000 + "1" + "}" * 5000),
    "json nested 300 deep in p": b64('{"k":"webhooks","p":' + nested(300) + "}"),
    "wrong kind": encode_cursor("deliveries", 5),
    "no kind": b64(json.dumps({"p": ["stripe", "a"]})),
    "extra key": b64(json.dumps({"k": "webhooks", "p": ["stripe", "a"], "x": 1})),
    "not an object": b64(json.dumps(["webhooks", 1])),
    "bool position": b64(json.dumps({"k": "webhooks", "p": True})),
    "nested list": b64(json.dumps({"k": "webhooks", "p": [["stripe"], "a"]})),
    "empty list": b64(json.dumps({"k": "webhooks", "p": []})),
    "long text": "A" * 5000,
    "NUL": "abc\x00def",
    "non-ASCII": "é" * 10,
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_codec_refuses_every_hostile_text_with_bad_cursor(text):
    with pytest.raises(BadCursor) as raised:
        decode_cursor("webhooks", text)
    assert raised.value.field == "cursor" and raised.value.status == 422
    assert raised.value.message.startswith("cursor: ")
    assert len(raised.value.message) < 400


@pytest.mark.parametrize("position", [0, 2 ** 63 - 1, -(2 ** 63), "x", "é\u2603", ["stripe", "refund"], [1, "a"]])
def test_codec_round_trips(position):
    assert decode_cursor("webhooks", encode_cursor("webhooks", position)) == position
    with pytest.raises(BadCursor):
        decode_cursor("deliveries", encode_cursor("webhooks", position))


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_webhooks_listing_answers_422_naming_cursor(api, text):
    if "\x00" in text:
        pytest.skip("requests refuses a NUL in a URL")
    assert error_of(api.webhooks(cursor=text), 422).startswith("cursor: not a cursor of this listing")


def test_a_cursor_of_another_app_in_the_new_codec_is_refused(api):
    forged = encode_cursor("webhooks", ["paystack", "a"])
    assert error_of(api.webhooks(cursor=forged), 422).startswith("cursor:")
