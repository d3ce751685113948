"""The role and the lifecycle modules against ductape-local --compat ductape, as a user would run them.

One ansible-playbook run (-vvv) against a compat server with its links on another host. The connection
comes from the environment, as a user sets it for the hosted API: DUCTAPE_TOKEN_EXCHANGE and
DUCTAPE_AUTH_HEADER, nothing in the play. The role registers a product named as Ductape names a new one
(acme_space:shop, access tag ductape:paystack, envs snd in link mode and prd in full mode with auth
keyed by the workspace-prefixed access tag); its summary must say what this server does not report
(provider status, links of full registrations) instead of claiming "no provider registration endpoint"
or "(created on a real run)" after a real run. Then every operation that needs one of this project's
extensions (test, replay, deliveries, disable, rotate, prune) must fail naming the operation and saying
that this Ductape API does not offer it: no traceback, no secret.
"""
from __future__ import annotations

import ast
import json

import pytest
import yaml

from ductape_local.testing import LocalServer
from playbook import LOCALHOST_VARS, REPO, Step, run_playbook, run_steps

PRODUCT = "acme_space:shop"
ACCESS_TAG = "ductape:paystack"
KEY = "dtl_compat_role_key_2f81c0"
SECRET = "sk_live_compat_role_secret_77a1"
INGRESS = "https://webhooks.ductape.test"
SEED = {
    "access_keys": [{"key": KEY, "products": [PRODUCT]}],
    "products": [{"tag": PRODUCT, "envs": ["snd", "prd"],
                  "connections": [{"access_tag": ACCESS_TAG, "app": "paystack", "envs": {"snd": "test", "prd": "live"}}]}],
    "apps": [{"tag": "paystack", "webhooks": [{"tag": "charge_success", "name": "Charge success"},
                                              {"tag": "transfer_success", "name": "Transfer success"}]}],
}
ENV = {"DUCTAPE_ACCESS_KEY": KEY, "DUCTAPE_TOKEN_EXCHANGE": "ductape-local", "DUCTAPE_AUTH_HEADER": "x-access-token"}
WEBHOOKS = [{"access_tag": ACCESS_TAG, "webhook_tag": "charge_success", "path": "/hooks/paystack/charge-success"}]
NOT_OFFERED = "does not offer it"


def role(check_mode=False, **variables):
    task = {"ansible.builtin.include_role": {"name": "ductape.webhooks.register"},
            "vars": {"ductape_product": PRODUCT, "ductape_webhooks": WEBHOOKS, **variables}}
    if check_mode:
        task["ansible.builtin.include_role"]["apply"] = {"check_mode": True}
    return task


def summary(check_mode=False):
    return {"ansible.builtin.set_fact": {
        "rows": "{{ ductape_webhook_registrations }}",
        "summary": "{{ ductape_webhook_registrations | ductape.webhooks.register_summary('%s', %s) }}"
                   % (PRODUCT, check_mode)}}


def module(name, check_mode=None, expect_failure=True, **args):
    return dict(task={"ductape.webhooks." + name: {"product": PRODUCT, **args}}, check_mode=check_mode,
                expect_failure=expect_failure, read_state=False)


