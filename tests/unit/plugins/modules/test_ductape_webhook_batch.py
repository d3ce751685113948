"""ductape_webhook's batch form (option `webhooks`) over scripted HTTP: decisions, failures, one session.

The module's run() is called as the action plugin calls it, with the parameters the argument spec
validated; its client is built on a scripted session, so every request is recorded and nothing
reaches the network.
"""
from __future__ import annotations

import json

import pytest
from ansible.module_utils.common.arg_spec import ModuleArgumentSpecValidator

from ansible_collections.ductape.webhooks.plugins.module_utils import _http
from ansible_collections.ductape.webhooks.plugins.module_utils import ductape_api
from ansible_collections.ductape.webhooks.plugins.modules import ductape_webhook as module
from ductape_local.auth_digest import auth_digest as server_auth_digest
from ductape_local.auth_digest import mask_auth as server_mask_auth
from ansible_collections.ductape.webhooks.tests.unit.scripted_http import ScriptedHTTP, answer

API_URL = "http://ductape.test:4311"
ACCESS_KEY = "dtl_unit_batch_key_51c0aa"
SECRET = "sk_live_batch_secret_7e21d4"
AUTH = {"headers": {"Authorization": "Bearer " + SECRET}}
PRODUCT = "my-product"


def registration(slug: str, url: str, auth: dict | None = None, uuid: str | None = None, method: str = "POST"):
    uuid = uuid or f"uuid-{slug}-{abs(hash(url)) % 1000}"
    return {"uuid": uuid, "productEnv": slug, "appEnv": "live", "url": url, "method": method,
            "link": f"{API_URL}/webhooks/v1/process/{uuid}", "active": False, "auth": server_mask_auth(auth),
            "auth_digest": server_auth_digest(auth), "provider_registration": None,
            "created_at": "2026-11-29T00:00:00Z", "updated_at": "2026-11-29T00:00:00Z"}


def listing(tag: str, *registrations) -> object:
    return answer(200, data=[{"tag": tag, "name": tag, "config": list(registrations)}], meta={"next_cursor": None})


def registered(access_tag: str, webhook_tag: str, *registrations) -> object:
    return answer(200, data={"product": PRODUCT, "access_tag": access_tag, "webhook_tag": webhook_tag,
                             "envs": [dict(r, changed=True) for r in registrations]})


def env(slug: str, url: str, auth: dict | None = None, method: str = "POST") -> dict:
    return {"slug": slug, "url": url, "method": method, **({"auth": auth} if auth is not None else {})}


def hook(webhook_tag: str, *envs, access_tag: str = "stripe-payments") -> dict:
    return {"access_tag": access_tag, "webhook_tag": webhook_tag, "envs": list(envs)}


@pytest.fixture
def http(monkeypatch):
    """The scripted HTTP every client of the module uses; counts the clients built."""
    scripted = ScriptedHTTP([])
    scripted.clients = 0

    def client_for(params, warn=None, **options):
        scripted.clients += 1
        return ductape_api.DuctapeClient(API_URL, params["access_key"], retries=params.get("retries", 3),
                                         warn=warn, sleep=scripted.sleeps.append, session=scripted.session)

    monkeypatch.setattr(module, "client_for", client_for)
    return scripted


def validated(**args) -> dict:
    args = {"product": PRODUCT, "access_key": ACCESS_KEY, **args}
    validator = ModuleArgumentSpecValidator(module.argument_spec(), **module.ARGUMENT_SPEC_OPTIONS)
    result = validator.validate(json.loads(json.dumps(args)))
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


def run(http: ScriptedHTTP, script: list, webhooks: list, *, check_mode=False, diff=False, **args) -> dict:
    http.script = list(script)
    args.setdefault("parallelism", 1)  # the script answers in order (test_engine.py covers concurrency)
    result = module.run(validated(webhooks=webhooks, **args), check_mode, diff, http.warnings.append)
    assert http.exhausted, f"requests left unsent: {http.script}"
    assert SECRET not in json.dumps(result) and ACCESS_KEY not in json.dumps(result)
    return result


