"""ductape.webhooks.ductape_webhook's batch form (option `webhooks`) in real playbooks against ductape-local.

One ansible-playbook run (-vvv --diff) does the sequence; around every step the server's request counts
are read (/_local/stats) and after it the stored registrations, through an observer key. Check mode
writes nothing; apply writes one register request per webhook that differs; a second run reads once
per webhook and writes nothing; one webhook failing leaves the others written and fails the task naming
it; both forms at once, or neither, are refused before any request; a bad env deep in the batch refuses
the whole batch before any request; state=absent deletes per webhook. A second, shorter run does the
same through AnsiballZ (ductape_run_on_controller: false). Nothing printed holds a secret.
"""
from __future__ import annotations

import json

import pytest

from ductape_local.auth_digest import auth_matches
from ductape_local.testing import LocalServer
from playbook import Step, run_steps

PRODUCT = "batch-product"
ACCESS_TAG = "stripe-payments"
MODULE_KEY = "dtl_batch_module_key_2f61c4"
OBSERVER_KEY = "dtl_batch_observer_key_77ae"
PRD_SECRET = "sk_live_batch_prd_secret_93d1"
PRD_SECRET_2 = "sk_live_batch_prd_secret_2_4c0e"
STG_SECRET = "tok_batch_stg_secret_a81f"
SECRETS = (MODULE_KEY, PRD_SECRET, PRD_SECRET_2, STG_SECRET)

TAGS = ["payment_succeeded", "charge_refunded", "dispute_created", "payout_paid"]
MODULE_MODE_TAGS = ["invoice_paid", "invoice_failed"]

SEED = {
    "access_keys": [
        {"key": MODULE_KEY, "products": [PRODUCT]},
        {"key": OBSERVER_KEY, "products": [PRODUCT]},
    ],
    "products": [
        # qas is an env of the product that the connection does not map: the server refuses it (422).
        {"tag": PRODUCT, "envs": ["prd", "stg", "qas"],
         "connections": [{"access_tag": ACCESS_TAG, "app": "stripe", "envs": {"prd": "live", "stg": "test"}}]},
    ],
    "apps": [{"tag": "stripe", "webhooks": [{"tag": tag, "name": tag.replace("_", " ")}
                                            for tag in TAGS + MODULE_MODE_TAGS]}],
}

PRD_AUTH = {"headers": {"Authorization": f"Bearer {PRD_SECRET}"}}
PRD_AUTH_2 = {"headers": {"Authorization": f"Bearer {PRD_SECRET_2}"}}
STG_AUTH = {"query": {"token": STG_SECRET}}


def url(env: str, tag: str, version: str = "v1") -> str:
    return f"https://{env}.example.com/hooks/{version}/{tag}"


def envs(tag: str, stg_version: str = "v1", prd_auth=None) -> list[dict]:
    return [{"slug": "prd", "url": url("prd", tag), "auth": prd_auth or PRD_AUTH},
            {"slug": "stg", "url": url("stg", tag, stg_version), "method": "PUT", "auth": STG_AUTH}]


def batch(webhooks: list[dict], **options) -> dict:
    return {"ductape.webhooks.ductape_webhook": {"product": PRODUCT, "webhooks": webhooks, **options}}


def hook(tag: str, hook_envs: list[dict] | None = None) -> dict:
    return {"access_tag": ACCESS_TAG, "webhook_tag": tag, "envs": envs(tag) if hook_envs is None else hook_envs}


ALL = [hook(tag) for tag in TAGS]
# charge_refunded's stg moves to v2 and payment_succeeded's prd auth value changes; the others stay.
CHANGED = [hook(TAGS[0], envs(TAGS[0], prd_auth=PRD_AUTH_2)), hook(TAGS[1], envs(TAGS[1], "v2"))] + ALL[2:]
# dispute_created asks for qas (refused by the server), payout_paid for a webhook the app does not
# define; charge_refunded moves to v3 and must be written all the same.
ONE_FAILING = [
    hook(TAGS[0], envs(TAGS[0], prd_auth=PRD_AUTH_2)),
    hook(TAGS[1], envs(TAGS[1], "v3")),
    hook(TAGS[2], [{"slug": "prd", "url": url("prd", TAGS[2])}, {"slug": "qas", "url": url("qas", TAGS[2])}]),
    hook("no_such_webhook", [{"slug": "prd", "url": url("prd", "none")}]),
]
# Everything valid but webhooks[3].envs[1]: the batch is refused before any request.
BAD_DEEP = [hook(TAGS[0], envs(TAGS[0], "v9"))] + ALL[1:3] + [
    hook(TAGS[3], [{"slug": "prd", "url": url("prd", TAGS[3])}, {"slug": "stg", "url": "ftp://stg.example.com/x"}])]
