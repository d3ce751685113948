"""ductape.webhooks.ductape_webhook_link in one real playbook against one real ductape-local --test-mode.

One ansible-playbook run (-vvv --diff): check mode (no link yet, nothing written), create, ask again
(same link, changed false, no write), url and method changes (same link, one write each, check mode of
a change returns the existing link and writes nothing), a link for an env that ductape_webhook
registered with auth (reused as is, its auth kept), every error path, and the access key never printed.
"""
from __future__ import annotations

import json

import pytest

from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import auth_matches
from ductape_local.testing import LocalServer
from playbook import Step, run_steps, unreachable_url

PRODUCT = "my-product"
ACCESS_TAG = "paystack-payments"
WEBHOOK_TAG = "charge_success"
MODULE_KEY = "dtl_link_module_key_2f8b41"
OBSERVER_KEY = "dtl_link_observer_key_93aa"
WRONG_KEY = "dtl_link_wrong_key_70c5"
PRD_SECRET = "sk_live_link_prd_secret_e14f"
SECRETS = (MODULE_KEY, WRONG_KEY, PRD_SECRET)

SEED = {
    "access_keys": [
        {"key": MODULE_KEY, "products": [PRODUCT]},
        {"key": OBSERVER_KEY, "products": [PRODUCT, "other-product"]},
    ],
    "products": [
        {"tag": PRODUCT, "envs": ["prd", "stg", "dev", "qas"],
         "connections": [{"access_tag": ACCESS_TAG, "app": "paystack",
                          "envs": {"prd": "live", "stg": "test", "dev": "test"}}]},
        {"tag": "other-product", "envs": ["prd"],
         "connections": [{"access_tag": ACCESS_TAG, "app": "paystack", "envs": {"prd": "live"}}]},
    ],
    "apps": [{"tag": "paystack", "webhooks": [
        {"tag": WEBHOOK_TAG, "name": "Charge success"},
        {"tag": "transfer_success", "name": "Transfer success"},
    ]}],
}

STG_URL = "https://stg.example.com/hooks/paystack/charge-success"
STG_URL_2 = "https://stg.example.com/hooks/v2/charge-success"
DEV_URL = "https://dev.example.com/hooks/paystack/charge-success"
PRD_URL = "https://api.example.com/hooks/paystack/charge-success"
PRD_URL_2 = "https://api.example.com/hooks/v2/charge-success"
PRD_AUTH = {"headers": {"Authorization": f"Bearer {PRD_SECRET}"}}


def link(env="stg", url=STG_URL, **options):
    return {"ductape.webhooks.ductape_webhook_link": {
        "product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": WEBHOOK_TAG, "env": env, "url": url, **options}}


UNREACHABLE = unreachable_url()

STEPS = [
    Step("check_create", link(), check_mode=True),
    Step("create", link()),
    Step("again", link()),
    Step("check_again", link(), check_mode=True),
    Step("check_url", link(url=STG_URL_2), check_mode=True),
    Step("url", link(url=STG_URL_2)),
    Step("method", link(url=STG_URL_2, method="PUT")),
    Step("method_again", link(url=STG_URL_2, method="PUT")),
    Step("other_env", link(env="dev", url=DEV_URL)),
    Step("other_webhook", link(url=STG_URL, webhook_tag="transfer_success")),
    # prd registered in full, with auth, by the other module: its link is reused and its auth kept.
    Step("full_registration", {"ductape.webhooks.ductape_webhook": {
        "product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": WEBHOOK_TAG,
        "envs": [{"slug": "prd", "url": PRD_URL, "auth": PRD_AUTH}]}}),
    Step("link_of_registered", link(env="prd", url=PRD_URL)),
    Step("link_moves_registered", link(env="prd", url=PRD_URL_2)),
    Step("unknown_product", link(product="no-such-product"), expect_failure=True),
    Step("forbidden_product", link(product="other-product"), expect_failure=True),
    Step("unknown_access_tag", link(access_tag="no-such-tag"), expect_failure=True),
    Step("unknown_webhook", link(webhook_tag="no_such_webhook"), expect_failure=True),
    Step("env_not_in_product", link(env="xyz"), expect_failure=True),
    Step("env_not_mapped", link(env="qas"), expect_failure=True),
    Step("bad_key", link(url=STG_URL, access_key=WRONG_KEY), expect_failure=True),
    Step("bad_url", link(url="not a url"), expect_failure=True),
    Step("bad_method", link(method="FETCH"), expect_failure=True),
    Step("unreachable", link(api_url=UNREACHABLE, retries=0), expect_failure=True),
]

