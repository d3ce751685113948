"""ductape.webhooks.ductape_webhook in one real playbook against one real ductape-local --test-mode.

One ansible-playbook run (-vvv --diff) does the whole sequence; around every step the server's
request counts are read, and after it the stored registrations (through a second, observer key), so
each test below asserts on one step: check mode writes nothing; apply creates; apply again changes
nothing and sends no write; a url change writes that env only; an auth-value-only change is detected;
envs not listed are untouched; state=absent removes only the listed env; every error path fails with
its message; retries warn; a provider registration endpoint gets the link and auth once, and a refused
one fails naming the env; and nothing printed holds the access key or an auth value. A second,
shorter playbook runs the module the usual way (AnsiballZ) instead of in the controller process.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ductape_local.auth_digest import auth_matches
from ductape_local.testing import LocalServer
from playbook import Step, core_injects_invocation, run_steps, unreachable_url

PRODUCT = "my-product"
ACCESS_TAG = "stripe-payments"
WEBHOOK_TAG = "payment_succeeded"
MODULE_KEY = "dtl_webhook_module_key_6c1e93"
OBSERVER_KEY = "dtl_webhook_observer_key_0b77"
WRONG_KEY = "dtl_webhook_wrong_key_d4a2"

PRD_SECRET = "sk_live_prd_first_31f9aa"
PRD_SECRET_2 = "sk_live_prd_second_8a02bb"
STG_SECRET = "tok_stg_query_55c1cc"
BODY_SECRET = "acct_body_secret_0e7ddd"
SECRETS = (MODULE_KEY, WRONG_KEY, PRD_SECRET, PRD_SECRET_2, STG_SECRET, BODY_SECRET, "rich_param_secret_91",
           "Ærøskøbing", json.dumps("Ærøskøbing").strip('"'))

SEED = {
    "access_keys": [
        {"key": MODULE_KEY, "products": [PRODUCT]},
        {"key": OBSERVER_KEY, "products": [PRODUCT, "other-product"]},
    ],
    "products": [
        {"tag": PRODUCT, "envs": ["prd", "stg", "dev", "qas"],
         # qas is an env of the product that the connection does not map: it cannot be registered.
         "connections": [{"access_tag": ACCESS_TAG, "app": "stripe", "envs": {"prd": "live", "stg": "test",
                                                                              "dev": "test"}}]},
        {"tag": "other-product", "envs": ["prd"],
         "connections": [{"access_tag": ACCESS_TAG, "app": "stripe", "envs": {"prd": "live"}}]},
    ],
    "apps": [{"tag": "stripe", "webhooks": [
        {"tag": WEBHOOK_TAG, "name": "Payment succeeded"},
        {"tag": "charge_refunded", "name": "Charge refunded"},
        # With the provider's registration endpoints (filled in by the `server` fixture).
        {"tag": "dispute_created", "name": "Dispute created"},
    ]}],
}
PROVIDER_TAG = "dispute_created"

PRD_URL = "https://api.example.com/hooks/stripe/payment-succeeded"
STG_URL = "https://stg.example.com/hooks/stripe/payment-succeeded"
STG_URL_2 = "https://stg.example.com/hooks/v2/payment-succeeded"
DEV_URL = "https://dev.example.com/hooks/payment-succeeded"
DEV_URL_2 = "https://dev.example.com/hooks/v2/payment-succeeded"

PRD_AUTH = {"headers": {"Authorization": f"Bearer {PRD_SECRET}"}, "body": {"account": BODY_SECRET}}
PRD_AUTH_2 = {"headers": {"Authorization": f"Bearer {PRD_SECRET_2}"}, "body": {"account": BODY_SECRET}}
STG_AUTH = {"query": {"token": STG_SECRET}}
RICH_AUTH = {"headers": {"X-Kunde": "Zoë Ærøskøbing 東京 🚀", "X-Retry": 3},
             "body": {"account": {"id": 12345678901, "ratio": 0.1, "tags": ["naïve", {"on": True, "none": None}]}},
             "params": {"region": "rich_param_secret_91"}}


def prd(auth=None, url=PRD_URL, method="POST"):
    return {"slug": "prd", "url": url, "method": method, "auth": auth or PRD_AUTH}


def stg(url=STG_URL):
    return {"slug": "stg", "url": url, "method": "PUT", "auth": STG_AUTH}


def webhook(envs, **options):
    return {"ductape.webhooks.ductape_webhook": {
        "product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": WEBHOOK_TAG, "envs": envs, **options}}


def disputes(envs, **options):
    return {"ductape.webhooks.ductape_webhook": {
        "product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": PROVIDER_TAG, "envs": envs, **options}}


UNREACHABLE = unreachable_url()

STEPS = [
    Step("check_create", webhook([prd(), stg()]), check_mode=True),
    Step("create", webhook([prd(), stg()])),
    Step("again", webhook([prd(), stg()])),
    Step("check_url", webhook([prd(), stg(STG_URL_2)]), check_mode=True),
    Step("url", webhook([prd(), stg(STG_URL_2)])),
    Step("auth_value", webhook([prd(PRD_AUTH_2), stg(STG_URL_2)])),
    Step("auth_again", webhook([prd(PRD_AUTH_2), stg(STG_URL_2)])),
    Step("method", webhook([prd(PRD_AUTH_2, method="PATCH")])),
    Step("only_dev", webhook([{"slug": "dev", "url": DEV_URL}])),
    # Through Ansible and over HTTP, the digest still matches for non-ASCII text, numbers and nesting.
    Step("rich_auth", webhook([{"slug": "dev", "url": DEV_URL, "auth": RICH_AUTH}])),
    Step("rich_auth_again", webhook([{"slug": "dev", "url": DEV_URL, "auth": RICH_AUTH}])),
    # One env that cannot be registered: nothing of the request may be written, prd included.
    Step("one_bad_env", webhook([prd(PRD_AUTH, url=PRD_URL + "/changed"), {"slug": "qas", "url": DEV_URL}]),
         expect_failure=True),
    Step("env_not_in_product", webhook([{"slug": "xyz", "url": DEV_URL}]), expect_failure=True),
    Step("unknown_product", webhook([{"slug": "prd", "url": PRD_URL}], product="no-such-product"),
         expect_failure=True),
    Step("forbidden_product", webhook([{"slug": "prd", "url": PRD_URL}], product="other-product"),
         expect_failure=True),
    Step("unknown_access_tag", webhook([{"slug": "prd", "url": PRD_URL}], access_tag="no-such-tag"),
         expect_failure=True),
    Step("unknown_webhook", webhook([{"slug": "prd", "url": PRD_URL}], webhook_tag="no_such_webhook"),
         expect_failure=True),
    Step("bad_key", webhook([{"slug": "dev", "url": DEV_URL_2}], access_key=WRONG_KEY), expect_failure=True),
    Step("bad_url", webhook([{"slug": "dev", "url": "ftp://dev.example.com/hook"}]), expect_failure=True),
    Step("bad_method", webhook([{"slug": "dev", "url": DEV_URL, "method": "FETCH"}]), expect_failure=True),
    Step("duplicate_env", webhook([{"slug": "dev", "url": DEV_URL}, {"slug": "dev", "url": DEV_URL_2}]),
         expect_failure=True),
    Step("unreachable", webhook([{"slug": "dev", "url": DEV_URL}], api_url=UNREACHABLE, retries=0),
         expect_failure=True),
    Step("retried", webhook([{"slug": "dev", "url": DEV_URL_2}]),
         faults=[{"route": "POST /webhooks/v1/register", "status": 503, "count": 1, "retry_after": 0}]),
    Step("retries_exhausted", webhook([{"slug": "dev", "url": DEV_URL}], retries=1),
         faults=[{"route": "GET /webhooks/v1/webhooks", "status": 503, "count": 2, "retry_after": 0}],
         expect_failure=True),
    Step("check_absent", webhook([{"slug": "stg"}], state="absent"), check_mode=True),
    Step("absent", webhook([{"slug": "stg"}], state="absent")),
    Step("absent_again", webhook([{"slug": "stg"}], state="absent")),
    # A provider registration endpoint: prd's accepts, stg's refuses its first call only.
    Step("provider_ok", disputes([prd()])),
    Step("provider_ok_again", disputes([prd()])),
    # Default retries: the API's own 502 (a refused provider registration) is not retried at once, so
    # the refusal stands until the rerun (a retry would have reached the provider's second, accepting answer).
    Step("provider_refused", disputes([prd(), stg()]), expect_failure=True),
    Step("provider_rerun", disputes([prd(), stg()])),
]

MODULE_DEFAULTS = {"group/ductape.webhooks.ductape": {"api_url": "{{ server_url }}", "access_key": "{{ module_key }}"}}


class _Provider(BaseHTTPRequestHandler):
    """A provider's registration endpoint: /ok accepts, /flaky refuses its first call and accepts the next."""

    calls: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.calls.append({"path": self.path, "authorization": self.headers.get("Authorization"), "body": body})
        refused = self.path.startswith("/flaky") and sum(c["path"] == self.path for c in self.calls) == 1
        self.send_response(400 if refused else 201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def provider():
    _Provider.calls = []
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    http.daemon_threads = True
    thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_address[1]}", _Provider.calls
    http.shutdown()
    http.server_close()