def actions(outcome: dict) -> dict:
    return {e["slug"]: e["action"] for e in outcome["envs"]}


def routes(http: ScriptedHTTP) -> list[str]:
    return [f"{sent.method} {sent.path}" + (f"?webhook_tag={sent.query['webhook_tag']}"
                                            if "webhook_tag" in sent.query else "") for sent in http.sent]


PAID = "https://api.example.com/hooks/paid"
REFUNDED = "https://api.example.com/hooks/refunded"


def test_each_webhook_is_read_once_and_only_what_differs_is_written(http):
    result = run(http, [
        listing("payment_succeeded", registration("prd", PAID, AUTH)),      # unchanged: no write
        listing("charge_refunded"),                                          # nothing registered: created
        registered("stripe-payments", "charge_refunded", registration("prd", REFUNDED)),
    ], [hook("payment_succeeded", env("prd", PAID, AUTH)), hook("charge_refunded", env("prd", REFUNDED))])
    assert routes(http) == ["GET /webhooks/v1/webhooks?webhook_tag=payment_succeeded",
                            "GET /webhooks/v1/webhooks?webhook_tag=charge_refunded",
                            "POST /webhooks/v1/register"]
    assert http.sent[2].json == {"product": PRODUCT, "access_tag": "stripe-payments", "webhook_tag": "charge_refunded",
                                 "envs": [{"slug": "prd", "url": REFUNDED, "method": "POST", "auth": {}}]}
    assert result["changed"] is True and "failed" not in result
    first, second = result["webhooks"]
    assert (first["webhook_tag"], first["changed"], actions(first)) == ("payment_succeeded", False, {"prd": "unchanged"})
    assert (second["webhook_tag"], second["changed"], actions(second)) == ("charge_refunded", True, {"prd": "created"})
    assert second["envs"][0]["link"].endswith(second["envs"][0]["uuid"])
    assert http.clients == 1, "one client (one requests.Session) for the whole call"


def test_a_batch_with_nothing_to_do_sends_reads_only_and_reports_unchanged(http):
    result = run(http, [listing("a", registration("prd", PAID)), listing("b", registration("stg", REFUNDED))],
                 [hook("a", env("prd", PAID)), hook("b", env("stg", REFUNDED))])
    assert result["changed"] is False
    assert [sent.method for sent in http.sent] == ["GET", "GET"]
    assert all(not outcome["changed"] for outcome in result["webhooks"])


def test_check_mode_makes_the_same_decisions_and_writes_nothing(http):
    result = run(http, [listing("a", registration("prd", PAID)), listing("b")],
                 [hook("a", env("prd", PAID + "/v2")), hook("b", env("prd", REFUNDED))], check_mode=True, diff=True)
    assert [sent.method for sent in http.sent] == ["GET", "GET"]
    assert [actions(outcome) for outcome in result["webhooks"]] == [{"prd": "updated"}, {"prd": "created"}]
    assert result["changed"] is True
    # Only the keys that change, before and after; a created env shows them all.
    assert result["diff"]["before"] == {"stripe-payments/a": {"prd": {"url": PAID}}}
    assert result["diff"]["after"]["stripe-payments/a"] == {"prd": {"url": PAID + "/v2"}}
    assert set(result["diff"]["after"]["stripe-payments/b"]["prd"]) == {"url", "method", "auth"}
    assert set(result["diff"]["after"]) == {"stripe-payments/a", "stripe-payments/b"}
    assert result["diff"]["after"]["stripe-payments/b"]["prd"]["url"] == REFUNDED


