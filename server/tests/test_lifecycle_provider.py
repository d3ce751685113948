"""A rotation in full mode registers the new link at the provider, as register does (contract L1);
its failure keeps the rotation and answers 502. Each test has its own webhook and provider path."""
from __future__ import annotations

import pytest
import requests

from conftest import Api, data_of, error_of, example_seed
from ductape_local.testing import LocalServer
from lifecycle_support import lifecycle, listed
from provider_endpoint import ProviderEndpoint

SECRET = "sk_test_lifecycle_provider"
AUTH = {"headers": {"Authorization": f"Bearer {SECRET}"}, "body": {"enabled_events": ["charge.refunded"]},
        "params": {"account": "acct_1"}}
TAGS = ("rotate_full", "rotate_failing", "rotate_stg")


@pytest.fixture(scope="module")
def provider():
    with ProviderEndpoint(status=201) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def server(provider):
    seed = example_seed()
    for tag in TAGS:
        seed["apps"][0]["webhooks"].append({"tag": tag, "name": tag, "registration": {"live": {
            "url": f"{provider.url}/{tag}/v1/accounts/{{account}}/webhook_endpoints", "method": "POST",
            "link_in": "body", "link_key": "endpoint.url"}}})
    with LocalServer(seed) as running:
        yield running


def register(api: Api, tag: str) -> dict:
    envs = [{"slug": "prd", "url": "https://api.example.com/refunds", "auth": AUTH},
            {"slug": "stg", "url": "https://stg.example.com/refunds"}]
    return {r["productEnv"]: r for r in data_of(api.register(webhook_tag=tag, envs=envs))["envs"]}


def test_rotate_registers_the_new_link_at_the_provider(api, provider):
    prd = register(api, "rotate_full")["prd"]
    assert len(provider.calls_under("/rotate_full/")) == 1
    rotated = data_of(lifecycle(api, prd["uuid"], "rotate", json={"grace_seconds": 60}))
    calls = provider.calls_under("/rotate_full/")
    assert len(calls) == 2
    call = calls[1]
    assert call.path == "/rotate_full/v1/accounts/acct_1/webhook_endpoints"
    assert call.headers["authorization"] == f"Bearer {SECRET}"
    assert call.body == {"enabled_events": ["charge.refunded"], "endpoint": {"url": rotated["link"]}}
    assert rotated["provider_registration"]["status"] == "registered"
    assert rotated["provider_registration"]["at"] >= prd["provider_registration"]["at"]
    assert SECRET not in requests.get(api.server.url + "/webhooks/v1/webhooks", headers=api.server.auth_headers,
                                      params={"product": "my-product", "access_tag": "stripe-payments"}).text
    # the registration is otherwise the same; a register after it changes nothing and calls nobody
    again = register(api, "rotate_full")["prd"]
    assert (again["uuid"], again["changed"]) == (rotated["uuid"], False)
    assert len(provider.calls_under("/rotate_full/")) == 2


def test_an_env_without_a_registration_endpoint_rotates_without_a_call(api, provider):
    stg = register(api, "rotate_stg")["stg"]
    calls = len(provider.calls)
    rotated = data_of(lifecycle(api, stg["uuid"], "rotate"))
    assert rotated["generation"] == 2 and rotated["provider_registration"] is None
    assert len(provider.calls) == calls


def test_a_provider_failure_keeps_the_rotation_and_answers_502(api, provider):
    prd = register(api, "rotate_failing")["prd"]
    provider.status_by_prefix["/rotate_failing/"] = 500
    try:
        message = error_of(lifecycle(api, prd["uuid"], "rotate"), 502)
    finally:
        provider.status_by_prefix.pop("/rotate_failing/")
    assert message == "provider registration failed for env prd: provider answered HTTP 500"
    stored = listed(api, "rotate_failing")
    assert stored["uuid"] != prd["uuid"] and stored["generation"] == 2
    assert stored["provider_registration"]["status"] == "failed"
    assert stored["provider_registration"]["http_status"] == 500
    assert provider.calls_under("/rotate_failing/")[-1].body["endpoint"]["url"] == stored["link"]
    assert SECRET not in message
    # the provider does not hold the new link: the next register sends it again
    again = register(api, "rotate_failing")["prd"]
    assert again["uuid"] == stored["uuid"] and again["provider_registration"]["status"] == "registered"
    assert provider.calls_under("/rotate_failing/")[-1].body["endpoint"]["url"] == stored["link"]
    assert SECRET not in api.server.log_path.read_text()
