"""POST /webhooks/v1/register: upsert per env, changed/created, masking, digest, link stability."""
from __future__ import annotations

import hashlib
import hmac
import json
import re

from conftest import data_of, error_of, live_registrations, registered


def salted(salt: str, message: bytes) -> str:
    return f"hmac-sha256:{salt}:" + hmac.new(salt.encode("ascii"), message, hashlib.sha256).hexdigest()


def expected_digest(auth: dict, digest: str) -> str:
    """The digest the contract (C1) gives `auth` with the salt that `digest` carries; written out from
    the contract on purpose, so that the server's implementation is checked against it."""
    match = re.fullmatch(r"hmac-sha256:([0-9a-f]{32}):[0-9a-f]{64}", digest)
    assert match, digest
    canonical = {part: auth.get(part) or {} for part in ("body", "headers", "params", "query")}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return salted(match.group(1), text.encode("utf-8"))


def expected_url_digest(url: str, auth_digest: str) -> str:
    return salted(auth_digest.split(":")[1], url.encode("utf-8"))


AUTH = {"headers": {"Stripe-Signature-Secret": "whsec_ünïcode"}, "query": {"account": "acct_1"}, "body": None}


def test_register_creates_each_env_and_answers_the_contract_shape(api, tag):
    answer = data_of(api.register(webhook_tag=tag, envs=[
        {"slug": "prd", "url": "https://api.example.com/hook", "method": "POST", "auth": AUTH},
        {"slug": "stg", "url": "https://stg.example.com/hook", "method": "PUT"},
    ]))
    assert (answer["product"], answer["access_tag"], answer["webhook_tag"]) == ("my-product", "stripe-payments", tag)
    prd, stg = answer["envs"]
    assert set(prd) == {"uuid", "productEnv", "appEnv", "url", "method", "link", "active", "auth", "auth_digest",
                        "url_digest", "provider_registration", "created_at", "updated_at", "changed", "created",
                        "state", "generation", "link_created_at", "previous_link"}
    assert (prd["productEnv"], prd["appEnv"], prd["method"]) == ("prd", "live", "POST")
    assert (stg["productEnv"], stg["appEnv"], stg["method"]) == ("stg", "test", "PUT")
    assert prd["created"] and prd["changed"] and stg["created"] and stg["changed"]
    assert prd["active"] is False and prd["provider_registration"] is None
    assert prd["link"] == f"{api.server.url}/webhooks/v1/process/{prd['uuid']}"
    assert prd["auth"] == {"headers": {"Stripe-Signature-Secret": "********"}, "query": {"account": "********"}}
    assert prd["auth_digest"] == expected_digest(AUTH, prd["auth_digest"])
    assert stg["auth"] == {} and stg["auth_digest"] == expected_digest({}, stg["auth_digest"])
    assert prd["url_digest"] == expected_url_digest("https://api.example.com/hook", prd["auth_digest"])
    assert prd["uuid"] != stg["uuid"]


def test_the_same_register_again_changes_nothing_and_writes_nothing(api, tag):
    envs = [{"slug": "prd", "url": "https://api.example.com/hook", "method": "POST", "auth": AUTH}]
    first = registered(api, webhook_tag=tag, envs=envs)["prd"]
    again = registered(api, webhook_tag=tag, envs=envs)["prd"]
    assert again["changed"] is False and again["created"] is False
    assert again == dict(first, changed=False, created=False)


def test_changing_url_method_or_auth_updates_in_place_and_keeps_the_link(api, tag):
    base = {"slug": "prd", "url": "https://api.example.com/hook", "method": "POST", "auth": AUTH}
    first = registered(api, webhook_tag=tag, envs=[base])["prd"]
    variants = [
        dict(base, url="https://api.example.com/other"),
        dict(base, url="https://api.example.com/other", method="PATCH"),
        dict(base, url="https://api.example.com/other", method="PATCH",
             auth={"headers": {"Stripe-Signature-Secret": "rotated"}}),
    ]
    for variant in variants:
        now = registered(api, webhook_tag=tag, envs=[variant])["prd"]
        assert now["changed"] is True and now["created"] is False
        assert (now["uuid"], now["link"], now["created_at"]) == (first["uuid"], first["link"], first["created_at"])
        assert (now["url"], now["method"]) == (variant["url"], variant["method"])
        assert now["auth_digest"] == expected_digest(variant["auth"], now["auth_digest"])
        assert now["url_digest"] == expected_url_digest(variant["url"], now["auth_digest"])
    assert len(live_registrations(api, webhook_tag=tag)) == 1


def test_one_request_reports_changed_per_env(api, tag):
    registered(api, webhook_tag=tag, envs=[{"slug": "prd", "url": "https://a.example.com/h"}])
    both = registered(api, webhook_tag=tag, envs=[{"slug": "prd", "url": "https://a.example.com/h"},
                                 {"slug": "dev", "url": "https://d.example.com/h"}])
    assert (both["prd"]["changed"], both["prd"]["created"]) == (False, False)
    assert (both["dev"]["changed"], both["dev"]["created"]) == (True, True)


def test_method_defaults_to_post_and_absent_auth_parts_digest_as_empty(api, tag):
    prd = registered(api, webhook_tag=tag, envs=[{"slug": "prd", "url": "https://a.example.com/h",
                                 "auth": {"headers": {}, "query": None}}])["prd"]
    assert prd["method"] == "POST"
    assert prd["auth_digest"] == expected_digest({}, prd["auth_digest"])


def test_an_invalid_env_means_nothing_is_written(api, tag):
    errors = error_of(api.register(webhook_tag=tag, envs=[{"slug": "prd", "url": "https://a.example.com/h"},
                                         {"slug": "prd", "url": "https://b.example.com/h"}]), 422)
    assert errors == 'envs[1].slug: duplicate env "prd" in one request'
    errors = error_of(api.register(webhook_tag=tag, envs=[{"slug": "prd", "url": "https://a.example.com/h"},
                                         {"slug": "qa1", "url": "https://b.example.com/h"}]), 422)
    assert errors.startswith('envs[1].slug: "qa1" is not an env of product "my-product"')
    assert live_registrations(api, webhook_tag=tag) == []


def test_register_with_x_access_token_header(api, tag):
    response = api.call("POST", "/webhooks/v1/register", key=None,
                        headers={"x-access-token": api.server.access_key},
                        json={"product": "my-product", "access_tag": "stripe-payments",
                              "webhook_tag": tag,
                              "envs": [{"slug": "stg", "url": "https://a.example.com/h"}]})
    assert data_of(response)["envs"][0]["created"] is True


def test_the_listing_keeps_the_order_in_which_envs_were_registered(api, case_tags):
    # One register writes all its envs in one transaction, with one timestamp: the order must not
    # then depend on the random uuids.
    for order in (["dev", "prd", "stg"], ["stg", "dev", "prd"], ["prd", "stg", "dev"]):
        tag = next(case_tags)
        registered(api, webhook_tag=tag, envs=[{"slug": env, "url": f"https://{env}.example.com/h"} for env in order])
        assert [r["productEnv"] for r in live_registrations(api, webhook_tag=tag)] == order