MODULE_DEFAULTS = {"group/ductape.webhooks.ductape": {"api_url": "{{ server_url }}", "access_key": "{{ module_key }}"}}


@pytest.fixture(scope="module")
def server():
    with LocalServer(SEED) as running:
        yield running


@pytest.fixture(scope="module")
def run(server, tmp_path_factory):
    return run_steps(tmp_path_factory.mktemp("ductape-webhook-link"), server, OBSERVER_KEY, STEPS,
                     module_defaults=MODULE_DEFAULTS, state_query={"product": PRODUCT, "access_tag": ACCESS_TAG},
                     extra_vars={"module_key": MODULE_KEY}, verbosity=3, diff=True)


def stored(run, step: str, webhook_tag: str = WEBHOOK_TAG) -> dict[str, dict]:
    [found] = [w for w in run.state(step) if w["tag"] == webhook_tag]
    return {registration["productEnv"]: registration for registration in found["config"]}


def previous(step: str) -> str:
    names = [s.name for s in STEPS]
    return names[names.index(step) - 1]


def assert_no_write(run, step: str) -> None:
    assert run.delta(step)["writes"] == 0, f"expected no write\n{run.describe(step)}"


def assert_one_link_request(run, step: str) -> None:
    assert run.delta(step)["requests"].get("POST /webhooks/v1/generate-link") == 1, run.describe(step)
    assert run.delta(step)["writes"] == 1, run.describe(step)


def test_check_mode_before_creation_returns_no_link_and_writes_nothing(run):
    result = run.result("check_create")
    assert (result["changed"], result["action"], result["link"], result["uuid"]) == (True, "created", None, None), \
        run.describe("check_create")
    assert_no_write(run, "check_create")
    assert stored(run, "check_create") == {}


def test_create_returns_the_link_of_a_new_registration(run):
    result = run.result("create")
    assert (result["changed"], result["action"]) == (True, "created"), run.describe("create")
    assert_one_link_request(run, "create")
    registration = stored(run, "create")["stg"]
    assert (result["uuid"], result["link"]) == (registration["uuid"], registration["link"])
    assert result["link"].endswith("/webhooks/v1/process/" + result["uuid"])
    assert (registration["url"], registration["method"]) == (STG_URL, "POST")
    assert (result["url"], result["method"]) == (STG_URL, "POST")


def test_asking_again_returns_the_same_link_unchanged_without_a_write(run):
    created = run.result("create")
    for step in ("again", "check_again"):
        result = run.result(step)
        assert (result["changed"], result["action"]) == (False, "unchanged"), run.describe(step)
        assert (result["link"], result["uuid"]) == (created["link"], created["uuid"])
        assert_no_write(run, step)


def test_check_mode_of_a_url_change_returns_the_existing_link_and_writes_nothing(run):
    result = run.result("check_url")
    assert (result["changed"], result["action"]) == (True, "updated"), run.describe("check_url")
    assert result["link"] == run.result("create")["link"]
    assert_no_write(run, "check_url")
    assert stored(run, "check_url")["stg"]["url"] == STG_URL


