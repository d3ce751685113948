"""DELETE /webhooks/v1/registrations/{uuid}: soft delete, tombstones, and registering again."""
from __future__ import annotations

from conftest import data_of, error_of, live_registrations, registered
from ductape_local.store import Store


def test_delete_returns_the_registration_and_hides_it_from_lists(api, tag):
    prd = registered(api, webhook_tag=tag, envs=[{"slug": "prd", "url": "https://a.example.com/h", "auth": {"query": {"k": "v"}}},
                                {"slug": "stg", "url": "https://s.example.com/h"}])["prd"]
    removed = data_of(api.delete(prd["uuid"]))
    assert (removed["uuid"], removed["url"], removed["link"]) == (prd["uuid"], prd["url"], prd["link"])
    assert removed["auth"] == {"query": {"k": "********"}}
    assert [r["productEnv"] for r in live_registrations(api, webhook_tag=tag)] == ["stg"]
    assert error_of(api.delete(prd["uuid"]), 404) == f'uuid: no registration "{prd["uuid"]}"'


def test_delete_leaves_a_tombstone_that_the_store_still_finds(api, tag):
    prd = registered(api, webhook_tag=tag)["prd"]
    data_of(api.delete(prd["uuid"]))
    store = Store(api.server.db_path)
    tombstone = store.get_registration(prd["uuid"])
    assert tombstone is not None and tombstone.deleted_at is not None
    assert (tombstone.product, tombstone.access_tag, tombstone.webhook_tag, tombstone.product_env,
            tombstone.url, tombstone.method) == ("my-product", "stripe-payments", tag, "prd",
                                                 prd["url"], "POST")
    assert store.get_registration(prd["uuid"], include_deleted=False) is None
    assert store.mark_active(prd["uuid"]) is False


def test_registering_a_deleted_env_again_creates_a_new_registration(api, tag):
    first = registered(api, webhook_tag=tag)["prd"]
    data_of(api.delete(first["uuid"]))
    again = registered(api, webhook_tag=tag)["prd"]
    assert again["created"] is True and again["uuid"] != first["uuid"] and again["link"] != first["link"]
    assert [r["uuid"] for r in live_registrations(api, webhook_tag=tag)] == [again["uuid"]]


def test_mark_active_shows_in_the_api(api, tag):
    prd = registered(api, webhook_tag=tag)["prd"]
    assert Store(api.server.db_path).mark_active(prd["uuid"]) is True
    assert [r["active"] for r in live_registrations(api, webhook_tag=tag)] == [True]
    assert Store(api.server.db_path).mark_active("no-such-uuid") is False
