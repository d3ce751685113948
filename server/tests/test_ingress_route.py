"""The `process_event` route that FastAPI declares answers exactly what the application's direct
dispatch of provider events (ingress.EventIngress) answers: same status, headers and body for 202,
404, 410 and 413, whichever of the two paths a request takes. Driven in-process over ASGI."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from conftest import CLOSED_URL

from ductape_local.app import create_app
from ductape_local.cli import example_seed
from ductape_local.config import ServerConfig
from ductape_local.store import RegistrationKey, UpsertRequest

PREFIX = "/webhooks/v1/process/"
MAX_BODY = 64


@pytest.fixture
def app(tmp_path):
    seed = tmp_path / "seed.yml"
    seed.write_text(example_seed(), encoding="utf-8")
    config = ServerConfig(db_path=tmp_path / "relay.db", public_url="http://relay.test", seed_path=seed,
                          max_body=MAX_BODY)
    application = create_app(config)
    store = application.state.store
    live, gone = (outcome.registration for outcome in store.upsert_registrations([
        UpsertRequest(RegistrationKey("my-product", "stripe-payments", "payment_succeeded", "dev"),
                      "test", f"{CLOSED_URL}/in", "POST", None),
        UpsertRequest(RegistrationKey("my-product", "stripe-payments", "payment_succeeded", "prd"),
                      "live", f"{CLOSED_URL}/gone", "POST", None),
    ]))
    store.soft_delete(gone.uuid)
    application.state.links = {"live": live.uuid, "gone": gone.uuid}
    yield application
    application.state.middleware.group_commit.stop(5.0)


def call(app, path: str, body: bytes, dispatch: bool) -> tuple[int, list, bytes]:
    async def run():
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", b"relay.test"), (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80), "state": {},
        }
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        sent = []

        async def receive():
            if messages:
                return messages.pop(0)
            await asyncio.Event().wait()

        async def send(message):
            sent.append(message)

        handler = app.event_handler
        if not dispatch:
            app.event_handler = None
        try:
            await app(scope, receive, send)
        finally:
            app.event_handler = handler
        start, answer = sent
        return start["status"], start["headers"], answer["body"]

    return asyncio.run(run())


@pytest.mark.parametrize("case", ["accepted", "unknown", "gone", "too large"])
def test_route_and_direct_dispatch_answer_the_same(app, case):
    links = app.state.links
    path, body = {
        "accepted": (PREFIX + links["live"], b'{"n": 1}'),
        "unknown": (PREFIX + "no-such-link", b"{}"),
        "gone": (PREFIX + links["gone"], b"{}"),
        "too large": (PREFIX + links["live"], b"x" * (MAX_BODY + 1)),
    }[case]
    direct = call(app, path, body, dispatch=True)
    routed = call(app, path, body, dispatch=False)
    assert direct[0] == routed[0] == {"accepted": 202, "unknown": 404, "gone": 410, "too large": 413}[case]
    assert direct[1] == routed[1]
    if case == "accepted":
        pattern = rb'\{"status":true,"meta":\{\},"data":\{"event_id":"evt_[0-9a-f]{32}"\}\}'
        assert re.fullmatch(pattern, direct[2]) and re.fullmatch(pattern, routed[2])
        assert json.loads(direct[2]) != json.loads(routed[2])  # two events, two ids
    else:
        assert direct[2] == routed[2]
