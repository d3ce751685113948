"""The collection against ductape-local --compat ductape: a server that answers only what the hosted
Ductape is known to answer (no auth digest, no link in the rows, the link as a string on another host,
one page, a session token, 404 for every extension).

One ansible-playbook run (-vvv --diff) over a product named as Ductape names one (acme_space:shop,
ductape:paystack, envs snd and prd), with the token exchange and the x-access-token header: converge,
check mode, diff, a second run under each auth_unknown choice, links, info, and the extensions that
this server does not offer. The access key, the session tokens and the auth secret are never printed.
"""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
import requests

from ductape_local.testing import LocalServer
from playbook import Step, run_steps

PRODUCT = "acme_space:shop"
ACCESS_TAG = "ductape:paystack"
WEBHOOK_TAG = "charge_success"
KEY = "dtl_compat_integration_key_61d0"
SECRET = "sk_live_compat_integration_secret_93"
INGRESS = "https://webhooks.ductape.test"
SEED = {
    "access_keys": [{"key": KEY, "products": [PRODUCT]}],
    "products": [{"tag": PRODUCT, "envs": ["snd", "prd"],
                  "connections": [{"access_tag": ACCESS_TAG, "app": "paystack", "envs": {"snd": "test", "prd": "live"}}]}],
    "apps": [{"tag": "paystack", "webhooks": [{"tag": WEBHOOK_TAG, "name": "Charge success"},
                                              {"tag": "transfer_success", "name": "Transfer success"}]}],
}
SND_URL = "https://snd.example.com/hooks/paystack/charge-success"
SND_URL_2 = "https://snd.example.com/hooks/v2/charge-success"
PRD_URL = "https://api.example.com/hooks/paystack/charge-success"
AUTH = {"headers": {"Authorization": f"Bearer {SECRET}"}}


def webhook(url=SND_URL, **options):
    return {"ductape.webhooks.ductape_webhook": {
        "product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": WEBHOOK_TAG,
        "envs": [{"slug": "snd", "url": url, "auth": AUTH}], **options}}


def link(env="prd", url=PRD_URL, **options):
    return {"ductape.webhooks.ductape_webhook_link": {
        "product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": WEBHOOK_TAG, "env": env, "url": url, **options}}


def info(**options):
    return {"ductape.webhooks.ductape_webhook_info": {"product": PRODUCT, "access_tag": ACCESS_TAG, **options}}


STEPS = [
    Step("check_create", webhook(), check_mode=True, diff=True),
    Step("create", webhook()),
    Step("again_changed", webhook()),
    Step("check_again_changed", webhook(), check_mode=True, diff=True),
    Step("again_send", webhook(auth_unknown="send")),
    Step("again_send_2", webhook(auth_unknown="send"), diff=True),
    Step("check_send", webhook(auth_unknown="send"), check_mode=True),
    Step("url_send", webhook(url=SND_URL_2, auth_unknown="send"), diff=True),
    Step("link_create", link()),
    Step("link_again", link()),
    Step("link_check", link(), check_mode=True),
    Step("link_method", link(method="PUT")),
    Step("info", info()),
    Step("info_one", info(webhook_tag=WEBHOOK_TAG, env="prd")),
    Step("unknown_webhook", link(webhook_tag="no_such_webhook"), expect_failure=True),
    Step("unknown_env", link(env="stg"), expect_failure=True),
    Step("absent", {"ductape.webhooks.ductape_webhook": {
        "product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": WEBHOOK_TAG, "state": "absent",
        "envs": [{"slug": "snd"}]}}, expect_failure=True),
    Step("deliveries", {"ductape.webhooks.ductape_webhook_delivery_info": {"product": PRODUCT}},
         expect_failure=True),
    Step("access_key_alone", info(token_exchange="none"), expect_failure=True),
]

MODULE_DEFAULTS = {"group/ductape.webhooks.ductape": {
    "api_url": "{{ server_url }}", "access_key": "{{ module_key }}", "token_exchange": "ductape-local",
    "auth_header": "x-access-token", "retries": 0}}


@pytest.fixture(scope="module")
def server():
    with LocalServer(SEED, compat="ductape", ingress_url=INGRESS) as running:
        yield running


@pytest.fixture(scope="module")
def run(server, tmp_path_factory):
    return run_steps(tmp_path_factory.mktemp("compat"), server, KEY, STEPS, module_defaults=MODULE_DEFAULTS,
                     extra_vars={"module_key": KEY}, verbosity=3, diff=True)


def registers(run, step):
    return run.delta(step)["requests"].get("POST /webhooks/v1/register", 0)


def links(run, step):
    return run.delta(step)["requests"].get("POST /webhooks/v1/generate-link", 0)


def rows(server):
    """The registrations as the compat server lists them (with a session token of its own)."""
    token = requests.post(server.url + "/webhooks/v1/session", headers=server.auth_headers, timeout=30).json()
    headers = {"Authorization": "Bearer " + token["data"]["token"]}
    listing = requests.get(server.url + "/webhooks/v1/webhooks", headers=headers, timeout=30,
                           params={"product": PRODUCT, "access_tag": ACCESS_TAG}).json()["data"]
    return {w["tag"]: {r["productEnv"]: r for r in w["config"]} for w in listing}