ONE = {"access_tag": ACCESS_TAG, "webhook_tag": "charge_success"}
STEPS = [
    Step("host_prd", {"ansible.builtin.add_host": {
        "name": "prd", "groups": "ductape_environments", "ductape_receiver_base_url": "https://shop.example.com",
        "ductape_webhook_auth": {ACCESS_TAG: {"headers": {"Authorization": "Bearer " + SECRET}}}},
        "no_log": True}, read_state=False),  # add_host would print the host's variables, the secret among them
    Step("host_snd", {"ansible.builtin.add_host": {
        "name": "snd", "groups": "ductape_environments", "ductape_receiver_base_url": "https://snd.shop.example.com",
        "ductape_registration_mode": "link"}}, read_state=False),
    Step("role_check", role(check_mode=True), read_state=False),
    Step("role_check_rows", summary(check_mode=True), read_state=False),
    Step("role", role(), read_state=False),
    Step("role_rows", summary(), read_state=False),
    Step("role_send", role(ductape_auth_unknown="send"), read_state=False),
    Step("role_send_rows", summary(), read_state=False),
    Step("test_event", **module("ductape_webhook_test", env="prd", **ONE)),
    Step("test_event_check", **module("ductape_webhook_test", check_mode=True, env="prd", **ONE)),
    Step("replay", **module("ductape_webhook_replay", status="failed")),
    Step("replay_check", **module("ductape_webhook_replay", check_mode=True, event_ids=["evt_1"])),
    Step("delivery", **module("ductape_webhook_delivery_info", event_id="evt_1")),
    Step("disable", **module("ductape_webhook", state="disabled", envs=[{"slug": "prd"}], **ONE)),
    Step("disable_check", **module("ductape_webhook", check_mode=True, state="disabled", envs=[{"slug": "prd"}],
                                   **ONE)),
    Step("rotate", **module("ductape_webhook", link_generation=2,
                            envs=[{"slug": "prd", "url": "https://shop.example.com/hooks/paystack/charge-success"}],
                            **ONE)),
    Step("prune", **module("ductape_webhook", prune="absent", webhooks=[
        {"access_tag": ACCESS_TAG, "webhook_tag": "transfer_success",
         "envs": [{"slug": "prd", "url": "https://shop.example.com/hooks/paystack/transfer-success"}]}])),
]


@pytest.fixture(scope="module")
def server():
    with LocalServer(SEED, compat="ductape", ingress_url=INGRESS) as running:
        yield running


@pytest.fixture(scope="module")
def run(server, tmp_path_factory):
    return run_steps(tmp_path_factory.mktemp("compat-role"), server, KEY, STEPS,
                     module_defaults={"group/ductape.webhooks.ductape": {"api_url": "{{ server_url }}", "retries": 0}},
                     extra_vars={"ductape_api_url": "{{ server_url }}", "ductape_retries": 0},
                     verbosity=3, env=ENV)


def facts(run, step):
    return run.result(step)["ansible_facts"]


def test_the_role_registers_workspace_prefixed_tags_and_its_summary_says_what_the_api_does_not_report(run):
    rows = {row["env"]: row for row in facts(run, "role_rows")["rows"]}
    assert set(rows) == {"snd", "prd"}
    assert all((row["access_tag"], row["webhook_tag"]) == (ACCESS_TAG, "charge_success") for row in rows.values())
    assert rows["prd"]["action"] == "created" and rows["prd"]["link"] is None
    assert rows["prd"]["provider_reported"] is False and rows["prd"]["provider_registration"] is None
    assert rows["snd"]["link"].startswith(INGRESS + "/webhooks/v1/process/")  # the server's link, on its host
    lines = facts(run, "role_rows")["summary"]
    assert ("  ductape:paystack/charge_success: created, POST https://shop.example.com/hooks/paystack/charge-success "
            "(the API does not say whether the provider holds the link)") in lines
    assert "  prd  ductape:paystack/charge_success  (the API's answers give no link for it)" in lines
    assert not any("created on a real run" in line or "no provider registration endpoint" in line for line in lines)
    # check mode said what a real run would do, writing nothing
    checked = facts(run, "role_check_rows")["summary"]
    assert checked[0].endswith("(check mode: nothing was written)")
    assert "  prd  ductape:paystack/charge_success  (created on a real run)" in checked


def test_the_role_with_auth_unknown_send_reports_unchanged_where_url_and_method_match(run):
    rows = {row["env"]: row for row in facts(run, "role_send_rows")["rows"]}
    assert rows["prd"]["action"] == "unchanged" and rows["snd"]["action"] == "unchanged"
    assert "auth_unknown: send" in run.output


