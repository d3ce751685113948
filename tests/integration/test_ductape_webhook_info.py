"""ductape.webhooks.ductape_webhook_info in one real playbook, and ad hoc, against one real ductape-local.

The app defines 520 webhooks; the client asks for the server's largest page (250), so every listing
follows meta.next_cursor over three pages, counted by the server. Registrations with auth exist in
some envs, one on each page. The playbook (-vvv) lists everything, in check mode, filtered by webhook tag
and env, retries a 503, and fails on every documented error; `ansible localhost -m ...` works with the
connection from the environment; nothing printed holds the access key or an auth value.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import requests
import yaml

from ductape_local.testing import LocalServer
from playbook import Step, adhoc_result, run_adhoc, run_steps, unreachable_url

PRODUCT = "my-product"
ACCESS_TAG = "bigapp-payments"
MODULE_KEY = "dtl_info_module_key_5d0c77"
SETUP_KEY = "dtl_info_setup_key_a913"
WRONG_KEY = "dtl_info_wrong_key_1e6f"
PRD_SECRET = "sk_live_info_prd_secret_77b2"
STG_SECRET = "tok_info_stg_secret_c0d4"
SECRETS = (MODULE_KEY, WRONG_KEY, PRD_SECRET, STG_SECRET)

# The client asks for the server's largest page (250): 520 webhooks are three pages, 250 + 250 + 20.
WEBHOOK_COUNT = 520
PAGES = 3
TAGS = [f"event_{n:04d}" for n in range(WEBHOOK_COUNT)]
# Registered: one webhook on each page, the one on page 2 in two envs.
ON_PAGE_1, ON_PAGE_2, ON_PAGE_3 = TAGS[3], TAGS[300], TAGS[510]

SEED = {
    "access_keys": [
        {"key": MODULE_KEY, "products": [PRODUCT]},
        {"key": SETUP_KEY, "products": [PRODUCT, "other-product"]},
    ],
    "products": [
        {"tag": PRODUCT, "envs": ["prd", "stg", "dev"],
         "connections": [{"access_tag": ACCESS_TAG, "app": "bigapp", "envs": {"prd": "live", "stg": "test",
                                                                              "dev": "test"}}]},
        {"tag": "other-product", "envs": ["prd"],
         "connections": [{"access_tag": ACCESS_TAG, "app": "bigapp", "envs": {"prd": "live"}}]},
    ],
    "apps": [{"tag": "bigapp", "webhooks": [{"tag": tag, "name": f"Event {tag[-4:]}"} for tag in reversed(TAGS)]}],
}

PRD_AUTH = {"headers": {"Authorization": f"Bearer {PRD_SECRET}"}, "params": {"account": 42}}
STG_AUTH = {"query": {"token": STG_SECRET}}
REGISTRATIONS = [  # (webhook tag, env, url, auth)
    (ON_PAGE_1, "prd", "https://api.example.com/hooks/one", PRD_AUTH),
    (ON_PAGE_2, "prd", "https://api.example.com/hooks/two", PRD_AUTH),
    (ON_PAGE_2, "stg", "https://stg.example.com/hooks/two", STG_AUTH),
    (ON_PAGE_3, "dev", "https://dev.example.com/hooks/three", None),
]


def info(**options):
    return {"ductape.webhooks.ductape_webhook_info": {"product": PRODUCT, "access_tag": ACCESS_TAG, **options}}


UNREACHABLE = unreachable_url()

STEPS = [
    Step("everything", info()),
    Step("check_mode", info(), check_mode=True),
    Step("one_webhook", info(webhook_tag=ON_PAGE_2)),
    Step("one_env", info(env="stg")),
    Step("one_webhook_one_env", info(webhook_tag=ON_PAGE_2, env="prd")),
    Step("retried", info(webhook_tag=ON_PAGE_1),
         faults=[{"route": "GET /webhooks/v1/webhooks", "status": 503, "count": 1, "retry_after": 0}]),
    Step("unknown_webhook", info(webhook_tag="no_such_webhook"), expect_failure=True),
    Step("unknown_product", info(product="no-such-product"), expect_failure=True),
    Step("forbidden_product", info(product="other-product"), expect_failure=True),
    Step("unknown_access_tag", info(access_tag="no-such-tag"), expect_failure=True),
    Step("bad_key", info(access_key=WRONG_KEY), expect_failure=True),
    Step("unreachable", info(api_url=UNREACHABLE, retries=0), expect_failure=True),
    Step("missing_product", {"ductape.webhooks.ductape_webhook_info": {"access_tag": ACCESS_TAG}},
         expect_failure=True),
]

MODULE_DEFAULTS = {"group/ductape.webhooks.ductape": {"api_url": "{{ server_url }}", "access_key": "{{ module_key }}"}}


@pytest.fixture(scope="module")
def server():
    with LocalServer(SEED) as running:
        for webhook_tag, env, url, auth in REGISTRATIONS:
            answer = requests.post(running.url + "/webhooks/v1/register", timeout=30,
                                   headers={"Authorization": f"Bearer {SETUP_KEY}"},
                                   json={"product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": webhook_tag,
                                         "envs": [{"slug": env, "url": url, "method": "POST", "auth": auth}]})
            assert answer.status_code == 200, answer.text
        # one registration in a rotation's grace period, so that previous_link is a dict
        [uuid] = [r["uuid"] for w in requests.get(
            running.url + "/webhooks/v1/webhooks", timeout=30, headers={"Authorization": f"Bearer {SETUP_KEY}"},
            params={"product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": ON_PAGE_3}).json()["data"]
            for r in w["config"]]
        rotated = requests.post(running.url + f"/webhooks/v1/registrations/{uuid}/rotate", timeout=30,
                                headers={"Authorization": f"Bearer {SETUP_KEY}"}, json={"grace_seconds": 3600})
        assert rotated.status_code == 200, rotated.text
        yield running


@pytest.fixture(scope="module")
def run(server, tmp_path_factory):
    return run_steps(tmp_path_factory.mktemp("ductape-webhook-info"), server, SETUP_KEY, STEPS,
                     module_defaults=MODULE_DEFAULTS, extra_vars={"module_key": MODULE_KEY}, verbosity=3)


def config_of(webhooks: list[dict]) -> dict[tuple[str, str], dict]:
    return {(w["tag"], r["productEnv"]): r for w in webhooks for r in w["config"]}


def test_follows_every_page(run):
    result = run.result("everything")
    assert result["changed"] is False
    assert [w["tag"] for w in result["webhooks"]] == TAGS, "every webhook, in the API's order, once"
    assert run.delta("everything")["requests"] == {"GET /webhooks/v1/webhooks": PAGES}, run.describe("everything")
    assert run.delta("everything")["writes"] == 0


def test_returns_the_contract_shape_with_auth_masked(run):
    webhooks = run.result("everything")["webhooks"]
    assert all(set(w) == {"tag", "name", "config"} for w in webhooks)
    configs = config_of(webhooks)
    assert set(configs) == {(registered[0], registered[1]) for registered in REGISTRATIONS}
    for tag, env, url, auth in REGISTRATIONS:
        registration = configs[(tag, env)]
        assert {"uuid", "productEnv", "appEnv", "url", "method", "link", "active", "auth", "has_auth",
                "provider_registration", "created_at", "updated_at"} <= set(registration)
        assert "auth_digest" not in registration and "url_digest" not in registration, "C1: no digest in output"
        assert (registration["url"], registration["method"]) == (url, "POST")
        assert registration["has_auth"] is bool(auth)
        assert registration["link"].endswith("/webhooks/v1/process/" + registration["uuid"])
        for part, values in (auth or {}).items():
            assert registration["auth"][part] == {key: "********" for key in values}


def undocumented(value, documented, path):
    """The paths of the keys of a returned value that RETURN does not document (recursing where it says
    what a dict or list element contains)."""
    missing = []
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, dict):
            continue
        for key, inner in item.items():
            if key not in documented:
                missing.append(f"{path}.{key}")
            elif documented[key].get("contains") and inner:
                missing.extend(undocumented(inner, documented[key]["contains"], f"{path}.{key}"))
    return sorted(set(missing))


def test_every_key_returned_is_documented_in_return(run):
    source = (Path(__file__).resolve().parents[2] / "plugins" / "modules" / "ductape_webhook_info.py").read_text()
    [text] = [node.value.value for node in ast.parse(source).body if isinstance(node, ast.Assign)
              and [getattr(t, "id", None) for t in node.targets] == ["RETURN"]]
    documented = yaml.safe_load(text)
    result = {key: value for key, value in run.result("everything").items() if not key.startswith("_")
              and key not in ("invocation", "warnings", "deprecations", "failed")}
    configs = [r for w in result["webhooks"] for r in w["config"]]
    assert any(r["previous_link"] for r in configs), "the fixture's rotation with grace is listed"
    assert any(r["provider_registration"] is None for r in configs)
    assert all(isinstance(r["ingress"], dict) for r in configs)
    assert undocumented(result, documented, "") == []


def test_check_mode_reads_the_same_and_changes_nothing(run):
    result = run.result("check_mode")
    assert result["changed"] is False
    assert result["webhooks"] == run.result("everything")["webhooks"]
    assert run.delta("check_mode")["writes"] == 0


def test_filters_by_webhook_tag_and_env(run):
    [one] = run.result("one_webhook")["webhooks"]
    assert one["tag"] == ON_PAGE_2 and {r["productEnv"] for r in one["config"]} == {"prd", "stg"}

    stg = run.result("one_env")["webhooks"]
    assert [w["tag"] for w in stg] == TAGS, "webhooks without a registration in the env are still listed"
    assert set(config_of(stg)) == {(ON_PAGE_2, "stg")}
    assert config_of(stg)[(ON_PAGE_2, "stg")] == config_of(run.result("everything")["webhooks"])[(ON_PAGE_2, "stg")]

    [both] = run.result("one_webhook_one_env")["webhooks"]
    assert both["tag"] == ON_PAGE_2 and [r["productEnv"] for r in both["config"]] == ["prd"]
    for step in ("one_webhook", "one_env", "one_webhook_one_env"):
        assert run.delta(step)["writes"] == 0
        assert run.result(step)["changed"] is False


def test_a_503_is_retried_with_a_warning(run):
    result = run.result("retried")
    assert [w["tag"] for w in result["webhooks"]] == [ON_PAGE_1]
    warnings = result.get("warnings", [])
    assert len(warnings) == 1 and "503" in warnings[0], warnings
    # With webhook_tag the server answers one short page: the refused request and its retry.
    assert run.delta("retried")["requests"] == {"GET /webhooks/v1/webhooks": 2}, run.describe("retried")


@pytest.mark.parametrize("step, expected", [
    ("unknown_webhook", ["no_such_webhook"]),
    ("unknown_product", ["404", "unknown product", "no-such-product"]),
    ("forbidden_product", ["403", "not allowed", "other-product"]),
    ("unknown_access_tag", ["404", "unknown access tag", "no-such-tag"]),
    ("bad_key", ["401", "unknown access key"]),
    ("unreachable", [UNREACHABLE]),
    ("missing_product", ["product"]),
])
def test_every_error_path_fails_with_its_message(run, step, expected):
    result = run.result(step)
    assert result["failed"] is True and result.get("changed") is False
    for text in expected:
        assert text in result["msg"], f"{text!r} missing from the message of {step}:\n{result['msg']}"
    assert run.delta(step)["writes"] == 0


def test_nothing_printed_at_vvv_holds_the_access_key_or_an_auth_value(run):
    for secret in SECRETS:
        assert secret not in run.output, f"a secret ({secret[:8]}...) was printed"


def test_ad_hoc_with_the_connection_from_the_environment(server, tmp_path):
    server.reset_stats()
    completed = run_adhoc(
        tmp_path, "ductape.webhooks.ductape_webhook_info",
        f"product={PRODUCT} access_tag={ACCESS_TAG} webhook_tag={ON_PAGE_3}",
        env={"DUCTAPE_API_URL": server.url, "DUCTAPE_ACCESS_KEY": MODULE_KEY}, verbosity=3)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "SUCCESS" in completed.stdout
    result = adhoc_result(completed)
    assert result["changed"] is False
    [webhook] = result["webhooks"]
    assert webhook["tag"] == ON_PAGE_3 and [r["productEnv"] for r in webhook["config"]] == ["dev"]
    # One filtered page (webhook_tag), not every page of the app's listing.
    assert server.stats()["requests"] == {"GET /webhooks/v1/webhooks": 1}
    for secret in SECRETS:
        assert secret not in output