@pytest.fixture(scope="module")
def server(provider):
    provider_url = provider[0]
    seed = json.loads(json.dumps(SEED))
    [dispute] = [w for w in seed["apps"][0]["webhooks"] if w["tag"] == PROVIDER_TAG]
    dispute["registration"] = {
        "live": {"url": provider_url + "/ok/endpoints", "method": "POST", "link_in": "body", "link_key": "url"},
        "test": {"url": provider_url + "/flaky/endpoints", "method": "POST", "link_in": "body", "link_key": "url"},
    }
    with LocalServer(seed) as running:
        yield running


@pytest.fixture(scope="module")
def run(server, tmp_path_factory):
    return run_steps(tmp_path_factory.mktemp("ductape-webhook"), server, OBSERVER_KEY, STEPS,
                     module_defaults=MODULE_DEFAULTS, state_query={"product": PRODUCT, "access_tag": ACCESS_TAG},
                     extra_vars={"module_key": MODULE_KEY}, verbosity=3, diff=True)


def stored(run, step: str, webhook_tag: str = WEBHOOK_TAG) -> dict[str, dict]:
    """{env: registration} as the server listed it right after `step`."""
    [found] = [w for w in run.state(step) if w["tag"] == webhook_tag]
    return {registration["productEnv"]: registration for registration in found["config"]}