ABSENT = [hook(TAGS[0], [{"slug": "stg"}]), hook(TAGS[1], [{"slug": "stg"}]), hook(TAGS[2], [{"slug": "qas"}])]

STEPS = [
    Step("check_create", batch(ALL), check_mode=True),
    Step("create", batch(ALL)),
    Step("again", batch(ALL)),
    Step("check_change", batch(CHANGED), check_mode=True),
    Step("change", batch(CHANGED)),
    Step("one_failing", batch(ONE_FAILING, retries=0), expect_failure=True),
    Step("both_forms", batch(ALL, access_tag=ACCESS_TAG), expect_failure=True),
    Step("neither_form", {"ductape.webhooks.ductape_webhook": {"product": PRODUCT}}, expect_failure=True),
    Step("bad_env_deep", batch(BAD_DEEP), expect_failure=True),
    Step("check_absent", batch(ABSENT, state="absent"), check_mode=True),
    Step("absent", batch(ABSENT, state="absent")),
    Step("absent_again", batch(ABSENT, state="absent")),
]

MODULE_DEFAULTS = {"group/ductape.webhooks.ductape": {"api_url": "{{ server_url }}", "access_key": "{{ module_key }}"}}
STATE_QUERY = {"product": PRODUCT, "access_tag": ACCESS_TAG}


@pytest.fixture(scope="module")
def server():
    with LocalServer(SEED) as running:
        yield running


@pytest.fixture(scope="module")
def run(server, tmp_path_factory):
    return run_steps(tmp_path_factory.mktemp("ductape-webhook-batch"), server, OBSERVER_KEY, STEPS,
                     module_defaults=MODULE_DEFAULTS, state_query=STATE_QUERY,
                     extra_vars={"module_key": MODULE_KEY}, verbosity=3, diff=True,
                     # ansible-core 2.21 returns invocation only when asked; older cores ignore this.
                     env={"ANSIBLE_INJECT_INVOCATION": "true"})


def stored(run, step: str) -> dict[str, dict[str, dict]]:
    """{webhook tag: {env: registration}} as the server listed it right after `step`."""
    return {webhook["tag"]: {r["productEnv"]: r for r in webhook["config"]} for webhook in run.state(step)}


def outcomes(result: dict) -> dict[str, dict]:
    return {outcome["webhook_tag"]: outcome for outcome in result.get("webhooks", [])}


def actions(result: dict) -> dict[str, dict[str, str]]:
    return {tag: {env["slug"]: env["action"] for env in outcome["envs"]} for tag, outcome in outcomes(result).items()}


def previous(step: str) -> str:
    names = [s.name for s in STEPS]
    return names[names.index(step) - 1]


def test_check_mode_decides_every_webhook_and_writes_nothing(run):
    result = run.result("check_create")
    assert result["changed"] is True
    assert actions(result) == {tag: {"prd": "created", "stg": "created"} for tag in TAGS}, run.describe("check_create")
    assert run.delta("check_create")["writes"] == 0
    assert all(not registrations for registrations in stored(run, "check_create").values())


def test_apply_writes_one_register_request_per_webhook(run):
    result = run.result("create")
    assert result["changed"] is True and not result.get("failed")
    assert actions(result) == {tag: {"prd": "created", "stg": "created"} for tag in TAGS}, run.describe("create")
    assert run.delta("create")["requests"] == {"GET /webhooks/v1/webhooks": 4, "POST /webhooks/v1/register": 4}, \
        run.describe("create")
    after = stored(run, "create")
    for tag in TAGS:
        assert auth_matches(after[tag]["prd"]["auth_digest"], PRD_AUTH)
        assert (after[tag]["stg"]["url"], after[tag]["stg"]["method"]) == (url("stg", tag), "PUT")
        links = {env["slug"]: env["link"] for env in outcomes(result)[tag]["envs"]}
        assert links == {env: after[tag][env]["link"] for env in ("prd", "stg")}


