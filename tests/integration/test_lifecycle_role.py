"""The role's opt-in pruning (issue 13) in one real playbook against one real ductape-local --test-mode.

The inventory (hosts added by the play) declares payment_succeeded in prd (full mode) and stg (link
mode). Registered beforehand, outside the inventory: charge_refunded in prd, dispute_created in dev (an env
no host defines any more), and a registration of another access tag. The role runs without pruning
(nothing undeclared is touched); with pruning that disables, in check mode (shown, nothing written), for
real and again (no write); with charge_refunded declared again (enabled on the same link); then with
pruning that removes, in check mode, for real (the link-mode env and the other access tag kept), and
again (no write).
"""
from __future__ import annotations

import pytest
import requests

from ductape_local.testing import LocalServer
from playbook import Step, run_steps

PRODUCT = "my-product"
ACCESS_TAG = "stripe-payments"
OTHER_TAG = "paystack-payments"
KEY = "dtl_lifecycle_role_key_51be0a"
OBSERVER_KEY = "dtl_lifecycle_role_observer_9c3f"
SEED = {
    "access_keys": [{"key": KEY, "products": [PRODUCT]}, {"key": OBSERVER_KEY, "products": [PRODUCT]}],
    "products": [{"tag": PRODUCT, "envs": ["prd", "stg", "dev"], "connections": [
        {"access_tag": ACCESS_TAG, "app": "stripe", "envs": {"prd": "live", "stg": "test", "dev": "test"}},
        {"access_tag": OTHER_TAG, "app": "paystack", "envs": {"prd": "live"}},
    ]}],
    "apps": [
        {"tag": "stripe", "webhooks": [{"tag": "payment_succeeded", "name": "Payment succeeded"},
                                       {"tag": "charge_refunded", "name": "Charge refunded"},
                                       {"tag": "dispute_created", "name": "Dispute created"}]},
        {"tag": "paystack", "webhooks": [{"tag": "transfer_success", "name": "Transfer success"}]},
    ],
}
UNDECLARED = [(ACCESS_TAG, "charge_refunded", "prd"), (ACCESS_TAG, "dispute_created", "dev"),
              (OTHER_TAG, "transfer_success", "prd")]


DECLARED = [{"access_tag": ACCESS_TAG, "webhook_tag": "payment_succeeded", "path": "/hooks/paid"}]
REDECLARED = DECLARED + [{"access_tag": ACCESS_TAG, "webhook_tag": "charge_refunded", "path": "/hooks/refunded",
                          "envs": ["prd"]}]


def role(check_mode=False, **variables):
    # ductape_webhooks is a task variable, not an extra var, so that one step can declare more.
    task = {"ansible.builtin.include_role": {"name": "ductape.webhooks.register"},
            "vars": {"ductape_webhooks": DECLARED, **variables}}
    if check_mode:
        task["ansible.builtin.include_role"]["apply"] = {"check_mode": True}
    return task


def rows(name, check_mode):
    return Step(name, {"ansible.builtin.set_fact": {
        "rows": "{{ ductape_webhook_registrations }}",
        "summary": "{{ ductape_webhook_registrations | ductape.webhooks.register_summary('%s', %s) }}"
                   % (PRODUCT, check_mode)}}, read_state=False)


PRUNE = {"ductape_webhooks_prune": True, "ductape_webhooks_prune_action": "absent"}
PRUNE_DISABLED = {"ductape_webhooks_prune": True, "ductape_webhooks_prune_action": "disabled"}
STEPS = [
    Step("host_prd", {"ansible.builtin.add_host": {"name": "prd", "groups": "ductape_environments",
                                                   "ductape_receiver_base_url": "https://api.example.com"}},
         read_state=False),
    Step("host_stg", {"ansible.builtin.add_host": {"name": "stg", "groups": "ductape_environments",
                                                   "ductape_receiver_base_url": "https://stg.example.com",
                                                   "ductape_registration_mode": "link"}}, read_state=False),
    Step("plain", role()),
    Step("plain_again", role()),
    Step("disable_check", role(check_mode=True, **PRUNE_DISABLED)),
    rows("disable_check_rows", True),
    Step("disable", role(**PRUNE_DISABLED)),
    Step("disable_again", role(**PRUNE_DISABLED)),
    Step("redeclare", role(ductape_webhooks=REDECLARED, **PRUNE_DISABLED)),
    Step("prune_check", role(check_mode=True, **PRUNE)),
    rows("prune_check_rows", True),
    Step("prune", role(**PRUNE)),
    rows("prune_rows", False),
    Step("prune_again", role(**PRUNE)),
]


@pytest.fixture(scope="module")
def server():
    with LocalServer(SEED) as running:
        for access_tag, webhook_tag, env in UNDECLARED:
            answer = requests.post(running.url + "/webhooks/v1/generate-link",
                                   headers={"Authorization": f"Bearer {OBSERVER_KEY}"},
                                   json={"product": PRODUCT, "access_tag": access_tag, "webhook_tag": webhook_tag,
                                         "env": env, "url": "https://old.example.com/" + webhook_tag,
                                         "method": "POST"}, timeout=30)
            assert answer.status_code == 200, answer.text
        yield running