def test_url_and_method_changes_update_and_keep_the_link(run):
    created = run.result("create")
    for step, (url, method) in (("url", (STG_URL_2, "POST")), ("method", (STG_URL_2, "PUT"))):
        result = run.result(step)
        assert (result["changed"], result["action"]) == (True, "updated"), run.describe(step)
        assert (result["link"], result["uuid"]) == (created["link"], created["uuid"]), "the link must be stable"
        assert_one_link_request(run, step)
        registration = stored(run, step)["stg"]
        assert (registration["url"], registration["method"], registration["uuid"]) == (url, method, created["uuid"])
    again = run.result("method_again")
    assert (again["changed"], again["link"]) == (False, created["link"])
    assert_no_write(run, "method_again")


def test_the_diff_shows_url_and_method_before_and_after(run):
    diff = run.result("url")["diff"]
    assert diff["before"]["stg"]["url"] == STG_URL and diff["after"]["stg"]["url"] == STG_URL_2, diff
    diff = run.result("method")["diff"]
    assert (diff["before"]["stg"]["method"], diff["after"]["stg"]["method"]) == ("POST", "PUT"), diff


def test_other_envs_and_webhooks_get_their_own_links_and_leave_this_one_alone(run):
    stg = run.result("create")
    dev, other = run.result("other_env"), run.result("other_webhook")
    assert dev["action"] == other["action"] == "created"
    assert len({stg["link"], dev["link"], other["link"]}) == 3
    assert stored(run, "other_webhook")["stg"] == stored(run, "method_again")["stg"]
    assert stored(run, "other_webhook", "transfer_success")["stg"]["uuid"] == other["uuid"]


def test_a_fully_registered_env_is_reused_and_keeps_its_auth(run):
    [registered] = run.result("full_registration")["envs"]
    result = run.result("link_of_registered")
    assert (result["changed"], result["action"]) == (False, "unchanged"), run.describe("link_of_registered")
    assert (result["uuid"], result["link"]) == (registered["uuid"], registered["link"])
    assert_no_write(run, "link_of_registered")
    moved = run.result("link_moves_registered")
    assert (moved["action"], moved["uuid"]) == ("updated", registered["uuid"]), run.describe("link_moves_registered")
    registration = stored(run, "link_moves_registered")["prd"]
    assert registration["url"] == PRD_URL_2
    assert auth_matches(PRD_AUTH, registration["auth_digest"]), "moving the link lost the stored auth"


@pytest.mark.parametrize("step, expected", [
    ("unknown_product", ["404", "unknown product", "no-such-product"]),
    ("forbidden_product", ["403", "not allowed", "other-product"]),
    ("unknown_access_tag", ["404", "unknown access tag", "no-such-tag"]),
    ("unknown_webhook", ["no_such_webhook"]),
    # Checked before any write: the listing says the product's envs.
    ("env_not_in_product", ['env: "xyz" is not an env of product "my-product" (its envs: ']),
    ("env_not_mapped", ["422", "qas", "not mapped"]),
    ("bad_key", ["401", "unknown access key"]),
    ("bad_url", ["url", "not a url"]),
    ("bad_method", ["method", "FETCH"]),
    ("unreachable", [UNREACHABLE]),
])
def test_every_error_path_fails_with_its_message(run, step, expected):
    result = run.result(step)
    assert result["failed"] is True
    for text in expected:
        assert text in result["msg"], f"{text!r} missing from the message of {step}:\n{result['msg']}"
    if step not in ("env_not_in_product", "env_not_mapped"):  # refused by the server: the POST counts
        assert_no_write(run, step)
    assert stored(run, step) == stored(run, previous(step)), f"{step} changed what is stored"


def test_nothing_printed_at_vvv_holds_the_access_key_or_an_auth_value(run):
    for secret in SECRETS:
        assert secret not in run.output, f"a secret ({secret[:8]}...) was printed"
    assert json.dumps(run.result("link_of_registered")).count("Bearer") == 0