def previous(step: str) -> str:
    names = [s.name for s in STEPS]
    return names[names.index(step) - 1]


def env_actions(result: dict) -> dict[str, str]:
    return {env["slug"]: env["action"] for env in result.get("envs", [])}


def assert_no_write(run, step: str) -> None:
    delta = run.delta(step)
    assert delta["writes"] == 0, f"expected no write\n{run.describe(step)}"


def test_the_play_sets_the_connection_through_the_module_defaults_group_only():
    named = [s.name for s in STEPS if {"api_url", "access_key"} & set(next(iter(s.task.values())))]
    assert set(named) == {"bad_key", "unreachable"}


def test_check_mode_decides_created_and_writes_nothing(run):
    result = run.result("check_create")
    assert result["changed"] is True, run.describe("check_create")
    assert env_actions(result) == {"prd": "created", "stg": "created"}
    assert_no_write(run, "check_create")
    assert stored(run, "check_create") == {}


def test_apply_creates_both_envs_in_one_register_request(run):
    result = run.result("create")
    assert result["changed"] is True
    assert env_actions(result) == {"prd": "created", "stg": "created"}, run.describe("create")
    assert run.delta("create")["requests"].get("POST /webhooks/v1/register") == 1, run.describe("create")
    assert run.delta("create")["writes"] == 1, run.describe("create")
    registrations = stored(run, "create")
    assert set(registrations) == {"prd", "stg"}
    assert (registrations["prd"]["url"], registrations["prd"]["method"]) == (PRD_URL, "POST")
    assert (registrations["stg"]["url"], registrations["stg"]["method"]) == (STG_URL, "PUT")
    assert auth_matches(registrations["prd"]["auth_digest"], PRD_AUTH)
    assert auth_matches(registrations["stg"]["auth_digest"], STG_AUTH)
    for env in result["envs"]:
        registration = registrations[env["slug"]]
        assert (env["uuid"], env["link"], env["url"], env["method"]) == (
            registration["uuid"], registration["link"], registration["url"], registration["method"])
        assert env["link"].endswith("/webhooks/v1/process/" + env["uuid"])
        assert "provider_registration" in env


def test_apply_again_changes_nothing_and_sends_no_write(run):
    for step in ("again", "auth_again"):
        result = run.result(step)
        assert result["changed"] is False, run.describe(step)
        assert set(env_actions(result).values()) == {"unchanged"}, run.describe(step)
        assert_no_write(run, step)
    assert stored(run, "again") == stored(run, "create")


