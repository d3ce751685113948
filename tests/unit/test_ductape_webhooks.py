"""The comparison logic: desired envs against the registrations the API listed, per env, no I/O."""
from __future__ import annotations

import json

import pytest

from ansible_collections.ductape.webhooks.plugins.module_utils import ductape_webhooks as logic
from ductape_local.auth_digest import auth_digest as server_auth_digest
from ductape_local.auth_digest import mask_auth as server_mask_auth

PRD_AUTH = {"headers": {"Authorization": "Bearer sk_live_plan_secret_1"}, "body": {"account": "acct_1"}}


def stored(slug: str, url: str, method: str = "POST", auth: dict | None = None, uuid: str | None = None) -> dict:
    """A REGISTRATION as the server lists it: auth masked, its digest computed by the server's code."""
    uuid = uuid or f"uuid-{slug}"
    return {"uuid": uuid, "productEnv": slug, "appEnv": "live" if slug == "prd" else "test", "url": url,
            "method": method, "link": f"https://webhooks.ductape.app/webhooks/v1/process/{uuid}", "active": False,
            "auth": server_mask_auth(auth), "auth_digest": server_auth_digest(auth), "provider_registration": None,
            "created_at": "2026-11-29T00:00:00.000Z", "updated_at": "2026-11-29T00:00:00.000Z"}


def wanted(slug: str, url: str | None = None, method: str | None = "POST", auth: dict | None = None) -> dict:
    """An env as Ansible hands it to the module: every suboption present, unset ones None."""
    full_auth = None
    if auth is not None:
        full_auth = {part: auth.get(part) for part in ("headers", "query", "body", "params")}
    return {"slug": slug, "url": url, "method": method, "auth": full_auth}


CURRENT = {
    "prd": stored("prd", "https://api.example.com/hook", auth=PRD_AUTH),
    "stg": stored("stg", "https://stg.example.com/hook", method="PUT"),
    "dev": stored("dev", "https://dev.example.com/hook"),
}


def actions(plan) -> dict[str, str]:
    return {slug: action for slug, action, _current, _desired in plan}


def test_registrations_by_env_keys_the_listing_by_product_env():
    webhook = {"tag": "order_created", "name": "Order created", "config": list(CURRENT.values())}
    assert logic.registrations_by_env(webhook) == CURRENT
    assert logic.registrations_by_env({"tag": "x", "name": "X", "config": []}) == {}
    assert logic.registrations_by_env(None) == {}


def test_nothing_registered_means_created():
    plan = logic.plan_registration({}, [wanted("prd", "https://api.example.com/hook")], "present")
    assert actions(plan) == {"prd": "created"}


def test_same_url_method_and_auth_digest_is_unchanged():
    envs = [wanted("prd", "https://api.example.com/hook", auth=PRD_AUTH),
            wanted("stg", "https://stg.example.com/hook", method="PUT"),
            wanted("dev", "https://dev.example.com/hook")]
    assert actions(logic.plan_registration(CURRENT, envs, "present")) == {
        "prd": "unchanged", "stg": "unchanged", "dev": "unchanged"}


def test_no_auth_equals_an_empty_auth_and_all_empty_parts():
    for auth in (None, {}, {"headers": {}, "query": None}):
        plan = logic.plan_registration(CURRENT, [wanted("dev", "https://dev.example.com/hook", auth=auth)], "present")
        assert actions(plan) == {"dev": "unchanged"}, auth


@pytest.mark.parametrize("change, env", [
    ("url", wanted("prd", "https://api.example.com/other-hook", auth=PRD_AUTH)),
    ("method", wanted("prd", "https://api.example.com/hook", method="PATCH", auth=PRD_AUTH)),
    ("auth header value", wanted("prd", "https://api.example.com/hook",
                                 auth={**PRD_AUTH, "headers": {"Authorization": "Bearer sk_live_plan_secret_2"}})),
    ("auth header name", wanted("prd", "https://api.example.com/hook",
                                auth={**PRD_AUTH, "headers": {"X-Authorization": "Bearer sk_live_plan_secret_1"}})),
    ("auth part moved", wanted("prd", "https://api.example.com/hook",
                               auth={"query": PRD_AUTH["headers"], "body": PRD_AUTH["body"]})),
    ("auth removed", wanted("prd", "https://api.example.com/hook")),
    ("auth body number", wanted("prd", "https://api.example.com/hook",
                                auth={**PRD_AUTH, "body": {"account": "acct_1", "retries": 1}})),
])
def test_any_difference_in_url_method_or_auth_is_an_update(change, env):
    plan = logic.plan_registration(CURRENT, [env], "present")
    assert actions(plan) == {"prd": "updated"}, change