def test_a_no_op_rerun_reads_once_per_webhook_and_writes_nothing(run):
    result = run.result("again")
    assert result["changed"] is False, run.describe("again")
    assert all(outcome["changed"] is False for outcome in result["webhooks"])
    assert actions(result) == {tag: {"prd": "unchanged", "stg": "unchanged"} for tag in TAGS}
    assert run.delta("again") == {"reads": 4, "writes": 0, "requests": {"GET /webhooks/v1/webhooks": 4}}
    assert stored(run, "again") == stored(run, "create")


def test_only_the_webhooks_that_differ_are_written_and_the_diff_names_them(run):
    check = run.result("check_change")
    assert run.delta("check_change")["writes"] == 0
    result = run.result("change")
    expected = {TAGS[0]: {"prd": "updated", "stg": "unchanged"}, TAGS[1]: {"prd": "unchanged", "stg": "updated"},
                TAGS[2]: {"prd": "unchanged", "stg": "unchanged"}, TAGS[3]: {"prd": "unchanged", "stg": "unchanged"}}
    assert actions(check) == actions(result) == expected, run.describe("change")
    assert run.delta("change")["requests"] == {"GET /webhooks/v1/webhooks": 4, "POST /webhooks/v1/register": 2}
    assert [outcome["changed"] for outcome in result["webhooks"]] == [True, True, False, False]
    after = stored(run, "change")
    assert auth_matches(after[TAGS[0]]["prd"]["auth_digest"], PRD_AUTH_2)
    assert after[TAGS[1]]["stg"]["url"] == url("stg", TAGS[1], "v2")
    assert after[TAGS[2]] == stored(run, "again")[TAGS[2]]
    for diff in (check["diff"], result["diff"]):
        first, second = f"{ACCESS_TAG}/{TAGS[0]}", f"{ACCESS_TAG}/{TAGS[1]}"
        assert set(diff["before"]) == set(diff["after"]) == {first, second}, diff
        assert set(diff["after"][first]) == {"prd"} and set(diff["after"][second]) == {"stg"}
        assert diff["after"][second]["stg"]["url"] == url("stg", TAGS[1], "v2")
        assert diff["after"][first]["prd"]["auth"] == {"headers": {"Authorization": "******** (changed)"}}


def test_one_webhook_failing_leaves_the_others_written_and_fails_naming_each(run):
    result = run.result("one_failing")
    assert result["failed"] is True and result["changed"] is True, run.describe("one_failing")
    message = result["msg"]
    assert message.startswith("2 of 4 webhooks failed: "), message
    assert f"{ACCESS_TAG}/{TAGS[2]}: register {ACCESS_TAG}/{TAGS[2]} in prd, qas: HTTP 422" in message, message
    assert (f'{ACCESS_TAG}/no_such_webhook: webhooks[3].webhook_tag: "no_such_webhook" is not a webhook of the app '
            f'behind access tag "{ACCESS_TAG}" (its webhooks: ') in message, message
    by_tag = outcomes(result)
    assert by_tag[TAGS[0]]["changed"] is False and "failed" not in by_tag[TAGS[0]]
    assert by_tag[TAGS[1]]["changed"] is True and "failed" not in by_tag[TAGS[1]]
    assert by_tag[TAGS[2]]["failed"] is True and "not mapped" in by_tag[TAGS[2]]["msg"]
    assert [env["action"] for env in by_tag[TAGS[2]]["envs"]] == [None, None]
    assert by_tag["no_such_webhook"]["failed"] is True
    # The refused register request counts as a write on the server; nothing of it is stored.
    # Four filtered reads, and the app's listing that names its webhooks for the unknown one.
    assert run.delta("one_failing")["requests"] == {"GET /webhooks/v1/webhooks": 5, "POST /webhooks/v1/register": 2}
    before, after = stored(run, "change"), stored(run, "one_failing")
    assert after[TAGS[1]]["stg"]["url"] == url("stg", TAGS[1], "v3")
    assert after[TAGS[2]] == before[TAGS[2]] and "qas" not in after[TAGS[2]]
    assert set(result["diff"]["after"]) == {f"{ACCESS_TAG}/{TAGS[1]}"}