def test_check_mode_of_a_url_change_writes_nothing(run):
    result = run.result("check_url")
    assert result["changed"] is True
    assert env_actions(result) == {"prd": "unchanged", "stg": "updated"}, run.describe("check_url")
    assert_no_write(run, "check_url")
    assert stored(run, "check_url")["stg"]["url"] == STG_URL


def test_a_url_change_writes_that_env_only(run):
    result = run.result("url")
    assert result["changed"] is True
    assert env_actions(result) == {"prd": "unchanged", "stg": "updated"}, run.describe("url")
    assert run.delta("url")["writes"] == 1 and run.delta("url")["requests"].get("POST /webhooks/v1/register") == 1, \
        run.describe("url")
    before, after = stored(run, "again"), stored(run, "url")
    assert after["stg"]["url"] == STG_URL_2
    assert after["stg"]["updated_at"] != before["stg"]["updated_at"]
    assert after["prd"] == before["prd"], "prd was not listed as changed, yet the server changed it"
    # An update keeps the registration, so the link stays the same.
    assert (after["stg"]["uuid"], after["stg"]["link"]) == (before["stg"]["uuid"], before["stg"]["link"])


def test_an_auth_value_change_alone_is_detected_and_written(run):
    result = run.result("auth_value")
    assert result["changed"] is True, run.describe("auth_value")
    assert env_actions(result) == {"prd": "updated", "stg": "unchanged"}, run.describe("auth_value")
    assert run.delta("auth_value")["writes"] == 1, run.describe("auth_value")
    before, after = stored(run, "url"), stored(run, "auth_value")
    assert auth_matches(after["prd"]["auth_digest"], PRD_AUTH_2)
    assert after["prd"]["auth_digest"] != before["prd"]["auth_digest"]
    assert (after["prd"]["url"], after["prd"]["uuid"]) == (before["prd"]["url"], before["prd"]["uuid"])
    assert after["stg"] == before["stg"]


def test_a_method_change_is_an_update(run):
    result = run.result("method")
    assert env_actions(result) == {"prd": "updated"}, run.describe("method")
    assert stored(run, "method")["prd"]["method"] == "PATCH"


def test_envs_not_listed_are_never_touched(run):
    result = run.result("only_dev")
    assert env_actions(result) == {"dev": "created"}, run.describe("only_dev")
    before, after = stored(run, "method"), stored(run, "only_dev")
    assert set(after) == {"prd", "stg", "dev"}
    assert (after["prd"], after["stg"]) == (before["prd"], before["stg"])


def test_the_diff_shows_before_and_after_per_env_with_auth_masked(run):
    url_diff = run.result("url")["diff"]
    assert url_diff["before"]["stg"]["url"] == STG_URL and url_diff["after"]["stg"]["url"] == STG_URL_2, url_diff
    assert "prd" not in url_diff["before"] and "prd" not in url_diff["after"], "unchanged envs are not in the diff"
    auth_diff = run.result("auth_value")["diff"]
    assert auth_diff["before"]["prd"] != auth_diff["after"]["prd"], "an auth-only change must show in the diff"
    assert set(auth_diff["after"]["prd"]["auth"]["headers"]) == {"Authorization"}
    created = run.result("create")["diff"]
    assert created["before"] == {} and set(created["after"]) == {"prd", "stg"}
    removed = run.result("absent")["diff"]
    assert set(removed["before"]) == {"stg"} and removed["after"] == {}
    for step in ("create", "url", "auth_value", "absent"):
        text = json.dumps(run.result(step)["diff"])
        for secret in SECRETS:
            assert secret not in text, f"{step}: the diff shows a secret"


def test_non_ascii_numbers_and_nesting_in_auth_digest_alike_through_ansible(run):
    assert run.result("rich_auth")["envs"][0]["action"] == "updated", run.describe("rich_auth")
    assert auth_matches(stored(run, "rich_auth")["dev"]["auth_digest"], RICH_AUTH)
    again = run.result("rich_auth_again")
    assert again["changed"] is False and again["envs"][0]["action"] == "unchanged", run.describe("rich_auth_again")
    assert_no_write(run, "rich_auth_again")


def test_one_unregistrable_env_fails_the_task_and_nothing_is_written(run):
    message = run.result("one_bad_env")["msg"]
    # The env is named by the server's message itself, not only by the operation ("... in prd, qas: ").
    operation, _sep, answer = message.partition(": HTTP 422: ")
    assert operation == f"register {ACCESS_TAG}/{WEBHOOK_TAG} in prd, qas" and "qas" in answer and "not mapped" in answer, message
    assert stored(run, "one_bad_env") == stored(run, previous("one_bad_env"))


