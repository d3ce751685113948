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
(tests/unit/plugins/plugin_utils/test_controller_module.py, ``_why_not_on_controller`` with transport ssh), not over SSH.
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
from playbook import ANSIBLE_PLAYBOOK, Run, Step, ansible_env, core_injects_invocation, steps_playbook

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


def run_on(host: str, server: LocalServer, workdir: Path, steps: list[Step] | None = None,
           module_defaults: dict[str, Any] | None = None, state_query: dict[str, str] | None = None,
           env: dict[str, str] | None = None) -> Run:
    workdir.mkdir(parents=True, exist_ok=True)
    steps = STEPS if steps is None else steps
    [play] = yaml.safe_load(steps_playbook(
        steps, module_defaults=module_defaults or {"group/ductape.webhooks.ductape": {"api_url": "{{ server_url }}"}},
        state_query=state_query or {"product": PRODUCT, "access_tag": ACCESS_TAG}))
    play["hosts"] = host
    play["vars"] = {}
    (workdir / "playbook.yml").write_text(yaml.safe_dump([play], sort_keys=False), encoding="utf-8")
    (workdir / "inventory.yml").write_text(yaml.safe_dump({"all": {"hosts": HOSTS}}), encoding="utf-8")
    results_path = workdir / "results.json"
    extra = {"server_url": server.url, "observer_key": OBSERVER_KEY, "results_path": str(results_path)}
    completed = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "inventory.yml", "playbook.yml", "-vvv", "--diff", "-e", json.dumps(extra)],
        cwd=workdir, env=ansible_env(workdir, env), capture_output=True, text=True, timeout=300, check=False)
    data = json.loads(results_path.read_text(encoding="utf-8")) if results_path.exists() else {}
    run = Run(completed.returncode, completed.stdout, completed.stderr, data)
    assert completed.returncode == 0, run.output[-8000:]
    for step in steps:
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
VOLATILE = re.compile(r'"(created_at|updated_at|at|received_at|deleted_at|link_created_at|expires_at)": "[^"]*"')
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


def test_invocation_follows_the_running_core(runs):
    """ansible-core before 2.21 always adds invocation; 2.21 and later only with INJECT_INVOCATION (off)."""
    injects = core_injects_invocation()
    for host in HOSTS:
        assert ('"invocation": {' in runs[host][0].output) is injects, host


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
    assert run.result("wrong_key")["msg"] == f"list the webhooks of {ACCESS_TAG} in product {PRODUCT}: HTTP 401: unknown access key"
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


# No substring scrubbing of auth values, in either path. The auth values here are as ordinary as a
# provider's can be ("acme", "POST", "a", "e"): were they removed as substrings, as ansible-core does
# with no_log values, the product acme-shop would read ********-shop, method POST would read
# VALUE_SPECIFIED_IN_NO_LOG_PARAMETER and action "created" would lose its a and e. The distinctive
# values (a bearer token, a password and a token inside the url) show that nothing secret is printed;
# the steps do not read the server's listing, which is the server's answer, not the modules' output.
SHOP = "acme-shop"
SHOP_TAG = "shopify-orders"
SHOP_SEED = {
    "access_keys": [{"key": KEY, "products": [SHOP]}, {"key": OBSERVER_KEY, "products": [SHOP]}],
    "products": [{"tag": SHOP, "envs": ["prd", "stg"],
                  "connections": [{"access_tag": SHOP_TAG, "app": "shopify", "envs": {"prd": "live", "stg": "test"}}]}],
    "apps": [{"tag": "shopify", "webhooks": [{"tag": "order_created", "name": "Order created"}]}],
}
BEARER = "Bearer sk_live_scrub_7d1f03"
URL_PASSWORD = "pa55w0rd_scrub_e61"
URL_TOKEN = "tok_scrub_91c2"
SHOP_URL = f"https://hook:{URL_PASSWORD}@hooks.example.com/orders?token={URL_TOKEN}&v=2"
SHOP_URL_MASKED = "https://********@hooks.example.com/orders?token=********&v=2"
ORDINARY_AUTH = {"params": {"shop": "acme"}, "headers": {"X-Verb": "POST", "Authorization": BEARER},
                 "body": {"events": ["a", "e"]}}
