"""Full registration calls the provider's registration endpoint declared in the seed.

One provider endpoint and one server serve the module; each test uses its own webhook, whose
registration endpoint lives under its own path at the provider (/<webhook tag>/...).
"""
from __future__ import annotations

import pytest

from conftest import CLOSED_URL, Api, data_of, error_of, example_seed, live_registrations
from ductape_local.testing import LocalServer
from provider_endpoint import ProviderEndpoint

AUTH = {"headers": {"Authorization": "Bearer sk_test_provider"},
        "query": {"api_version": "2024-06-20"},
        "body": {"enabled_events": ["charge.refunded"], "endpoint": {"description": "ductape"}},
        "params": {"account": "acct 1"}}
LINK_PLACES = {  # webhook tag -> (link_in, link_key)
    "refund_body": ("body", "endpoint.url"),
    "refund_query": ("query", "callback"),
    "refund_headers": ("headers", "X-Callback-Url"),
    "refund_unchanged": ("body", "url"),
    "refund_link_mode": ("body", "url"),
    "refund_failing": ("body", "url"),
}


def seed_with_endpoints(provider_url: str, unreachable: str = CLOSED_URL) -> dict:
    seed = example_seed()
    for tag, (link_in, link_key) in [*LINK_PLACES.items(), ("refund_unreachable", ("body", "url"))]:
        base = unreachable if tag == "refund_unreachable" else provider_url
        seed["apps"][0]["webhooks"].append({"tag": tag, "name": tag, "registration": {"live": {
            "url": f"{base}/{tag}/v1/accounts/{{account}}/webhook_endpoints", "method": "POST",
            "link_in": link_in, "link_key": link_key}}})
    return seed


@pytest.fixture(scope="module")
def provider():
    with ProviderEndpoint(status=201) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def api(provider, closed_url):
    with LocalServer(seed_with_endpoints(provider.url, closed_url)) as server:
        yield Api(server)


def register(api: Api, tag: str, envs=None):
    envs = envs or [{"slug": "prd", "url": "https://api.example.com/refunds", "auth": AUTH},
                    {"slug": "stg", "url": "https://stg.example.com/refunds"}]
    return api.register(webhook_tag=tag, envs=envs)


def test_created_registration_is_sent_to_the_provider_with_auth_and_link(api, provider):
    answer = {r["productEnv"]: r for r in data_of(register(api, "refund_body"))["envs"]}
    prd, stg = answer["prd"], answer["stg"]
    [call] = provider.calls_under("/refund_body/")  # stg maps to app env "test", which has no endpoint
    assert call.method == "POST"
    assert call.path == "/refund_body/v1/accounts/acct%201/webhook_endpoints"
    assert call.headers["authorization"] == "Bearer sk_test_provider"
    assert call.query == {"api_version": ["2024-06-20"]}
    assert call.body == {"enabled_events": ["charge.refunded"],
                         "endpoint": {"description": "ductape", "url": prd["link"]}}
    assert prd["provider_registration"]["status"] == "registered"
    assert prd["provider_registration"]["http_status"] == 201
    assert prd["provider_registration"]["error"] is None and prd["provider_registration"]["at"]
    assert stg["provider_registration"] is None


def test_unchanged_register_makes_no_provider_call_and_a_change_makes_one(api, provider):
    data_of(register(api, "refund_unchanged"))
    again = {r["productEnv"]: r for r in data_of(register(api, "refund_unchanged"))["envs"]}
    assert again["prd"]["changed"] is False and len(provider.calls_under("/refund_unchanged/")) == 1
    rotated = dict(AUTH, headers={"Authorization": "Bearer sk_test_rotated"})
    data_of(register(api, "refund_unchanged",
                     envs=[{"slug": "prd", "url": "https://api.example.com/refunds", "auth": rotated}]))
    calls = provider.calls_under("/refund_unchanged/")
    assert len(calls) == 2
    assert calls[1].headers["authorization"] == "Bearer sk_test_rotated"
    assert calls[1].body["url"] == again["prd"]["link"]


def test_generate_link_never_calls_the_provider(api, provider):
    link = data_of(api.generate_link(webhook_tag="refund_link_mode", env="prd"))
    assert provider.calls_under("/refund_link_mode/") == []
    # The env has a registration endpoint and the provider does not hold the link: not yet sent.
    assert link["provider_registration"] == {"status": "unregistered", "http_status": None, "at": None, "error": None}


@pytest.mark.parametrize("tag", ["refund_query", "refund_headers"])
def test_link_goes_where_the_definition_says(api, provider, tag):
    prd = data_of(register(api, tag))["envs"][0]
    [call] = provider.calls_under(f"/{tag}/")
    if tag == "refund_query":
        assert call.query == {"api_version": ["2024-06-20"], "callback": [prd["link"]]}
    else:
        assert call.headers["x-callback-url"] == prd["link"]
    assert call.body == AUTH["body"]