@pytest.mark.parametrize("step, expected", [
    ("env_not_in_product", ["xyz", "is not an env of product"]),
    ("unknown_product", ["404", "unknown product", "no-such-product"]),
    ("forbidden_product", ["403", "not allowed", "other-product"]),
    ("unknown_access_tag", ["404", "unknown access tag", "no-such-tag"]),
    ("unknown_webhook", ["no_such_webhook"]),
    ("bad_key", ["401", "unknown access key"]),
    ("bad_url", ["url", "ftp://dev.example.com/hook"]),
    ("bad_method", ["method", "FETCH"]),
    ("duplicate_env", ["dev", "twice"]),
    ("unreachable", [UNREACHABLE]),
    ("retries_exhausted", ["503", "fault injected by test mode"]),
])
def test_every_error_path_fails_with_its_message(run, step, expected):
    result = run.result(step)
    assert result["failed"] is True
    for text in expected:
        assert text in result["msg"], f"{text!r} missing from the message of {step}:\n{result['msg']}"
    # Refused by the server itself: the register request was sent, and stats count it as a write.
    if step != "env_not_in_product":
        assert_no_write(run, step)
    assert stored(run, step) == stored(run, previous(step)), f"{step} changed what is stored"


def test_a_retried_503_warns_and_then_succeeds(run):
    result = run.result("retried")
    assert env_actions(result) == {"dev": "updated"}, run.describe("retried")
    assert run.delta("retried")["requests"].get("POST /webhooks/v1/register") == 2, run.describe("retried")
    warnings = result.get("warnings", [])
    assert len(warnings) == 1 and "503" in warnings[0], warnings
    assert len(run.result("retries_exhausted").get("warnings", [])) == 1
    assert run.delta("retries_exhausted")["requests"].get("GET /webhooks/v1/webhooks") == 2


def test_absent_in_check_mode_writes_nothing(run):
    result = run.result("check_absent")
    assert result["changed"] is True and env_actions(result) == {"stg": "deleted"}, run.describe("check_absent")
    assert_no_write(run, "check_absent")
    assert "stg" in stored(run, "check_absent")


def test_absent_removes_the_listed_env_only(run):
    result = run.result("absent")
    assert result["changed"] is True and env_actions(result) == {"stg": "deleted"}, run.describe("absent")
    assert run.delta("absent")["requests"] == {"GET /webhooks/v1/webhooks": 1,
                                               "DELETE /webhooks/v1/registrations/{uuid}": 1}, run.describe("absent")
    before, after = stored(run, "check_absent"), stored(run, "absent")
    assert set(after) == {"prd", "dev"}
    assert (after["prd"], after["dev"]) == (before["prd"], before["dev"])
    again = run.result("absent_again")
    assert again["changed"] is False and env_actions(again) == {"stg": "absent"}, run.describe("absent_again")
    assert_no_write(run, "absent_again")