SHOP_WEBHOOK = {"product": SHOP, "access_tag": SHOP_TAG, "webhook_tag": "order_created"}
SHOP_ENVS = [{"slug": "prd", "url": SHOP_URL, "method": "POST", "auth": ORDINARY_AUTH}]
SHOP_SECRETS = (KEY, "sk_live_scrub_7d1f03", URL_PASSWORD, URL_TOKEN)
NO_LOG_MARKER = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
SHOP_STEPS = [
    Step("create", {"ductape.webhooks.ductape_webhook": {**SHOP_WEBHOOK, "envs": SHOP_ENVS}}, diff=True, read_state=False),
    Step("again", {"ductape.webhooks.ductape_webhook": {**SHOP_WEBHOOK, "envs": SHOP_ENVS}}, diff=True, read_state=False),
    Step("unknown_env", {"ductape.webhooks.ductape_webhook": {
        **SHOP_WEBHOOK, "envs": [dict(SHOP_ENVS[0], slug="qa")]}}, expect_failure=True, read_state=False),
    Step("info", {"ductape.webhooks.ductape_webhook_info": {"product": SHOP, "access_tag": SHOP_TAG}}, read_state=False),
    # Several argument errors at once: one validator (ansible-core's), every error in one message,
    # the same message in both paths.
    Step("several_errors", {"ductape.webhooks.ductape_webhook": {
        **SHOP_WEBHOOK, "colour": "blue", "retries": "many",
        "envs": [{"slug": "prd", "method": "TRACE", "bogus": 1, "auth": ORDINARY_AUTH}]}}, expect_failure=True, read_state=False),
    Step("batch_errors", {"ductape.webhooks.ductape_webhook": {
        "product": SHOP, "webhooks": [{"access_tag": SHOP_TAG, "webhook_tag": "order_created",
                                       "envs": [{"slug": "prd", "method": "TRACE", "auth": ORDINARY_AUTH}]},
                                      {"access_tag": SHOP_TAG, "envs": "prd"}]}}, expect_failure=True, read_state=False),
]


@pytest.fixture(scope="module")
def shop_runs(tmp_path_factory) -> dict[str, tuple[Run, str]]:
    found = {}
    for host in HOSTS:
        with LocalServer(SHOP_SEED) as server:
            found[host] = (run_on(host, server, tmp_path_factory.mktemp(f"shop-{host}"), SHOP_STEPS,
                                  module_defaults={"group/ductape.webhooks.ductape": {
                                      "api_url": "{{ server_url }}", "access_key": KEY}},
                                  state_query={"product": SHOP, "access_tag": SHOP_TAG},
                                  # ansible-core 2.21 and later add invocation only when asked to
                                  env={"ANSIBLE_INJECT_INVOCATION": "True"}), server.url)
    return found


def without_invocation(result: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in result.items() if key != "invocation"}


@pytest.mark.parametrize("step", [step.name for step in SHOP_STEPS])
def test_both_paths_give_the_same_result_with_ordinary_auth_values(shop_runs, step):
    (in_process, in_url), (as_module, module_url) = shop_runs["controller"], shop_runs["target"]
    assert normalized(in_process.result(step), in_url) == normalized(as_module.result(step), module_url)


@pytest.mark.parametrize("host", list(HOSTS))
def test_auth_values_are_not_removed_from_other_values(shop_runs, host):
    run = shop_runs[host][0]
    create, again = run.result("create"), run.result("again")
    assert create["changed"] is True and again["changed"] is False, run.describe("create")
    [env] = create["envs"]
    assert (env["slug"], env["method"], env["action"]) == ("prd", "POST", "created"), run.describe("create")
    assert again["envs"][0]["action"] == "unchanged", run.describe("again")
    assert f'"{SHOP}"' in run.result("unknown_env")["msg"], run.describe("unknown_env")
    assert [hook["tag"] for hook in run.result("info")["webhooks"]] == ["order_created"]
    for step in SHOP_STEPS:
        shown = json.dumps(without_invocation(run.result(step.name)))
        assert NO_LOG_MARKER not in shown and "********-shop" not in shown, run.describe(step.name)
    assert "********-shop" not in run.output


def printed_invocations(output: str) -> list[dict[str, Any]]:
    """Every ``invocation`` that -vvv printed, in order."""
    decoder, found, marker = json.JSONDecoder(), [], '"invocation": '
    start = output.find(marker)
    while start >= 0:
        found.append(decoder.raw_decode(output[start + len(marker):])[0])
        start = output.find(marker, start + 1)
    return found


