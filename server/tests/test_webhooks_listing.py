"""GET /webhooks/v1/webhooks: every webhook of the app with its live registrations, cursor pagination."""
from __future__ import annotations

import pytest

from conftest import Api, data_of, error_of, example_seed
from ductape_local.testing import LocalServer

HOOKS = 301


@pytest.fixture(scope="module")
def api():
    seed = example_seed()
    seed["apps"][0]["webhooks"] = [{"tag": f"event_{i:03d}", "name": f"Event {i}"} for i in range(HOOKS)]
    with LocalServer(seed) as server:
        yield Api(server)


def pages(api: Api, **params):
    cursor, collected = None, []
    while True:
        response = api.webhooks(**params, **({"cursor": cursor} if cursor else {}))
        body = response.json()
        assert response.status_code == 200, body
        collected.append(body["data"])
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            return collected


def test_default_page_is_50_and_following_cursors_covers_every_webhook_once(api):
    collected = pages(api)
    assert [len(page) for page in collected] == [50] * 6 + [1]
    tags = [w["tag"] for page in collected for w in page]
    assert tags == [f"event_{i:03d}" for i in range(HOOKS)]


def test_max_page_is_250_without_gaps_or_duplicates(api):
    collected = pages(api, limit=250)
    assert [len(page) for page in collected] == [250, 51]
    tags = [w["tag"] for page in collected for w in page]
    assert len(set(tags)) == HOOKS == len(tags)


def test_a_page_that_ends_exactly_at_the_last_webhook_has_a_null_cursor(api):
    first = api.webhooks(limit=HOOKS - 250).json()
    last = api.webhooks(limit=250, cursor=first["meta"]["next_cursor"]).json()
    assert len(last["data"]) == 250 and last["data"][-1]["tag"] == f"event_{HOOKS - 1:03d}"
    assert last["meta"]["next_cursor"] is None


def test_registrations_appear_under_their_webhook(api):
    data_of(api.register(webhook_tag="event_120", envs=[
        {"slug": "prd", "url": "https://a.example.com/h"}, {"slug": "dev", "url": "https://d.example.com/h"}]))
    by_tag = {w["tag"]: w for page in pages(api, limit=100) for w in page}
    assert {r["productEnv"] for r in by_tag["event_120"]["config"]} == {"prd", "dev"}
    assert by_tag["event_120"]["name"] == "Event 120"
    assert all(w["config"] == [] for tag, w in by_tag.items() if tag != "event_120")


def test_registrations_of_another_access_tag_are_not_listed(api):
    data_of(api.register(webhook_tag="event_007"))
    paystack = data_of(api.webhooks(access_tag="paystack-payments"))
    assert [w["tag"] for w in paystack] == ["charge_success", "transfer_success"]
    assert all(w["config"] == [] for w in paystack)


@pytest.mark.parametrize("limit", [0, 251, -1, "ten"])
def test_limit_out_of_range_is_422_naming_limit(api, limit):
    assert error_of(api.webhooks(limit=limit), 422).startswith("limit: ")


@pytest.mark.parametrize("cursor", ["garbage!", "eyJ4IjoxfQ"])
def test_bad_cursor_is_422_naming_cursor(api, cursor):
    assert error_of(api.webhooks(cursor=cursor), 422).startswith("cursor: not a cursor of this listing")


def test_cursor_of_another_app_is_rejected(api):
    cursor = api.webhooks(limit=1).json()["meta"]["next_cursor"]
    assert error_of(api.webhooks(access_tag="paystack-payments", cursor=cursor), 422).startswith("cursor:")


def test_missing_query_fields_are_422(api):
    response = api.call("GET", "/webhooks/v1/webhooks", params={"product": "my-product"})
    assert error_of(response, 422) == "access_tag: is required"


def test_listing_counts_as_a_read_not_a_write(api):
    api.server.reset_stats()
    api.webhooks()
    stats = api.server.stats()
    assert (stats["reads"], stats["writes"]) == (1, 0)
    assert stats["requests"] == {"GET /webhooks/v1/webhooks": 1}