@pytest.mark.parametrize("step, message", [
    ("both_forms", "parameters are mutually exclusive: webhooks|access_tag"),
    ("neither_form", "one of the two forms is required: access_tag, webhook_tag and envs (one webhook), "
                     "or webhooks (several)"),
])
def test_the_two_forms_are_exclusive_and_one_is_required(run, step, message):
    result = run.result(step)
    assert result["failed"] is True and result["msg"] == message, run.describe(step)
    assert run.delta(step) == {"reads": 0, "writes": 0, "requests": {}}


def test_a_bad_env_deep_in_the_batch_refuses_everything_before_any_request(run):
    result = run.result("bad_env_deep")
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"] == ('nothing was written: webhooks[3].envs[1].url: must be an absolute http:// or https:// '
                             'URL (got "ftp://stg.example.com/x" in env "stg")')
    assert run.delta("bad_env_deep") == {"reads": 0, "writes": 0, "requests": {}}
    assert stored(run, "bad_env_deep") == stored(run, previous("bad_env_deep"))


def test_absent_deletes_per_webhook_in_check_mode_nothing(run):
    check, result = run.result("check_absent"), run.result("absent")
    expected = {TAGS[0]: {"stg": "deleted"}, TAGS[1]: {"stg": "deleted"}, TAGS[2]: {"qas": "absent"}}
    assert actions(check) == actions(result) == expected, run.describe("absent")
    assert run.delta("check_absent")["writes"] == 0
    assert run.delta("absent")["requests"] == {"GET /webhooks/v1/webhooks": 3,
                                               "DELETE /webhooks/v1/registrations/{uuid}": 2}
    after = stored(run, "absent")
    assert set(after[TAGS[0]]) == set(after[TAGS[1]]) == {"prd"} and set(after[TAGS[2]]) == {"prd", "stg"}
    again = run.result("absent_again")
    assert again["changed"] is False and run.delta("absent_again")["writes"] == 0


def test_nothing_printed_at_vvv_with_diff_holds_a_secret(run):
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in run.output
    for secret in SECRETS:
        assert secret not in run.output, f"a secret ({secret[:8]}...) was printed"
        assert secret not in json.dumps(run.data), f"a registered result holds a secret ({secret[:8]}...)"


# The same batch run the usual way (AnsiballZ in a fresh Python), not in the controller process.

MODULE_MODE = [hook(tag) for tag in MODULE_MODE_TAGS]
MODULE_MODE_STEPS = [
    Step("create", batch(MODULE_MODE)),
    Step("again", batch(MODULE_MODE)),
    Step("one_failing", batch([hook(MODULE_MODE_TAGS[0], envs(MODULE_MODE_TAGS[0], "v2")),
                               hook(MODULE_MODE_TAGS[1], [{"slug": "qas", "url": url("qas", "x")}])], retries=0),
         expect_failure=True),
    Step("bad_env_deep", batch([hook(MODULE_MODE_TAGS[0]), hook(MODULE_MODE_TAGS[1], [{"slug": "prd"}])]),
         expect_failure=True),
]


@pytest.fixture(scope="module")
def module_mode_run(server, run, tmp_path_factory):
    return run_steps(tmp_path_factory.mktemp("ductape-webhook-batch-module"), server, OBSERVER_KEY, MODULE_MODE_STEPS,
                     module_defaults=MODULE_DEFAULTS, state_query=STATE_QUERY,
                     extra_vars={"module_key": MODULE_KEY, "ductape_run_on_controller": False},
                     verbosity=3, diff=True)


def test_as_a_module_the_batch_decides_writes_and_fails_the_same(module_mode_run):
    run = module_mode_run
    assert "running the module on the target" in run.output
    assert run.delta("create")["requests"] == {"GET /webhooks/v1/webhooks": 2, "POST /webhooks/v1/register": 2}
    assert run.delta("again") == {"reads": 2, "writes": 0, "requests": {"GET /webhooks/v1/webhooks": 2}}
    assert run.result("again")["changed"] is False
    failing = run.result("one_failing")
    assert failing["changed"] is True and failing["msg"].startswith("1 of 2 webhooks failed: "), failing["msg"]
    assert [outcome.get("failed", False) for outcome in failing["webhooks"]] == [False, True]
    assert run.result("bad_env_deep")["msg"] == (
        'nothing was written: webhooks[1].envs[0].url: is required in env "prd"')
    assert run.delta("bad_env_deep")["requests"] == {}
    for secret in SECRETS:
        assert secret not in run.output, f"a secret ({secret[:8]}...) was printed"
