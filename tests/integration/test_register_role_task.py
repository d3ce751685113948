"""The role's one task, ``ductape.webhooks.register_role``, used directly in a play as its EXAMPLES show:
the role's variables that the play does not set take the role's defaults (roles/register/defaults/main.yml),
exactly as inside the role."""
from __future__ import annotations

import pytest
import requests

from ductape_local.testing import LocalServer
from playbook import Step, run_steps

PRODUCT = "my-product"
ACCESS_TAG = "stripe-payments"
KEY = "dtl_role_task_key_7c1e"
OBSERVER_KEY = "dtl_role_task_observer_0b9d"
SEED = {
    "access_keys": [{"key": KEY, "products": [PRODUCT]}, {"key": OBSERVER_KEY, "products": [PRODUCT]}],
    "products": [{"tag": PRODUCT, "envs": ["prd", "stg"], "connections": [
        {"access_tag": ACCESS_TAG, "app": "stripe", "envs": {"prd": "live", "stg": "test"}}]}],
    "apps": [{"tag": "stripe", "webhooks": [{"tag": "payment_succeeded", "name": "Payment succeeded"}]}],
}
WEBHOOKS = [{"access_tag": ACCESS_TAG, "webhook_tag": "payment_succeeded", "path": "/hooks/stripe"}]


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    steps = [Step(f"host_{name}", {"ansible.builtin.add_host": {
        "name": name, "groups": "ductape_environments", "ductape_receiver_base_url": f"https://{name}.example.com"}},
        read_state=False) for name in ("prd", "stg")]
    # Only what the module's EXAMPLES set (plus where the API is and its key): no role, so no role defaults.
    task_vars = {"ductape_product": PRODUCT, "ductape_webhooks": WEBHOOKS, "ductape_api_url": "{{ server_url }}",
                 "ductape_access_key": KEY}
    steps.append(Step("first", {"ductape.webhooks.register_role": {}, "vars": task_vars}, read_state=False))
    steps.append(Step("again", {"ductape.webhooks.register_role": {}, "vars": task_vars}, read_state=False))
    with LocalServer(SEED) as server:
        run = run_steps(tmp_path_factory.mktemp("role_task"), server, OBSERVER_KEY, steps)
        answer = requests.get(server.url + "/webhooks/v1/webhooks", params={"product": PRODUCT, "access_tag": ACCESS_TAG},
                              headers={"Authorization": f"Bearer {OBSERVER_KEY}"}, timeout=30)
        answer.raise_for_status()
    stored = {registration["productEnv"]: registration["url"]
              for webhook in answer.json()["data"] for registration in webhook["config"]}
    return run, stored


def test_the_task_alone_registers_with_the_roles_defaults(ran):
    run, stored = ran
    first = run.result("first")
    assert not first.get("failed"), run.describe("first")
    assert first["changed"] is True
    assert stored == {"prd": "https://prd.example.com/hooks/stripe", "stg": "https://stg.example.com/hooks/stripe"}
    assert KEY not in run.output


def test_the_task_alone_is_idempotent(ran):
    run, _stored = ran
    again = run.result("again")
    assert not again.get("failed") and again["changed"] is False, run.describe("again")
    assert run.delta("again")["writes"] == 0