def test_the_diff_holds_only_the_webhooks_that_write_and_masks_auth(http):
    new_auth = {"headers": {"Authorization": "Bearer " + SECRET + "-2"}}
    result = run(http, [
        listing("a", registration("prd", PAID, AUTH)),
        listing("b", registration("prd", REFUNDED)),
        registered("stripe-payments", "a", registration("prd", PAID, new_auth)),
    ], [hook("a", env("prd", PAID, new_auth)), hook("b", env("prd", REFUNDED))], diff=True)
    assert set(result["diff"]["before"]) == set(result["diff"]["after"]) == {"stripe-payments/a"}
    assert result["diff"]["after"]["stripe-payments/a"]["prd"]["auth"] == {"headers": {"Authorization": "******** (changed)"}}
    assert SECRET not in json.dumps(result)


def test_absent_deletes_per_webhook_what_is_registered(http):
    gone = registration("stg", PAID, uuid="uuid-gone")
    result = run(http, [
        listing("a", gone), listing("b"), answer(200, data=gone),
    ], [hook("a", {"slug": "stg"}), hook("b", {"slug": "stg"})], state="absent")
    assert routes(http)[2] == "DELETE /webhooks/v1/registrations/uuid-gone"
    assert [actions(outcome) for outcome in result["webhooks"]] == [{"stg": "deleted"}, {"stg": "absent"}]
    assert [outcome["changed"] for outcome in result["webhooks"]] == [True, False]


def test_a_failing_webhook_does_not_stop_the_others_and_the_task_fails_naming_it(http):
    result = run(http, [
        # All reads first (concurrently when parallelism > 1), then the writes.
        listing("a"),
        listing("b"),
        answer(404, errors='access_tag: unknown access tag "nope" for product "my-product"'),
        answer(422, errors='envs[0].slug: env "sbx" is not mapped to an app env for access tag "stripe-payments"'),
        registered("stripe-payments", "b", registration("prd", REFUNDED)),
    ], [hook("a", env("sbx", PAID)), hook("b", env("prd", REFUNDED)), hook("c", env("prd", PAID), access_tag="nope")],
        retries=0)
    assert result["failed"] is True
    assert result["changed"] is True, "webhook b was written"
    a, b, c = result["webhooks"]
    assert a["failed"] is True and "not mapped" in a["msg"] and a["changed"] is False
    assert a["envs"] == [{"slug": "sbx", "action": None, "uuid": None, "link": None, "url": PAID, "method": "POST",
                          "provider_registration": None}]
    assert "failed" not in b and actions(b) == {"prd": "created"} and b["changed"] is True
    assert c["failed"] is True and "unknown access tag" in c["msg"]
    assert actions(c) == {"prd": None}, "its registrations could not be read"
    assert result["msg"].startswith("2 of 3 webhooks failed: stripe-payments/a: register stripe-payments/a in sbx:")
    assert "; nope/c: list the webhooks of nope in product my-product: HTTP 404" in result["msg"]


def test_a_webhook_the_app_does_not_define_is_one_failure_among_others(http):
    # An empty filtered read, then (on this error path only) the app's listing, to name its webhooks.
    everything = answer(200, data=[{"tag": "b", "name": "b", "config": []}, {"tag": "a", "name": "a", "config": []}])
    result = run(http, [answer(200, data=[], meta={}), everything, listing("b", registration("prd", REFUNDED))],
                 [hook("nope", env("prd", PAID)), hook("b", env("prd", REFUNDED))])
    nope, b = result["webhooks"]
    assert nope["msg"] == ('webhooks[0].webhook_tag: "nope" is not a webhook of the app behind access tag '
                           '"stripe-payments" (its webhooks: a, b)')
    assert "failed" not in b and result["failed"] is True and result["changed"] is False