def test_nothing_printed_at_vvv_with_diff_holds_a_secret(run):
    # -vvv printed the module arguments (the access key as ansible masks a no_log option) where the running
    # core adds invocation to results, and the masked auth.
    assert ("VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in run.output) is core_injects_invocation()
    assert "********" in run.output
    for secret in SECRETS:
        assert secret not in run.output, f"a secret ({secret[:8]}...) was printed"


# The same module run the usual way (AnsiballZ in a fresh Python), not in the controller process.

MODULE_MODE_TAG = "charge_refunded"


def refunds(envs, **options):
    return {"ductape.webhooks.ductape_webhook": {
        "product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": MODULE_MODE_TAG, "envs": envs, **options}}


MODULE_MODE_STEPS = [
    Step("check_create", refunds([prd(), stg()]), check_mode=True),
    Step("create", refunds([prd(), stg()])),
    Step("again", refunds([prd(), stg()])),
    Step("auth_value", refunds([prd(PRD_AUTH_2), stg()])),
    Step("bad_key", refunds([prd()], access_key=WRONG_KEY), expect_failure=True),
    Step("absent", refunds([{"slug": "stg"}], state="absent")),
]


@pytest.fixture(scope="module")
def module_mode_run(server, run, tmp_path_factory):
    # After `run`, on the same server: its state must not be disturbed by this webhook's registrations.
    return run_steps(tmp_path_factory.mktemp("ductape-webhook-module"), server, OBSERVER_KEY, MODULE_MODE_STEPS,
                     module_defaults=MODULE_DEFAULTS, state_query={"product": PRODUCT, "access_tag": ACCESS_TAG},
                     extra_vars={"module_key": MODULE_KEY, "ductape_run_on_controller": False},
                     verbosity=3, diff=True)


def test_as_a_module_it_decides_and_writes_the_same(module_mode_run):
    run = module_mode_run
    assert "running the module on the target" in run.output
    assert "running in the controller process" not in run.output
    expected = {
        "check_create": (True, {"prd": "created", "stg": "created"}, 0),
        "create": (True, {"prd": "created", "stg": "created"}, 1),
        "again": (False, {"prd": "unchanged", "stg": "unchanged"}, 0),
        "auth_value": (True, {"prd": "updated", "stg": "unchanged"}, 1),
        "absent": (True, {"stg": "deleted"}, 1),
    }
    for step, (changed, actions, writes) in expected.items():
        result = run.result(step)
        assert (result["changed"], env_actions(result), run.delta(step)["writes"]) == (changed, actions, writes), \
            run.describe(step)
    assert stored(run, "check_create", MODULE_MODE_TAG) == {}
    assert auth_matches(stored(run, "auth_value", MODULE_MODE_TAG)["prd"]["auth_digest"], PRD_AUTH_2)
    assert set(stored(run, "absent", MODULE_MODE_TAG)) == {"prd"}
    assert set(run.result("auth_value")["diff"]["after"]) == {"prd"}
    assert run.result("bad_key")["msg"] == f"list the webhooks of {ACCESS_TAG} in product {PRODUCT}: HTTP 401: unknown access key"
    # The other webhook, registered by the first playbook, was not touched.
    assert stored(run, "absent") == stored(run, "create")


def test_as_a_module_nothing_printed_at_vvv_with_diff_holds_a_secret(module_mode_run):
    for secret in SECRETS:
        assert secret not in module_mode_run.output, f"a secret ({secret[:8]}...) was printed"


# Provider registration (the app's env has a registration endpoint).


def provider_calls(calls, env_path):
    return [call for call in calls if call["path"].startswith(env_path)]


def test_the_provider_gets_the_link_and_the_auth_once(run, provider):
    calls = provider[1]
    [env] = run.result("provider_ok")["envs"]
    assert env["action"] == "created", run.describe("provider_ok")
    assert env["provider_registration"]["status"] == "registered", env
    assert env["provider_registration"]["http_status"] == 201
    [call] = provider_calls(calls, "/ok")
    assert call["body"] == {"account": BODY_SECRET, "url": env["link"]}
    assert call["authorization"] == f"Bearer {PRD_SECRET}"
    again = run.result("provider_ok_again")
    assert again["changed"] is False, run.describe("provider_ok_again")
    assert_no_write(run, "provider_ok_again")


def test_a_refused_provider_registration_fails_naming_the_env_and_the_status(run):
    result = run.result("provider_refused")
    assert result["msg"] == (f"register {ACCESS_TAG}/{PROVIDER_TAG} in stg: HTTP 502: "
                             "provider registration failed for env stg: provider answered HTTP 400"), result["msg"]
    registration = stored(run, "provider_refused", PROVIDER_TAG)["stg"]
    assert registration["provider_registration"]["status"] == "failed", registration
    assert stored(run, "provider_refused", PROVIDER_TAG)["prd"] == stored(run, "provider_ok_again", PROVIDER_TAG)["prd"]


def test_running_again_after_a_refused_provider_registration_retries_the_provider(run, provider):
    # The module's notes: "running it again retries the provider". The stored url, method and auth
    # already match, so only the failed provider_registration says that something is left to do.
    calls = provider_calls(provider[1], "/flaky")
    assert len(calls) == 2, f"the provider was called {len(calls)} time(s) for stg; expected a retry on the rerun\n" \
                            f"{run.describe('provider_rerun')}"
    result = run.result("provider_rerun")
    assert result["changed"] is True, run.describe("provider_rerun")
    registration = stored(run, "provider_rerun", PROVIDER_TAG)["stg"]
    assert registration["provider_registration"]["status"] == "registered", registration
    assert len(provider_calls(provider[1], "/ok")) == 1, "prd's provider registration was sent again"