def test_auth_added_where_none_was_stored_is_an_update():
    plan = logic.plan_registration(CURRENT, [wanted("dev", "https://dev.example.com/hook",
                                                    auth={"query": {"token": "t"}})], "present")
    assert actions(plan) == {"dev": "updated"}


def test_method_defaults_to_post():
    plan = logic.plan_registration(CURRENT, [wanted("dev", "https://dev.example.com/hook", method=None)], "present")
    assert actions(plan) == {"dev": "unchanged"}
    plan = logic.plan_registration(CURRENT, [wanted("stg", "https://stg.example.com/hook", method=None)], "present")
    assert actions(plan) == {"stg": "updated"}, "stored PUT, default POST"


def test_envs_not_listed_are_left_out_of_the_plan():
    plan = logic.plan_registration(CURRENT, [wanted("stg", "https://stg.example.com/new")], "present")
    assert [step[0] for step in plan] == ["stg"]
    plan = logic.plan_registration(CURRENT, [{"slug": "dev", "url": None, "method": "POST", "auth": None}], "absent")
    assert [step[0] for step in plan] == ["dev"]


def test_the_plan_keeps_the_order_given():
    envs = [wanted(slug, f"https://{slug}.example.com/x") for slug in ("dev", "qas", "prd", "stg")]
    assert [step[0] for step in logic.plan_registration(CURRENT, envs, "present")] == ["dev", "qas", "prd", "stg"]


def test_the_desired_registration_is_what_the_register_request_sends():
    [(_slug, action, current, desired)] = logic.plan_registration(
        {}, [wanted("qas", "https://qas.example.com/h", method="DELETE", auth={"params": {"id": 3}})], "present")
    assert (action, current) == ("created", None)
    assert desired["slug"] == "qas" and desired["url"] == "https://qas.example.com/h" and desired["method"] == "DELETE"
    assert server_auth_digest(desired["auth"]) == server_auth_digest({"params": {"id": 3}})


def test_absent_deletes_registered_envs_and_reports_the_others_absent():
    envs = [{"slug": slug, "url": None, "method": "POST", "auth": None} for slug in ("stg", "qas")]
    plan = logic.plan_registration(CURRENT, envs, "absent")
    assert actions(plan) == {"stg": "deleted", "qas": "absent"}
    current = plan[0][2]
    assert current["uuid"] == "uuid-stg", "the delete needs the registration's uuid"


def test_check_envs_names_every_problem_before_anything_is_written():
    problems = logic.check_envs([
        wanted("prd", "https://api.example.com/hook"),
        wanted("stg", None),
        wanted("dev", "ftp://dev.example.com/hook"),
        wanted("prd", "https://api.example.com/again"),
    ], "present")
    text = "; ".join(problems)
    assert "envs[1].url" in text and "stg" in text
    assert "envs[2].url" in text and "ftp://dev.example.com/hook" in text
    assert "envs[3].slug" in text and "twice" in text
    assert logic.check_envs([wanted("prd", "https://api.example.com/hook")], "present") == []
    assert logic.check_envs([{"slug": "prd", "url": None, "method": "POST", "auth": None}], "absent") == []
    assert logic.check_envs([], "present"), "an empty envs list is refused"


