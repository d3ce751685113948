"""Templates inside ``ductape_webhooks`` are rendered by the role as ansible-core renders any variable.

The role's task renders only the strings of ``ductape_webhooks`` that may hold a template (each on its own,
as ansible-core's templating of the whole list renders them, see benchmarks/README.md); this proves that
templates anywhere in it still reach the API rendered: a path, a method, an override URL, an auth header
(a vaulted secret is a variable like this one), a whole ``envs`` list and a whole webhook entry.
"""
from __future__ import annotations

import pytest
import requests

from ductape_local.testing import LocalServer
from playbook import Step, run_steps

PRODUCT = "my-product"
ACCESS_TAG = "stripe-payments"
KEY = "dtl_role_templated_key_2b7f"
OBSERVER_KEY = "dtl_role_templated_observer_e51c"
SECRET = "sk_role_templated_secret_91d0"
SEED = {
    "access_keys": [{"key": KEY, "products": [PRODUCT]}, {"key": OBSERVER_KEY, "products": [PRODUCT]}],
    "products": [{"tag": PRODUCT, "envs": ["prd", "stg"], "connections": [
        {"access_tag": ACCESS_TAG, "app": "stripe", "envs": {"prd": "live", "stg": "test"}}]}],
    "apps": [{"tag": "stripe", "webhooks": [{"tag": "payment_succeeded", "name": "Payment succeeded"},
                                            {"tag": "charge_refunded", "name": "Charge refunded"},
                                            {"tag": "dispute_created", "name": "Dispute created"}]}],
}
VARIABLES = {
    "ductape_access_key": KEY,
    "ductape_product": PRODUCT,
    "hook_prefix": "/hooks/v2",
    "refund_method": "put",
    "stripe_secret": SECRET,
    "only_prd": ["prd"],
    "dispute_webhook": {"access_tag": ACCESS_TAG, "webhook_tag": "dispute_created", "path": "/disputes"},
    "ductape_webhooks": [
        {"access_tag": ACCESS_TAG, "webhook_tag": "payment_succeeded", "path": "{{ hook_prefix }}/paid",
         "auth": {"headers": {"Authorization": "Bearer {{ stripe_secret }}"}},
         "overrides": {"stg": {"url": "https://stg-{{ 'payments' | upper }}.example.com/paid"}}},
        {"access_tag": ACCESS_TAG, "webhook_tag": "charge_refunded", "path": "/refunds",
         "method": "{{ refund_method | upper }}", "envs": "{{ only_prd }}"},
        "{{ dispute_webhook }}",
    ],
}

LITERAL = [
    {"access_tag": ACCESS_TAG, "webhook_tag": "payment_succeeded", "path": "/hooks/v2/paid",
     "auth": {"headers": {"Authorization": f"Bearer {SECRET}"}},
     "overrides": {"stg": {"url": "https://stg-PAYMENTS.example.com/paid"}}},
    {"access_tag": ACCESS_TAG, "webhook_tag": "charge_refunded", "path": "/refunds", "method": "PUT", "envs": ["prd"]},
    {"access_tag": ACCESS_TAG, "webhook_tag": "dispute_created", "path": "/disputes"},
]


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    steps = [Step(f"host_{name}", {"ansible.builtin.add_host": {
        "name": name, "groups": "ductape_environments", "ductape_receiver_base_url": f"https://{name}.example.com"}},
        read_state=False) for name in ("prd", "stg")]
    steps.append(Step("role", {"ansible.builtin.include_role": {"name": "ductape.webhooks.register"}},
                      read_state=False))
    # The same webhooks written out literally, in check mode: nothing differs from what the first run sent.
    steps.append(Step("literal_check", {"ansible.builtin.include_role": {
        "name": "ductape.webhooks.register", "apply": {"check_mode": True}},
        "vars": {"ductape_webhooks": LITERAL}}, read_state=False))
    steps.append(Step("literal_rows", {"ansible.builtin.set_fact": {"rows": "{{ ductape_webhook_registrations }}"}},
                      read_state=False))
    with LocalServer(SEED) as server:
        run = run_steps(tmp_path_factory.mktemp("role_templated"), server, OBSERVER_KEY, steps,
                        extra_vars={**VARIABLES, "ductape_api_url": "{{ server_url }}"})
        answer = requests.get(server.url + "/webhooks/v1/webhooks", params={"product": PRODUCT, "access_tag": ACCESS_TAG},
                              headers={"Authorization": f"Bearer {OBSERVER_KEY}"}, timeout=30)
        answer.raise_for_status()
    stored = {(webhook["tag"], registration["productEnv"]): registration
              for webhook in answer.json()["data"] for registration in webhook["config"]}
    return run, stored


def test_templates_anywhere_in_the_webhooks_are_rendered(registered):
    run, stored = registered
    assert {key: (value["url"], value["method"]) for key, value in stored.items()} == {
        ("payment_succeeded", "prd"): ("https://prd.example.com/hooks/v2/paid", "POST"),
        ("payment_succeeded", "stg"): ("https://stg-PAYMENTS.example.com/paid", "POST"),
        ("charge_refunded", "prd"): ("https://prd.example.com/refunds", "PUT"),
        ("dispute_created", "prd"): ("https://prd.example.com/disputes", "POST"),
        ("dispute_created", "stg"): ("https://stg.example.com/disputes", "POST"),
    }, run.output[-4000:]
    assert SECRET not in run.output


def test_what_was_sent_is_what_the_literal_webhooks_say_auth_included(registered):
    # Check mode with the same webhooks written literally (the header's secret included) finds nothing to do:
    # the auth digest stored by the first run is that of the rendered header.
    run, _stored = registered
    rows = run.result("literal_rows")["ansible_facts"]["rows"]
    assert len(rows) == 5 and {row["action"] for row in rows} == {"unchanged"}, rows
    assert run.delta("literal_check")["writes"] == 0