def test_check_mode_then_create_write_once_and_report_no_made_up_link(run):
    check = run.result("check_create")
    assert check["changed"] is True and check["envs"][0]["action"] == "created"
    assert run.delta("check_create")["writes"] == 0
    create = run.result("create")
    assert create["changed"] is True and create["envs"][0]["action"] == "created"
    assert registers(run, "create") == 1
    env = create["envs"][0]
    assert env["uuid"]
    # the compat server's register answer carries no link: none is made up from api_url
    assert env["link"] is None


def test_auth_unknown_changed_is_reported_changed_on_every_run_with_a_warning(run):
    result = run.result("again_changed")
    assert result["changed"] is True and result["envs"][0]["action"] == "updated", run.describe("again_changed")
    assert result["envs"][0]["auth_compared"] is False
    assert registers(run, "again_changed") == 1
    assert any("gives no auth digest for ductape:paystack/charge_success in snd" in w and "auth_unknown: changed" in w
               for w in result["warnings"])
    check = run.result("check_again_changed")
    assert check["changed"] is True and run.delta("check_again_changed")["writes"] == 0
    assert check["diff"]["after"]["snd"]["auth"] == {"headers": {"Authorization": "******** (not comparable: sent again)"}}


def test_auth_unknown_send_sends_every_run_and_reports_only_url_or_method_changes(run):
    for step in ("again_send", "again_send_2"):
        result = run.result(step)
        assert result["changed"] is False and result["envs"][0]["action"] == "unchanged", run.describe(step)
        assert result["envs"][0]["auth_compared"] is False
        assert registers(run, step) == 1  # sent again: the given auth is what is stored
        assert any("counted as changed only where url or method differ (auth_unknown: send)" in w
                   for w in result["warnings"])
    assert run.result("again_send_2")["diff"] == {"before": {}, "after": {}}
    check = run.result("check_send")
    assert check["changed"] is False and run.delta("check_send")["writes"] == 0
    moved = run.result("url_send")
    assert moved["changed"] is True and moved["envs"][0]["action"] == "updated"
    assert moved["diff"] == {"before": {"snd": {"url": SND_URL}}, "after": {"snd": {"url": SND_URL_2}}}


def test_links_come_from_the_server_on_the_ingress_host_and_a_second_run_is_unchanged(run, server):
    created = run.result("link_create")
    assert created["changed"] is True and created["action"] == "created"
    assert created["link"].startswith(INGRESS + "/webhooks/v1/process/")
    assert urlsplit(created["link"]).netloc != urlsplit(server.url).netloc
    assert created["link"].endswith("/" + created["uuid"])
    again = run.result("link_again")
    assert (again["changed"], again["action"], again["link"]) == (False, "unchanged", created["link"])
    assert links(run, "link_again") == 1  # the listing has no link: asked for again, nothing changes
    check = run.result("link_check")
    assert check["changed"] is False and run.delta("link_check")["writes"] == 0
    method = run.result("link_method")
    assert (method["changed"], method["action"], method["link"]) == (True, "updated", created["link"])
    stored = rows(server)[WEBHOOK_TAG]
    assert stored["prd"]["method"] == "PUT" and stored["prd"]["uuid"] == created["uuid"]
    assert stored["snd"]["url"] == SND_URL_2


def test_info_reports_what_the_server_says_and_unknown_as_null(run):
    webhooks = {w["tag"]: w for w in run.result("info")["webhooks"]}
    assert set(webhooks) == {WEBHOOK_TAG, "transfer_success"}
    config = {r["productEnv"]: r for r in webhooks[WEBHOOK_TAG]["config"]}
    assert set(config) == {"snd", "prd"}
    assert config["snd"]["has_auth"] is None and config["snd"]["auth"] is None
    assert "auth_digest" not in config["snd"]
    [one] = run.result("info_one")["webhooks"]
    assert one["tag"] == WEBHOOK_TAG and [r["productEnv"] for r in one["config"]] == ["prd"]


def test_errors_name_the_workspace_prefixed_tags_and_the_extensions_not_offered(run):
    assert "ductape:paystack" in run.result("unknown_webhook")["msg"]
    assert "transfer_success" in run.result("unknown_webhook")["msg"]
    message = run.result("unknown_env")["msg"]
    assert '"stg"' in message and "acme_space:shop" in message
    absent = run.result("absent")
    assert absent["changed"] is False
    assert "delete the registration" in absent["msg"] and "this Ductape API" in absent["msg"]
    assert "does not offer it" in absent["msg"]
    deliveries = run.result("deliveries")["msg"]
    assert deliveries.startswith("list the deliveries: this Ductape API") and "does not offer it" in deliveries
    refused = run.result("access_key_alone")["msg"]
    assert "HTTP 401" in refused and "session token" in refused


def test_no_secret_or_session_token_is_printed(run):
    text = run.output + json.dumps(run.data)
    for secret in (KEY, SECRET):
        assert secret not in text
    assert "dts_" not in text  # the session tokens' prefix
