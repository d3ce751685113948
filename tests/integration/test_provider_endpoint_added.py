"""Issue 11: an env registered while its app env had no provider registration endpoint, whose seed
gains one later, is sent to the provider on the next run, as the module documentation promises.

Three real playbook runs of ductape_webhook against one ductape-local database: the first with a seed
without the endpoint, then the same play twice after the server restarts with a seed that has it.
"""
from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ductape_local.testing import LocalServer
from playbook import Step, run_steps

PRODUCT = "my-product"
ACCESS_TAG = "stripe-payments"
WEBHOOK_TAG = "payment_succeeded"
KEY = "dtl_endpoint_added_key_7a1f"
OBSERVER_KEY = "dtl_endpoint_added_observer_2c9e"
PROVIDER_SECRET = "sk_live_endpoint_added_5d3b"
SEED = {
    "access_keys": [{"key": KEY, "products": [PRODUCT]}, {"key": OBSERVER_KEY, "products": [PRODUCT]}],
    "products": [{"tag": PRODUCT, "envs": ["prd", "stg"], "connections": [
        {"access_tag": ACCESS_TAG, "app": "stripe", "envs": {"prd": "live", "stg": "test"}}]}],
    "apps": [{"tag": "stripe", "webhooks": [{"tag": WEBHOOK_TAG, "name": "Payment succeeded"}]}],
}
TASK = {"ductape.webhooks.ductape_webhook": {
    "product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": WEBHOOK_TAG,
    "envs": [{"slug": "prd", "url": "https://api.example.com/hooks/paid",
              "auth": {"headers": {"Authorization": f"Bearer {PROVIDER_SECRET}"}}},
             {"slug": "stg", "url": "https://stg.example.com/hooks/paid"}]}}


class Provider:
    """A provider registration endpoint that records every call."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                length = int(self.headers.get("Content-Length") or 0)
                calls.append({"path": self.path, "authorization": self.headers.get("Authorization"),
                              "body": json.loads(self.rfile.read(length) or b"{}")})
                self.send_response(201)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "Provider":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def run_play(tmp_path: Path, server: LocalServer, name: str):
    workdir = tmp_path / name
    workdir.mkdir()
    return run_steps(workdir, server, OBSERVER_KEY, [Step(name, TASK)],
                     module_defaults={"group/ductape.webhooks.ductape": {"api_url": server.url, "access_key": KEY}},
                     state_query={"product": PRODUCT, "access_tag": ACCESS_TAG})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("endpoint-added")
    db = tmp_path / "ductape.db"
    found = {}
    with Provider() as provider:
        with LocalServer(SEED, db_path=db) as server:
            found["before"] = run_play(tmp_path, server, "before")
        seed = copy.deepcopy(SEED)
        seed["apps"][0]["webhooks"][0]["registration"] = {"live": {
            "url": provider.url + "/v1/webhook_endpoints", "method": "POST", "link_in": "body", "link_key": "url"}}
        with LocalServer(seed, db_path=db) as server:
            found["added"] = run_play(tmp_path, server, "added")
            found["again"] = run_play(tmp_path, server, "again")
        found["calls"] = list(provider.calls)
    return found


def envs_of(result: dict) -> dict:
    return {env["slug"]: env for env in result["envs"]}


def test_the_first_run_has_no_endpoint_to_call(runs):
    first = envs_of(runs["before"].result("before"))
    assert first["prd"]["action"] == "created" and first["prd"]["provider_registration"] is None


def test_once_the_endpoint_exists_the_next_run_sends_the_registration(runs):
    added = runs["added"]
    result = added.result("added")
    assert result["changed"] is True, added.describe("added")
    envs = envs_of(result)
    assert envs["prd"]["action"] == "updated"
    assert envs["prd"]["provider_registration"]["status"] == "registered"
    assert envs["stg"]["action"] == "unchanged"  # stg's app env still has no endpoint
    [call] = runs["calls"]
    assert call["authorization"] == f"Bearer {PROVIDER_SECRET}"
    assert call["body"]["url"] == envs["prd"]["link"]
    assert added.delta("added")["writes"] == 1


def test_then_it_is_unchanged_and_writes_nothing(runs):
    again = runs["again"]
    assert again.result("again")["changed"] is False, again.describe("again")
    assert again.delta("again")["writes"] == 0
    assert len(runs["calls"]) == 1


def test_no_output_holds_the_secret(runs):
    for name in ("before", "added", "again"):
        assert PROVIDER_SECRET not in runs[name].output and KEY not in runs[name].output