@pytest.fixture(scope="module")
def run(server, tmp_path_factory):
    return run_steps(tmp_path_factory.mktemp("lifecycle-role"), server, OBSERVER_KEY, STEPS,
                     state_query={"product": PRODUCT, "access_tag": ACCESS_TAG},
                     extra_vars={"ductape_api_url": server.url, "ductape_access_key": KEY, "ductape_product": PRODUCT},
                     diff=True)


def states(run, step):
    """{(webhook_tag, env): (state, uuid)} of the stripe-payments registrations right after ``step``."""
    return {(webhook["tag"], registration["productEnv"]): (registration["state"], registration["uuid"])
            for webhook in run.state(step) for registration in webhook["config"]}


def registered(run, step):
    """{(webhook_tag, env)} of the stripe-payments registrations right after ``step``."""
    return {(webhook["tag"], registration["productEnv"]) for webhook in run.state(step)
            for registration in webhook["config"]}


def writes(run, step):
    return {route: count for route, count in run.delta(step)["requests"].items() if not route.startswith("GET")}


def test_without_pruning_nothing_undeclared_is_touched(run):
    assert registered(run, "plain") == {("payment_succeeded", "prd"), ("payment_succeeded", "stg"),
                                        ("charge_refunded", "prd"), ("dispute_created", "dev")}
    assert "DELETE /webhooks/v1/registrations/{uuid}" not in writes(run, "plain")
    assert writes(run, "plain_again") == {}


def test_pruning_that_disables_is_shown_in_check_mode_then_disables_only_the_undeclared_ones(run):
    assert writes(run, "disable_check") == {}
    assert states(run, "disable_check") == states(run, "plain_again")
    facts = run.result("disable_check_rows")["ansible_facts"]
    pruned = sorted((row["webhook_tag"], row["env"], row["action"]) for row in facts["rows"] if row["pruned"])
    assert pruned == [("charge_refunded", "prd", "disabled"), ("dispute_created", "dev", "disabled")]
    assert "charge_refunded: would be disabled" in "\n".join(facts["summary"])

    assert writes(run, "disable") == {"POST /webhooks/v1/registrations/{uuid}/disable": 2}
    before, after = states(run, "plain_again"), states(run, "disable")
    assert {key: state for key, (state, _uuid) in after.items()} == {
        ("payment_succeeded", "prd"): "enabled", ("payment_succeeded", "stg"): "enabled",
        ("charge_refunded", "prd"): "disabled", ("dispute_created", "dev"): "disabled"}
    assert {key: uuid for key, (_state, uuid) in after.items()} == {key: uuid for key, (_state, uuid) in before.items()}
    assert writes(run, "disable_again") == {}


def test_a_disabled_registration_declared_again_is_enabled_on_the_same_link(run):
    before, after = states(run, "disable"), states(run, "redeclare")
    assert after[("charge_refunded", "prd")] == ("enabled", before[("charge_refunded", "prd")][1])
    assert after[("dispute_created", "dev")][0] == "disabled", "still undeclared: left disabled"
    assert writes(run, "redeclare")["POST /webhooks/v1/registrations/{uuid}/enable"] == 1


def test_pruning_in_check_mode_shows_what_it_would_remove_and_writes_nothing(run):
    assert writes(run, "prune_check") == {}
    assert registered(run, "prune_check") == registered(run, "plain")
    assert states(run, "prune_check") == states(run, "redeclare")
    facts = run.result("prune_check_rows")["ansible_facts"]
    pruned = sorted((row["webhook_tag"], row["env"], row["action"]) for row in facts["rows"] if row["pruned"])
    assert pruned == [("charge_refunded", "prd", "deleted"), ("dispute_created", "dev", "deleted")]
    assert not any(row["paste_link"] for row in facts["rows"] if row["pruned"])
    summary = "\n".join(facts["summary"])
    assert "charge_refunded: would be deleted" in summary and "no longer declared in the inventory" in summary
    assert "dev (no host of the inventory):" in summary


def test_pruning_removes_only_the_undeclared_registrations_of_the_inventorys_access_tags(run, server):
    assert writes(run, "prune") == {"DELETE /webhooks/v1/registrations/{uuid}": 2}
    assert registered(run, "prune") == {("payment_succeeded", "prd"), ("payment_succeeded", "stg")}, \
        "the link-mode env (stg) is declared too"
    other = requests.get(server.url + "/webhooks/v1/webhooks", params={"product": PRODUCT, "access_tag": OTHER_TAG},
                         headers={"Authorization": f"Bearer {OBSERVER_KEY}"}, timeout=30).json()["data"]
    assert [len(webhook["config"]) for webhook in other] == [1], "another access tag is never pruned"
    assert writes(run, "prune_again") == {}
