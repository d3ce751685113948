"""The action plugins (plugins/action/, plugins/plugin_utils/controller_module.py) against real ductape-local.

The same steps run twice, each in one ansible-playbook -vvv --diff against a fresh server with the same
seed: once on an inventory host whose connection is local (the module code runs in the controller
process), once on a host that is local too but sets ``ductape_run_on_controller: false`` (the module
is shipped and run the usual way, as AnsiballZ in a new Python). Both runs must give the same results
and send the same requests, step by step: check mode, --diff, a create, an unchanged re-run, the
``module_defaults`` group, the env fallback of the access key through the task's ``environment``, a
link, the info modules, a bad option, a wrong key and state=absent. Neither path prints an auth value
or the access key at -vvv, save for one thing ansible-core does on the module path: its EXEC line shows
the task's ``environment``, and with it a key passed that way.

What this proves about "another host": the module path itself works (AnsiballZ, argument handling,
results), chosen here through ``ductape_run_on_controller: false`` because no SSH host is available.
That a non-local connection (ssh, for example) selects the module path is proved at unit level
(tests/unit/test_controller_module.py, ``_why_not_on_controller`` with transport ssh), not over SSH.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ductape_local.testing import LocalServer
from playbook import ANSIBLE_PLAYBOOK, Run, Step, ansible_env, steps_playbook

PRODUCT = "my-product"
ACCESS_TAG = "stripe-payments"
KEY = "dtl_action_plugin_key_5f2c81"
OBSERVER_KEY = "dtl_action_plugin_observer_9e04"
WRONG_KEY = "dtl_action_plugin_wrong_7b3d"
AUTH_SECRET = "sk_live_action_plugin_c0ffee"
SECRETS = (KEY, WRONG_KEY, AUTH_SECRET)

SEED = {
    "access_keys": [{"key": KEY, "products": [PRODUCT]}, {"key": OBSERVER_KEY, "products": [PRODUCT]}],
    "products": [{"tag": PRODUCT, "envs": ["prd", "stg", "dev"],
                  "connections": [{"access_tag": ACCESS_TAG, "app": "stripe",
                                   "envs": {"prd": "live", "stg": "test", "dev": "test"}}]}],
    "apps": [{"tag": "stripe", "webhooks": [{"tag": "payment_succeeded", "name": "Payment succeeded"},
                                            {"tag": "charge_refunded", "name": "Charge refunded"}]}],
}

ENVS = [
    {"slug": "prd", "url": "https://api.example.com/hooks/paid", "auth": {"headers": {"X-Key": AUTH_SECRET}}},
    {"slug": "stg", "url": "https://stg.example.com/hooks/paid", "method": "PUT"},
]
WEBHOOK = {"product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": "payment_succeeded"}
# The access key comes from the task's environment (env fallback); api_url from module_defaults.
KEY_FROM_ENV = {"DUCTAPE_ACCESS_KEY": KEY}


def _step(name: str, module: str, args: dict[str, Any], **options: Any) -> Step:
    task = {f"ductape.webhooks.{module}": args, "environment": KEY_FROM_ENV}
    return Step(name, task, **options)


STEPS = [
    _step("check", "ductape_webhook", {**WEBHOOK, "envs": ENVS}, check_mode=True, diff=True),
    _step("create", "ductape_webhook", {**WEBHOOK, "envs": ENVS}, diff=True),
    _step("again", "ductape_webhook", {**WEBHOOK, "envs": ENVS}),
    _step("link", "ductape_webhook_link", {**WEBHOOK, "env": "dev", "url": "https://dev.example.com/paid",
                                           "method": "POST"}),
    _step("info", "ductape_webhook_info", {"product": PRODUCT, "access_tag": ACCESS_TAG}),
    _step("deliveries", "ductape_webhook_delivery_info", {"product": PRODUCT, "limit": 5}),
    _step("bad_option", "ductape_webhook", {**WEBHOOK, "envs": ENVS, "colour": "blue"}, expect_failure=True),
    _step("wrong_key", "ductape_webhook_info", {"product": PRODUCT, "access_tag": ACCESS_TAG,
                                                "access_key": WRONG_KEY}, expect_failure=True),
    _step("absent", "ductape_webhook", {**WEBHOOK, "envs": [{"slug": "stg"}], "state": "absent"}, diff=True),
]

HOSTS = {
    "controller": {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"},
    "target": {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
               "ductape_run_on_controller": False},
}
IN_PROCESS = "running in the controller process"
AS_MODULE = "running the module on the target"


def run_on(host: str, server: LocalServer, workdir: Path) -> Run:
    workdir.mkdir(parents=True, exist_ok=True)
    [play] = yaml.safe_load(steps_playbook(
        STEPS, module_defaults={"group/ductape.webhooks.ductape": {"api_url": "{{ server_url }}"}},
        state_query={"product": PRODUCT, "access_tag": ACCESS_TAG}))
    play["hosts"] = host
    play["vars"] = {}
    (workdir / "playbook.yml").write_text(yaml.safe_dump([play], sort_keys=False), encoding="utf-8")
    (workdir / "inventory.yml").write_text(yaml.safe_dump({"all": {"hosts": HOSTS}}), encoding="utf-8")
    results_path = workdir / "results.json"
    extra = {"server_url": server.url, "observer_key": OBSERVER_KEY, "results_path": str(results_path)}
    completed = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "inventory.yml", "playbook.yml", "-vvv", "--diff", "-e", json.dumps(extra)],
        cwd=workdir, env=ansible_env(workdir), capture_output=True, text=True, timeout=300, check=False)
    data = json.loads(results_path.read_text(encoding="utf-8")) if results_path.exists() else {}
    run = Run(completed.returncode, completed.stdout, completed.stderr, data)
    assert completed.returncode == 0, run.output[-8000:]
    for step in STEPS:
        assert bool(run.result(step.name).get("failed")) == step.expect_failure, run.describe(step.name)
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[Run, str]]:
    found = {}
    for host in HOSTS:
        with LocalServer(SEED) as server:
            found[host] = (run_on(host, server, tmp_path_factory.mktemp(host)), server.url)
    return found


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Differ between two servers or two runs by nature, not by path.
VOLATILE = re.compile(r'"(created_at|updated_at|at|received_at|deleted_at)": "[^"]*"')
# Salted digests (a salt per registration, C1) differ between two servers by nature too.
SALTED = re.compile(r"hmac-sha256:[0-9a-f]{32}:[0-9a-f]{64}")


def normalized(value: Any, server_url: str) -> Any:
    text = json.dumps(value, sort_keys=True).replace(server_url, "<server>")
    text = SALTED.sub("<salted digest>", text)
    return json.loads(VOLATILE.sub(r'"\1": "<time>"', UUID.sub("<uuid>", text)))


@pytest.mark.parametrize("step", [step.name for step in STEPS])
def test_both_paths_give_the_same_result_and_requests(runs, step):
    (in_process, in_url), (as_module, module_url) = runs["controller"], runs["target"]
    assert normalized(in_process.result(step), in_url) == normalized(as_module.result(step), module_url)
    assert in_process.delta(step) == as_module.delta(step)
    assert normalized(in_process.state(step), in_url) == normalized(as_module.state(step), module_url)


def test_each_run_took_the_path_its_host_asks_for(runs):
    in_process, as_module = runs["controller"][0].output, runs["target"][0].output
    assert IN_PROCESS in in_process and AS_MODULE not in in_process
    assert AS_MODULE in as_module and "ductape_run_on_controller is false" in as_module
    assert IN_PROCESS not in as_module


def envs_of(state: list[dict[str, Any]], tag: str = "payment_succeeded") -> set[str]:
    return {reg["productEnv"] for hook in state if hook["tag"] == tag for reg in hook["config"]}


def test_the_steps_did_what_each_feature_promises(runs):
    run = runs["controller"][0]
    check, create, again = run.result("check"), run.result("create"), run.result("again")
    assert check["changed"] and run.delta("check")["writes"] == 0 and envs_of(run.state("check")) == set()
    assert "before" in check["diff"] and "after" in check["diff"]
    assert create["changed"] and run.delta("create")["writes"] >= 1
    assert envs_of(run.state("create")) == {"prd", "stg"}
    assert not again["changed"] and run.delta("again")["writes"] == 0
    assert run.result("link")["link"].startswith(runs["controller"][1])
    assert [hook["tag"] for hook in run.result("info")["webhooks"]] == ["charge_refunded", "payment_succeeded"]
    assert run.result("deliveries")["deliveries"] == []
    assert "colour" in run.result("bad_option")["msg"] and run.delta("bad_option")["requests"] == {}
    assert "401" in run.result("wrong_key")["msg"] or "access key" in run.result("wrong_key")["msg"]
    assert run.result("absent")["changed"]
    assert envs_of(run.state("absent")) == {"prd", "dev"}


def test_no_secret_is_printed_at_vvv_except_by_ansible_cores_exec_line_of_the_module_path(runs):
    in_process, as_module = runs["controller"][0].output, runs["target"][0].output
    for secret in SECRETS:
        assert secret not in in_process
    # Run as a module, the task's `environment` travels on the command line that ansible-core prints at
    # -vvv (its EXEC line), the access key with it. That is ansible-core's doing, not the modules'; the
    # in-process path has no such line. Nothing else shows a secret.
    leaking = [line for line in as_module.splitlines() if any(secret in line for secret in SECRETS)]
    assert leaking and all(" EXEC " in line and f"DUCTAPE_ACCESS_KEY={KEY} " in line for line in leaking)
    assert AUTH_SECRET not in as_module and WRONG_KEY not in as_module
