"""POST /webhooks/v1/generate-link: one env, upsert, the link is the answer, auth left as it was."""
from __future__ import annotations

from conftest import CLOSED_URL, data_of, error_of, live_registrations, registered


def test_generate_link_creates_then_reuses(api, tag):
    first = data_of(api.generate_link(webhook_tag=tag))
    assert (first["created"], first["changed"]) == (True, True)
    assert first["link"] == f"{api.server.url}/webhooks/v1/process/{first['uuid']}"
    assert (first["productEnv"], first["appEnv"], first["url"]) == ("dev", "test", f"{CLOSED_URL}/hook")
    again = data_of(api.generate_link(webhook_tag=tag))
    assert (again["created"], again["changed"]) == (False, False)
    assert again["link"] == first["link"]
    moved = data_of(api.generate_link(webhook_tag=tag, url=f"{CLOSED_URL}/other", method="PUT"))
    assert (moved["created"], moved["changed"], moved["link"]) == (False, True, first["link"])
    assert (moved["url"], moved["method"]) == (f"{CLOSED_URL}/other", "PUT")


def test_generate_link_and_register_share_one_registration_and_keep_its_auth(api, tag):
    auth = {"headers": {"X-Secret": "s3cr3t"}}
    prd = registered(api, webhook_tag=tag, envs=[{"slug": "dev", "url": f"{CLOSED_URL}/hook", "auth": auth}])["dev"]
    link = data_of(api.generate_link(webhook_tag=tag))
    assert (link["uuid"], link["changed"]) == (prd["uuid"], False)
    assert link["auth_digest"] == prd["auth_digest"] and link["auth"] == {"headers": {"X-Secret": "********"}}
    assert len(live_registrations(api, webhook_tag=tag)) == 1


def test_generate_link_validates_its_fields(api, tag):
    assert error_of(api.generate_link(webhook_tag=tag, env="qa1"), 422).startswith('env: "qa1" is not an env of product')
    assert error_of(api.generate_link(webhook_tag=tag, url="not a url"), 422) == (
        'url: must be an absolute http or https URL (got "not a url")')
    assert error_of(api.generate_link(webhook_tag=tag, method="FETCH"), 422) == (
        'method: must be one of GET, POST, PUT, PATCH, DELETE (got "FETCH")')
    assert error_of(api.generate_link(webhook_tag="nope"), 404) == (
        'webhook_tag: unknown webhook "nope" for access tag "stripe-payments"')
    assert live_registrations(api, webhook_tag=tag) == []