@pytest.mark.parametrize("host", list(HOSTS))
def test_invocation_masks_auth_and_the_key_as_a_whole_and_urls_by_mask_url(shop_runs, host):
    run = shop_runs[host][0]
    module_args = [invocation["module_args"] for invocation in printed_invocations(run.output)
                   if "product" in invocation.get("module_args", {})]
    # create, again, unknown_env, info, several_errors, batch_errors: each printed once
    assert len(module_args) == len(SHOP_STEPS), run.output[-6000:]
    for args in module_args:
        assert args["access_key"] == NO_LOG_MARKER and args["product"] == SHOP, args
        envs = args.get("envs") or [env for webhook in args.get("webhooks") or [] for env in webhook["envs"] or []]
        for env in envs if isinstance(envs, list) else []:
            assert env["auth"] == NO_LOG_MARKER, args
    create, unknown_env, info, batch = module_args[0], module_args[2], module_args[3], module_args[5]
    assert create["envs"][0]["url"] == SHOP_URL_MASKED and unknown_env["envs"][0]["slug"] == "qa"
    assert info["access_tag"] == SHOP_TAG
    assert batch["webhooks"][0]["envs"][0]["auth"] == NO_LOG_MARKER


@pytest.mark.parametrize("host", list(HOSTS))
def test_no_auth_value_key_or_url_credential_is_printed_at_vvv(shop_runs, host):
    output = shop_runs[host][0].output
    assert '"invocation"' in output  # -vvv shows it: what it shows is checked here
    for secret in SHOP_SECRETS:
        assert secret not in output


def test_several_argument_errors_are_all_reported_in_one_message(shop_runs):
    # ansible-core before 2.17 names a type as "<class 'str'>", later ones as "str".
    message = shop_runs["controller"][0].result("several_errors")["msg"].replace("<class 'str'>", "str")
    assert ("Unsupported parameters for (ductape.webhooks.ductape_webhook) module: colour. Supported parameters "
            "include: access_key, access_tag, api_url, auth_header, auth_unknown, envs, link_generation, parallelism, "
            "product, prune, prune_keep, retries, rotate_older_than, rotation_grace, state, timeout, token_exchange, "
            "validate_certs, webhook_tag, webhooks. envs.bogus. Supported parameters include: auth, method, slug, url.") in message
    assert "value of method must be one of: GET, POST, PUT, PATCH, DELETE, got: TRACE found in envs" in message
    assert "argument 'retries' is of type str and we were unable to convert to int" in message, message
    batch = shop_runs["controller"][0].result("batch_errors")["msg"].replace("<class 'str'>", "str")
    assert batch.split("; ") == [
        "value of method must be one of: GET, POST, PUT, PATCH, DELETE, got: TRACE found in webhooks -> envs",
        "missing required arguments: webhook_tag found in webhooks",
        "Elements value for option 'envs' found in 'webhooks' is of type str and we were unable to convert to dict: "
        "dictionary requested, could not parse JSON or key=value"], batch


# The connection from variables: no task needs the access key (or the API's URL) in its arguments,
# which ANSIBLE_DISPLAY_ARGS_TO_STDOUT prints into every task banner (AWX/AAP job events), and a
# message about an option taken from a variable names the variable. Both paths; the role too.
ROLE_INVENTORY_ENVS = {"prd": {"ductape_receiver_base_url": "https://api.example.com",
                               "ductape_webhook_auth": {ACCESS_TAG: {"headers": {"X-Env": AUTH_SECRET}}}},
                       "stg": {"ductape_receiver_base_url": "https://stg.example.com"}}


def run_connection_play(workdir: Path, host: str, tasks: list[dict[str, Any]], variables: dict[str, Any],
                        roles: list[dict[str, Any]] | None = None) -> subprocess.CompletedProcess[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    play = {"hosts": host, "gather_facts": False, "vars": variables, "tasks": tasks}
    if roles:
        play["roles"] = roles
    (workdir / "playbook.yml").write_text(yaml.safe_dump([play], sort_keys=False), encoding="utf-8")
    inventory = {"all": {"hosts": HOSTS, "children": {"ductape_environments": {"hosts": ROLE_INVENTORY_ENVS}}}}
    (workdir / "inventory.yml").write_text(yaml.safe_dump(inventory), encoding="utf-8")
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "inventory.yml", "playbook.yml", "-vvv", "--diff"], cwd=workdir,
        env=ansible_env(workdir, {"ANSIBLE_DISPLAY_ARGS_TO_STDOUT": "True"}), capture_output=True, text=True,
        timeout=300, check=False)


def last_result(output: str, task: str) -> dict[str, Any]:
    """The JSON result -vvv printed for the task named ``task``."""
    block = output[output.rindex(f"TASK [{task}"):]
    return json.JSONDecoder().raw_decode(block[block.index("=> {") + 3:])[0]