def test_the_diff_shows_written_envs_only_with_every_auth_value_masked():
    new_auth = {**PRD_AUTH, "headers": {"Authorization": "Bearer sk_live_plan_secret_2"}}
    envs = [wanted("prd", "https://api.example.com/hook", auth=new_auth),
            wanted("stg", "https://stg.example.com/hook", method="PUT"),
            wanted("dev", "https://dev.example.com/moved"),
            wanted("qas", "https://qas.example.com/new", auth={"query": {"token": "tok_plan_secret_3"}})]
    diff = logic.registration_diff(logic.plan_registration(CURRENT, envs, "present"))
    assert set(diff["before"]) == {"prd", "dev"}, "unchanged stg is not in the diff; created qas has no before"
    assert set(diff["after"]) == {"prd", "dev", "qas"}
    assert diff["before"]["dev"]["url"] == "https://dev.example.com/hook"
    assert diff["after"]["dev"]["url"] == "https://dev.example.com/moved"
    # Only the auth value changed in prd: the diff must still show a difference, without the values.
    assert diff["before"]["prd"] != diff["after"]["prd"]
    assert set(diff["after"]["qas"]["auth"]["query"]) == {"token"}
    text = json.dumps(diff)
    for secret in ("sk_live_plan_secret_1", "sk_live_plan_secret_2", "tok_plan_secret_3", "acct_1"):
        assert secret not in text


def test_the_diff_of_a_removal_has_no_after():
    envs = [{"slug": "stg", "url": None, "method": "POST", "auth": None}]
    diff = logic.registration_diff(logic.plan_registration(CURRENT, envs, "absent"))
    assert set(diff["before"]) == {"stg"} and diff["after"] == {}


def test_an_env_result_never_carries_auth():
    result = logic.env_result("prd", "unchanged", CURRENT["prd"])
    assert set(result) == {"slug", "action", "uuid", "link", "url", "method", "provider_registration"}
    assert result["uuid"] == "uuid-prd" and result["link"].endswith("/uuid-prd")


@pytest.mark.parametrize("status", ["failed", "pending"])
def test_a_provider_that_does_not_hold_the_link_makes_the_env_an_update(status):
    # url, method and auth all match: only the provider's status says that something is left to do.
    current = dict(CURRENT["dev"], provider_registration={"status": status, "http_status": None,
                                                          "at": "2026-11-29T00:00:00.000Z", "error": None})
    plan = logic.plan_registration({"dev": current}, [wanted("dev", "https://dev.example.com/hook")], "present")
    assert actions(plan) == {"dev": "updated"}


def test_a_registered_provider_or_none_at_all_leaves_the_env_unchanged():
    registered = dict(CURRENT["dev"], provider_registration={"status": "registered", "http_status": 200,
                                                             "at": "2026-11-29T00:00:00.000Z", "error": None})
    envs = [wanted("dev", "https://dev.example.com/hook")]
    assert actions(logic.plan_registration({"dev": registered}, envs, "present")) == {"dev": "unchanged"}
    assert actions(logic.plan_registration({"dev": CURRENT["dev"]}, envs, "present")) == {"dev": "unchanged"}


@pytest.mark.parametrize("auth, field, kind", [
    ("Bearer sk_live_typo_secret_1", "envs[0].auth:", "a string"),
    (["sk_live_typo_secret_1"], "envs[0].auth:", "a list"),
    ({"headers": "X-Api-Key: sk_live_typo_secret_1"}, "envs[0].auth.headers:", "a string"),
    ({"body": 12345678}, "envs[0].auth.body:", "a number"),
    ({"cookies": {"session": "sk_live_typo_secret_1"}}, 'envs[0].auth: unknown part "cookies"', None),
])
def test_auth_of_the_wrong_shape_is_refused_naming_the_part_but_not_the_value(auth, field, kind):
    problems = logic.check_envs([{"slug": "prd", "url": "https://api.example.com/hook", "auth": auth}], "present")
    assert len(problems) == 1, problems
    assert problems[0].startswith(field), problems
    assert '"prd"' in problems[0]
    if kind:
        assert kind in problems[0]
    assert "sk_live_typo_secret_1" not in problems[0] and "12345678" not in problems[0]


def test_auth_with_known_parts_or_none_passes_the_shape_check():
    for auth in (None, {}, {"headers": {"Authorization": "x"}, "query": None}, PRD_AUTH):
        assert logic.check_envs([{"slug": "prd", "url": "https://api.example.com/hook", "auth": auth}],
                                "present") == []