def test_an_unreachable_api_or_a_refused_key_stops_the_batch_and_says_so(http):
    result = run(http, [_http.ConnectFailed("the connection failed: refused")],
                 [hook("a", env("prd", PAID)), hook("b", env("prd", PAID)), hook("c", env("prd", PAID))], retries=0)
    assert len(http.sent) == 1, "the other webhooks were not attempted"
    a, b, c = result["webhooks"]
    assert "could not reach the Ductape API" in a["msg"]
    for outcome in (b, c):
        assert outcome["failed"] is True and outcome["msg"].startswith(
            "not attempted: the call for stripe-payments/a failed in a way that concerns every webhook")
    assert result["msg"].startswith("3 of 3 webhooks failed")

    http.sent.clear()
    result = run(http, [answer(401, errors="unknown access key")],
                 [hook("a", env("prd", PAID)), hook("b", env("prd", PAID))])
    assert len(http.sent) == 1 and all(outcome["failed"] for outcome in result["webhooks"])


def test_a_write_that_fails_after_another_succeeded_reports_what_was_written(http):
    one, two = registration("prd", PAID, uuid="uuid-1"), registration("stg", PAID, uuid="uuid-2")
    result = run(http, [listing("a", one, two), answer(200, data=one), answer(404, errors="uuid: unknown")],
                 [hook("a", {"slug": "prd"}, {"slug": "stg"})], state="absent", diff=True)
    [outcome] = result["webhooks"]
    assert outcome["failed"] is True and outcome["changed"] is True and result["changed"] is True
    assert actions(outcome) == {"prd": "deleted", "stg": None}
    assert set(result["diff"]["before"]["stripe-payments/a"]) == {"prd"}


def test_every_bad_env_of_every_webhook_is_named_and_nothing_is_sent(http):
    result = run(http, [], [
        hook("a", env("prd", PAID)),
        hook("b", env("prd", "ftp://example.com/x"), env("prd", PAID)),
        hook("a", env("stg", PAID, auth="Bearer " + SECRET)),
        hook("c"),
    ])
    assert http.sent == [] and http.clients == 0
    assert result["failed"] is True and result["changed"] is False and "webhooks" not in result
    message = result["msg"]
    assert message.startswith("nothing was written: ")
    for expected in [
        'webhooks[1].envs[0].url: must be an absolute http:// or https:// URL (got "ftp://example.com/x" in env "prd")',
        'webhooks[1].envs[1].slug: env "prd" is listed twice (webhooks[1].envs[0].slug and webhooks[1].envs[1].slug)',
        'webhooks[2]: webhook "stripe-payments/a" is listed twice (webhooks[0] and webhooks[2]); list each webhook once',
        "webhooks[2].envs[0].auth: must be a mapping with any of the keys headers, query, body, params "
        '(got a string in env "stg"; its value is not shown)',
        "webhooks[3].envs: at least one env is needed (got an empty list)",
    ]:
        assert expected in message, (expected, message)


def test_an_empty_batch_does_nothing(http):
    assert run(http, [], []) == {"changed": False, "webhooks": []}


def test_the_two_forms_exclude_each_other_and_one_is_required():
    validator = ModuleArgumentSpecValidator(module.argument_spec(), **module.ARGUMENT_SPEC_OPTIONS)
    both = validator.validate({"product": PRODUCT, "webhook_tag": "a", "webhooks": []})
    assert both.error_messages == ["parameters are mutually exclusive: webhooks|webhook_tag"]
    neither = validator.validate({"product": PRODUCT}).validated_parameters
    assert module.run(neither, False, False, print)["msg"] == (
        "one of the two forms is required: access_tag, webhook_tag and envs (one webhook), or webhooks (several)")
    partial = validator.validate({"product": PRODUCT, "access_tag": "a"}).validated_parameters
    assert module.run(partial, False, False, print)["msg"] == "missing required arguments: envs, webhook_tag"


def test_the_batchs_auth_values_are_no_log_at_any_depth():
    validator = ModuleArgumentSpecValidator(module.argument_spec(), **module.ARGUMENT_SPEC_OPTIONS)
    result = validator.validate({"product": PRODUCT, "access_key": ACCESS_KEY, "webhooks": [
        hook("a", env("prd", PAID, {"body": {"nested": {"deep": SECRET}}}))]})
    assert SECRET in result._no_log_values and ACCESS_KEY in result._no_log_values