@pytest.mark.parametrize("host", list(HOSTS))
def test_the_connection_comes_from_variables_and_no_task_prints_the_key(tmp_path, host):
    from playbook import unreachable_url
    with LocalServer(SEED) as server:
        tasks = [
            {"name": "info", "ductape.webhooks.ductape_webhook_info": {"product": PRODUCT, "access_tag": ACCESS_TAG}},
            {"name": "unreachable", "ductape.webhooks.ductape_webhook_info": {"product": PRODUCT, "access_tag": ACCESS_TAG},
             "vars": {"ductape_api_url": unreachable_url()}, "ignore_errors": True},
        ]
        completed = run_connection_play(tmp_path, host, tasks, {"ductape_api_url": server.url,
                                                                "ductape_access_key": KEY})
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-6000:]
    assert [hook["tag"] for hook in last_result(output, "info")["webhooks"]] == ["charge_refunded", "payment_succeeded"]
    unreachable = last_result(output, "unreachable")
    assert "check the variable ductape_api_url" in unreachable["msg"], unreachable
    assert "api_url option" not in unreachable["msg"]
    # The banners print the task arguments: there is no key among them, and none anywhere else.
    assert "TASK [info product=" in output
    assert KEY not in output and "access_key=" not in output


@pytest.mark.parametrize("host", list(HOSTS))
def test_a_connection_option_from_the_environment_is_named_as_its_variable(tmp_path, host):
    """An error about a value that came from DUCTAPE_API_URL or DUCTAPE_ACCESS_KEY names that variable
    (its message and its warnings), in both paths; an option the task gave is still named as the option."""
    from playbook import unreachable_url
    down, elsewhere = unreachable_url(), unreachable_url()
    info = {"product": PRODUCT, "access_tag": ACCESS_TAG}
    tasks = [
        {"name": "env_down", "ductape.webhooks.ductape_webhook_info": info,
         "environment": {"DUCTAPE_API_URL": down}, "ignore_errors": True},
        {"name": "env_scheme", "ductape.webhooks.ductape_webhook_info": info,
         "environment": {"DUCTAPE_API_URL": "ftp://ductape.example.com"}, "ignore_errors": True},
        {"name": "env_key", "ductape.webhooks.ductape_webhook_info": info, "vars": {"ductape_access_key": ""},
         "environment": {"DUCTAPE_API_URL": down, "DUCTAPE_ACCESS_KEY": "dtl_bad key "}, "ignore_errors": True},
        {"name": "given_option", "ductape.webhooks.ductape_webhook_info": {**info, "api_url": down, "retries": 0},
         "environment": {"DUCTAPE_API_URL": elsewhere}, "ignore_errors": True},
    ]
    completed = run_connection_play(tmp_path, host, tasks, {"ductape_access_key": KEY})
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-6000:]
    down_result = last_result(output, "env_down")
    assert "check the environment variable DUCTAPE_API_URL" in down_result["msg"], down_result
    # The retry warnings too (only the env tasks retry; ansible-core before 2.17 wraps a warning at 80
    # columns, joined again first, and prints it on stderr).
    warned = re.findall(r"\[WARNING\]: [^\[]*?could not reach the Ductape API at \S+ \(connection refused\); "
                        r"check the ([^;]*);", re.sub(r"\s+", " ", output))
    assert warned and set(warned) == {"environment variable DUCTAPE_API_URL"}, warned
    assert last_result(output, "env_scheme")["msg"].startswith("DUCTAPE_API_URL: must start with http"), output[-4000:]
    key_result = last_result(output, "env_key")
    assert key_result["msg"].startswith("DUCTAPE_ACCESS_KEY: starts or ends with whitespace"), key_result
    for result in (down_result, key_result):
        assert "api_url option" not in result["msg"] and "access_key:" not in result["msg"], result
    # (ansible-core's own error excerpt of the playbook file shows the task's environment: not checked here.)
    assert "dtl_bad" not in json.dumps(key_result)
    given = last_result(output, "given_option")
    assert "check the api_url option" in given["msg"] and "DUCTAPE_API_URL" not in given["msg"], given
    assert f"the Ductape API at {down} " in given["msg"] and elsewhere not in given["msg"], given


def role_play(server_url: str, webhooks: list[dict[str, Any]], **variables: Any) -> dict[str, Any]:
    return {"ductape_api_url": server_url, "ductape_access_key": KEY, "ductape_product": PRODUCT,
            "ductape_webhooks": webhooks, **variables}


# The role's one task: it checks, plans, runs the two modules and reports.
ROLE_TASK = "ductape.webhooks.register : Check every input, register every webhook and report"
ROLE_WEBHOOKS = [{"access_tag": ACCESS_TAG, "webhook_tag": "payment_succeeded", "path": "/hooks/paid"}]