@pytest.mark.parametrize("step, operation", [
    ("test_event", "send a test event through the registration "),
    # check mode cannot ask the server: it reads the row, which shows no lifecycle state
    ("test_event_check", "send a test event through ductape:paystack/charge_success in env prd: "),
    ("replay", "replay the deliveries of product acme_space:shop: "),
    ("replay_check", "replay the deliveries of product acme_space:shop (dry run): "),
    ("delivery", "read the delivery evt_1: "),
    ("disable", "disable the registration "),
    ("disable_check", 'disable the registration in env "prd": '),
    ("rotate", 'link_generation: rotate the link in env "prd": '),
    # transfer_success is registered; the role's charge_success, undeclared here, cannot be removed
    ("prune", "1 of 2 webhooks failed: ductape:paystack/charge_success: delete the registration "),
])
def test_every_extension_fails_naming_the_operation_and_saying_this_api_does_not_offer_it(run, step, operation):
    message = run.result(step)["msg"]
    assert message.startswith(operation), message
    assert "this Ductape API" in message and NOT_OFFERED in message, message


def test_nothing_failed_with_a_traceback_and_no_secret_or_token_was_printed(run):
    # (the add_host step's own registered result holds the host's variables: it is the test's, not printed)
    text = run.output + json.dumps({name: step for name, step in run.data.items() if name != "host_prd"})
    assert "Traceback" not in text
    for secret in (KEY, SECRET):
        assert secret not in text
    assert "dts_" not in text  # the session tokens' prefix


def example(module_name, title_start):
    """The task of a module's EXAMPLES whose name starts with ``title_start``, as the reference prints it."""
    tree = ast.parse((REPO / "plugins" / "modules" / (module_name + ".py")).read_text(encoding="utf-8"))
    [examples] = [node.value.value for node in tree.body if isinstance(node, ast.Assign)
                  and [target.id for target in node.targets if isinstance(target, ast.Name)] == ["EXAMPLES"]]
    [task] = [task for task in yaml.safe_load(examples) if task["name"].startswith(title_start)]
    return task


def test_the_new_product_examples_run_as_written_against_the_compat_server(server, tmp_path):
    """The modules' examples of a new product (acme_space:shop, ductape:paystack, snd and prd) against a
    server answering as the hosted Ductape, only the connection pointed at it."""
    register = example("ductape_webhook", "A new product on the hosted Ductape")
    link = example("ductape_webhook_link", "The sandbox link of a new product")
    for task in (register, link):
        arguments = task["ductape.webhooks." + ("ductape_webhook" if task is register else "ductape_webhook_link")]
        assert arguments["product"] == PRODUCT and arguments["access_tag"] == ACCESS_TAG
    slugs = [env["slug"] for env in register["ductape.webhooks.ductape_webhook"]["envs"]]
    assert slugs == ["snd", "prd"] and link["ductape.webhooks.ductape_webhook_link"]["env"] == "snd"
    register["module_defaults"]["group/ductape.webhooks.ductape"].update(
        api_url=server.url, access_key="{{ key }}", token_exchange="ductape-local", retries=0)
    link["register"] = "sandbox_link"
    play = [{"hosts": "localhost", "gather_facts": False,
             "vars": dict(LOCALHOST_VARS, vault_ductape_access_key=KEY, vault_paystack_secret_key=SECRET),
             # the link example sets no connection: the play's module_defaults, as in the modules' other examples
             "module_defaults": {"group/ductape.webhooks.ductape": {"api_url": server.url, "access_key": "{{ key }}",
                                                                    "token_exchange": "ductape-local"}},
             "tasks": [dict(register, register="registered"), link,
                       {"ansible.builtin.copy": {"content": "{{ {'registered': registered, 'link': sandbox_link} "
                                                            "| to_json }}", "dest": str(tmp_path / "out.json")}}]}]
    done = run_playbook(tmp_path, yaml.safe_dump(play), {"key": KEY}, env={})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    out = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert [env["slug"] for env in out["registered"]["envs"]] == ["snd", "prd"]
    assert out["link"]["link"].startswith(INGRESS + "/webhooks/v1/process/")
    assert SECRET not in done.stdout + done.stderr and KEY not in done.stdout + done.stderr