def test_provider_failure_keeps_the_registration_marks_it_failed_and_answers_502(api, provider):
    provider.status_by_prefix["/refund_failing/"] = 500
    errors = error_of(register(api, "refund_failing"), 502)
    assert errors == "provider registration failed for env prd: provider answered HTTP 500"
    stored = {r["productEnv"]: r for r in live_registrations(api, webhook_tag="refund_failing")}
    assert set(stored) == {"prd", "stg"}
    assert stored["prd"]["provider_registration"]["status"] == "failed"
    assert stored["prd"]["provider_registration"]["http_status"] == 500
    assert stored["prd"]["provider_registration"]["error"] == "provider answered HTTP 500"
    # The provider does not hold the link yet, so the same register tries again.
    provider.status_by_prefix["/refund_failing/"] = 200
    retried = {r["productEnv"]: r for r in data_of(register(api, "refund_failing"))["envs"]}
    assert retried["prd"]["uuid"] == stored["prd"]["uuid"]
    assert retried["prd"]["provider_registration"]["status"] == "registered"
    assert retried["prd"]["changed"] is True and retried["stg"]["changed"] is False
    assert len(provider.calls_under("/refund_failing/")) == 2


def test_unreachable_provider_is_a_502_without_the_url_or_secrets(api):
    errors = error_of(register(api, "refund_unreachable"), 502)
    assert errors.startswith("provider registration failed for env prd: could not reach the provider (")
    assert "sk_test_provider" not in errors and "127.0.0.1" not in errors
    [prd] = [r for r in live_registrations(api, webhook_tag="refund_unreachable") if r["productEnv"] == "prd"]
    assert prd["provider_registration"]["status"] == "failed"
    assert prd["provider_registration"]["http_status"] is None


def test_a_provider_call_under_way_reads_pending_and_its_failure_failed(closed_url):
    """The status is committed as pending before the provider is called, so a server that dies during
    the call leaves a status that says the provider's answer is missing (null would say: no endpoint)."""
    import threading

    # The provider holds the call until the test has read the status, then refuses it. The server waits
    # for it longer than the hold can last (provider_endpoint's 120 s), so the release, not the clock,
    # decides when the call ends: the default 5 s timeout could expire while a loaded machine reads.
    with ProviderEndpoint(status=500) as provider:
        held = provider.hold("/refund_body/")
        with LocalServer(seed_with_endpoints(provider.url, closed_url), provider_timeout=600) as server:
            api = Api(server)
            answers = []
            call = threading.Thread(target=lambda: answers.append(register(api, "refund_body", envs=[
                {"slug": "prd", "url": "https://api.example.com/refunds", "auth": AUTH}])))
            call.start()
            try:
                assert held.arrived.wait(60), "the server never called the provider"
                [during] = live_registrations(api, webhook_tag="refund_body")
            finally:
                held.release()
                call.join(120)
            assert during["provider_registration"]["status"] == "pending", during
            assert during["provider_registration"]["http_status"] is None, during
            assert answers[0].status_code == 502, answers[0].text
            assert error_of(answers[0], 502) == "provider registration failed for env prd: provider answered HTTP 500"
            [stored] = live_registrations(api, webhook_tag="refund_body")
            assert stored["provider_registration"]["status"] == "failed", stored
            assert stored["provider_registration"]["http_status"] == 500, stored


def test_an_endpoint_added_to_the_seed_later_shows_the_registration_as_not_sent(provider, tmp_path):
    """Issue 11: a registration made while its app env had no provider registration endpoint showed
    provider_registration null ("no endpoint") forever once the seed gained one; it must read as not
    yet sent to the provider, and the next register must send it."""
    seed = example_seed()
    seed["apps"][0]["webhooks"].append({"tag": "added_later", "name": "added later"})
    db = tmp_path / "ductape.db"
    envs = [{"slug": "prd", "url": "https://api.example.com/later", "auth": AUTH},
            {"slug": "stg", "url": "https://stg.example.com/later"}]
    with LocalServer(seed, db_path=db) as server:
        first = {r["productEnv"]: r for r in data_of(Api(server).register(webhook_tag="added_later", envs=envs))["envs"]}
        assert first["prd"]["provider_registration"] is None
    seed["apps"][0]["webhooks"][-1]["registration"] = {"live": {
        "url": f"{provider.url}/added_later/v1/accounts/{{account}}/webhook_endpoints", "method": "POST",
        "link_in": "body", "link_key": "url"}}
    with LocalServer(seed, db_path=db) as server:
        api = Api(server)
        listed = {r["productEnv"]: r for r in live_registrations(api, webhook_tag="added_later")}
        assert listed["prd"]["provider_registration"]["status"] == "unregistered"
        assert listed["stg"]["provider_registration"] is None  # stg's app env ("test") still has no endpoint
        before = len([c for c in provider.calls if c.path.startswith("/added_later/")])
        again = {r["productEnv"]: r for r in data_of(api.register(webhook_tag="added_later", envs=envs))["envs"]}
        assert again["prd"]["provider_registration"]["status"] == "registered" and again["prd"]["changed"]
        assert not again["stg"]["changed"]
        assert len([c for c in provider.calls if c.path.startswith("/added_later/")]) == before + 1