@pytest.mark.parametrize("host", list(HOSTS))
def test_the_role_makes_two_module_tasks_prints_no_key_and_names_ductape_api_url(tmp_path, host):
    from playbook import unreachable_url
    with LocalServer(SEED) as server:
        webhooks = ROLE_WEBHOOKS + [{"access_tag": ACCESS_TAG, "webhook_tag": "charge_refunded", "path": "/r",
                                     "overrides": {"stg": {"mode": "link"}}}]
        completed = run_connection_play(tmp_path / "ok", host, [], role_play(server.url, webhooks),
                                        roles=[{"role": "ductape.webhooks.register"}])
        output = completed.stdout + completed.stderr
        assert completed.returncode == 0, output[-6000:]
        # One task does the work, run once, whatever the number of webhooks (it runs the two modules).
        assert output.count(f"TASK [{ROLE_TASK}") == 1
        # Every ductape action plugin invocation says at -vvv which path it takes: two in the whole run.
        assert len(re.findall(f"({IN_PROCESS}|{AS_MODULE})", output)) == 2, output[-6000:]
        assert KEY not in output and "access_key=" not in output and AUTH_SECRET not in output

        down = run_connection_play(tmp_path / "down", host, [], role_play(unreachable_url(), webhooks),
                                   roles=[{"role": "ductape.webhooks.register"}])
    output = down.stdout + down.stderr
    assert down.returncode != 0
    failure = last_result(output, ROLE_TASK)
    assert "ductape_api_url" in failure["msg"] and "api_url option" not in failure["msg"], failure["msg"]
    # One module task found the API down; the link task is not attempted after it: one warning in all.
    # ansible-core before 2.17 wraps a warning at 80 columns: the lines are joined again first.
    warnings = re.findall(r"\[WARNING\]: [^\[]*?could not reach the Ductape API", re.sub(r"\s+", " ", output))
    assert len(warnings) == 1, output[-6000:]
    assert KEY not in output


@pytest.mark.parametrize("webhooks, expected", [
    (["just-a-string"], "ductape_webhooks[0]: must be a mapping with access_tag, webhook_tag and a receiver (got a string)"),
    (ROLE_WEBHOOKS * 3 + [dict(ROLE_WEBHOOKS[0], webhook_tag="charge_refunded", method="TRACE")],
     "ductape_webhooks[3].method: must be one of GET, POST, PUT, PATCH, DELETE (got \"TRACE\")"),
    ("not-a-list", "ductape_webhooks: must be a list of webhooks (got a string)"),
])
def test_the_roles_input_errors_name_the_webhook_by_index_and_field(tmp_path, webhooks, expected):
    with LocalServer(SEED) as server:
        completed = run_connection_play(tmp_path, "controller", [], role_play(server.url, webhooks),
                                        roles=[{"role": "ductape.webhooks.register"}])
        writes = server.stats()["writes"]
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0
    failure = last_result(output, ROLE_TASK)
    assert expected in failure["msg"], failure["msg"]
    assert "dictionary requested" not in output and "argument_spec_data" not in output
    assert writes == 0


@pytest.mark.parametrize("variables, expected", [
    ({"ductape_timeout": "soon"}, 'ductape_timeout: must be a whole number (got "soon")'),
    ({"ductape_retries": [3]}, "ductape_retries: must be a whole number (got a list)"),
    ({"ductape_webhooks_prune": "maybe"}, 'ductape_webhooks_prune: must be true or false (got "maybe")'),
    ({"ductape_validate_certs": "strict"}, 'ductape_validate_certs: must be true or false (got "strict")'),
    ({"ductape_webhooks_prune_action": "delete"},
     "ductape_webhooks_prune_action: must be 'absent' or 'disabled' (got \"delete\")"),
    ({"ductape_environments_group": ["ductape_environments"]}, "ductape_environments_group: must be a string (got a list)"),
    ({"ductape_access_key": {"key": AUTH_SECRET}}, "ductape_access_key: must be a string (got a dict)"),
    ({"ductape_product": ""}, "ductape_product: is required"),
])
def test_the_roles_other_variables_fail_naming_the_variable_and_the_value(tmp_path, variables, expected):
    with LocalServer(SEED) as server:
        completed = run_connection_play(tmp_path, "controller", [], {**role_play(server.url, ROLE_WEBHOOKS), **variables},
                                        roles=[{"role": "ductape.webhooks.register"}])
        writes = server.stats()["writes"]
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0
    failure = last_result(output, ROLE_TASK)
    assert expected in failure["msg"], failure["msg"]
    # Not ansible-core's argument validation, whose message is a dump of the role's whole argument spec.
    assert "argument_spec_data" not in output and "Validation of arguments failed" not in output
    assert AUTH_SECRET not in output
    assert writes == 0
