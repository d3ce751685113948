"""GET /webhooks/v1/webhooks?webhook_tag=...: ductape-local's extension that lists one webhook only.

The client (plugins/module_utils/ductape_api.py) sends it when it looks for one webhook, so that a
ductape_webhook call reads one short page instead of every page of the app's listing.
"""
from __future__ import annotations

import pytest

from conftest import Api, data_of, error_of, example_seed
from ductape_local.testing import LocalServer

HOOKS = 260


@pytest.fixture(scope="module")
def api():
    seed = example_seed()
    seed["apps"][0]["webhooks"] = [{"tag": f"event_{i:03d}", "name": f"Event {i}"} for i in range(HOOKS)]
    with LocalServer(seed) as server:
        yield Api(server)


def test_the_filter_answers_only_that_webhook_with_its_registrations_on_one_page(api):
    data_of(api.register(webhook_tag="event_255", envs=[{"slug": "prd", "url": "https://a.example.com/h"}]))
    data_of(api.register(webhook_tag="event_001", envs=[{"slug": "prd", "url": "https://b.example.com/h"}]))
    body = api.webhooks(webhook_tag="event_255", limit=1).json()
    assert [w["tag"] for w in body["data"]] == ["event_255"]
    assert [r["url"] for r in body["data"][0]["config"]] == ["https://a.example.com/h"]
    assert body["meta"]["next_cursor"] is None


def test_an_unknown_tag_is_an_empty_page_and_without_the_filter_every_webhook_is_listed(api):
    body = api.webhooks(webhook_tag="no_such_event").json()
    assert body["data"] == [] and body["meta"]["next_cursor"] is None
    assert len(api.webhooks(limit=250).json()["data"]) == 250


def test_an_empty_filter_is_a_named_422(api):
    assert "webhook_tag" in error_of(api.webhooks(webhook_tag=""), 422)
