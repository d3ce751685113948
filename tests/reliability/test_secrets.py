"""Secrets never reach any output: unique strings planted as access keys and as auth header, query,
body (nested too) and params values, through the modules and the role, with -vvv and --diff, in
check mode, on failures, in the controller process and as real modules (AnsiballZ); then everything
ansible-playbook printed, its log files, what the plays registered and the server's log are searched.

The secrets are proven to have been used: the provider endpoint received them, and the server holds
their digest. The session's final search (conftest) covers the outputs of every reliability test.

One leak is known and documented instead of prevented, since ansible-core makes it: an access key
passed through a task's `environment:` is printed at -vvv on the command line of a module run on a
target. The last tests show it happening (so the warning in the docs is true) and that the
alternatives the docs recommend do not print it.
"""
from __future__ import annotations

from typing import Any

import pytest

import reliability_harness as harness
from stub_servers import FlakyProvider

PRODUCT = "secret-product"
ACCESS_TAG = "stripe-payments"
VERBOSE = ["-vvv", "--diff"]


def seed(keys: list[str], provider_url: str) -> dict[str, Any]:
    endpoint = {"url": provider_url + "/v1/accounts/{account}/webhook_endpoints", "method": "POST",
                "link_in": "body", "link_key": "endpoint.url"}
    failing = {**endpoint, "url": provider_url + "/fail/{account}"}
    return {
        "access_keys": [{"key": key, "products": [PRODUCT]} for key in keys],
        "products": [{"tag": PRODUCT, "envs": ["prd", "stg", "dev", "sbx"], "connections": [
            {"access_tag": ACCESS_TAG, "app": "stripe", "envs": {"prd": "live", "stg": "test", "dev": "test"}}]}],
        "apps": [{"tag": "stripe", "webhooks": [
            {"tag": "payment_succeeded", "name": "Payment succeeded", "registration": {"live": endpoint}},
            {"tag": "charge_refunded", "name": "Charge refunded", "registration": {"live": failing}},
            {"tag": "role_webhook", "name": "Role webhook", "registration": {"live": endpoint}},
            {"tag": "link_webhook", "name": "Link webhook"},
        ]}],
    }


@pytest.fixture(scope="module")
def secrets() -> dict[str, str]:
    names = ["module key", "role key", "wrong key", "header", "query", "body", "nested body", "params",
             "changed header", "role host header", "role webhook body", "debug-off role query",
             "typo auth string", "typo header string", "typo cookie", "url password", "api url password"]
    return {name: harness.plant(name) for name in names}


def auth(secrets: dict[str, str], header: str = "header") -> dict[str, Any]:
    return {"headers": {"Authorization": "Bearer " + secrets[header]},
            "query": {"token": secrets["query"]},
            "body": {"secret": secrets["body"], "nested": {"deep": secrets["nested body"]}},
            "params": {"account": secrets["params"]}}


def envs(secrets: dict[str, str], header: str = "header") -> list[dict[str, Any]]:
    return [{"slug": slug, "url": f"https://{slug}.example.com/hooks/payment", "method": "POST",
             "auth": auth(secrets, header)} for slug in ("prd", "stg")]


def module_tasks(secrets: dict[str, str], flavour: str) -> list[dict[str, Any]]:
    """Writes, reads, and failures that carry the secrets; `flavour` names the registered results."""
    base = {"product": PRODUCT, "access_tag": ACCESS_TAG}

    def task(name: str, module: str, args: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"name": f"{flavour}: {name}", f"ductape.webhooks.{module}": {**base, **args},
                "register": f"{flavour}_{name.replace(' ', '_')}", "ignore_errors": True, **extra}

    hook = {"webhook_tag": "payment_succeeded"}
    return [
        task("register", "ductape_webhook", {**hook, "envs": envs(secrets)}),
        task("register again", "ductape_webhook", {**hook, "envs": envs(secrets)}),
        task("key as an option", "ductape_webhook", {**hook, "envs": envs(secrets), "access_key": secrets["module key"]}),
        task("info", "ductape_webhook_info", {}),
        task("link", "ductape_webhook_link", {"webhook_tag": "link_webhook", "env": "dev",
                                              "url": "https://dev.example.com/hooks/link"}),
        task("deliveries", "ductape_webhook_delivery_info", {}),
        # The lifecycle modules and options, with the secrets in their arguments: a rotation (its diff shows the
        # links), a receiver url with a password, the key in another header, a test event and a replay through an
        # api_url that holds a password.
        task("rotate", "ductape_webhook", {**hook, "envs": envs(secrets), "link_generation": 2, "rotation_grace": 60,
                                           "auth_header": "x-access-token", "access_key": secrets["module key"]}),
        task("url with a password", "ductape_webhook_link", {
            "webhook_tag": "link_webhook", "env": "stg",
            "url": "https://hook:" + secrets["url password"] + "@stg.example.com/hooks/link"}),
        task("test event", "ductape_webhook_test", {
            **hook, "env": "prd", "max_attempts": 1, "wait_timeout": 20, "payload": {"type": "reliability.test"}}),
        task("replay", "ductape_webhook_replay", {**hook, "limit": 10}),
        # credentials in api_url replace the access key (HTTP basic auth): the API refuses it, naming no secret
        task("api url with a password", "ductape_webhook_replay", {**hook, "api_url": api_url_with_password(secrets)}),
        task("bad rotation", "ductape_webhook", {**hook, "envs": envs(secrets), "rotation_grace": -1}),
        # Failures with the secrets in hand: refused before a request, by the server, by the provider, by the key.
        task("bad url", "ductape_webhook", {**hook, "envs": [{**envs(secrets)[0], "url": "ftp://x"}]}),
        task("unmapped env", "ductape_webhook", {**hook, "envs": [{**envs(secrets)[0], "slug": "sbx"}]}),
        task("provider refuses", "ductape_webhook", {"webhook_tag": "charge_refunded", "envs": envs(secrets)}),
        task("wrong key", "ductape_webhook", {**hook, "envs": envs(secrets), "access_key": secrets["wrong key"]}),
        {"name": f"{flavour}: print what was registered, as people do",
         "ansible.builtin.debug": {"var": f"{flavour}_register"}},
    ]


def api_url_with_password(secrets: dict[str, str]) -> str:
    """The play's api_url (a play variable) with credentials in it."""
    return "{{ server_url | replace('http://', 'http://ops:" + secrets["api url password"] + "@') }}"


def auth_typo_playbook(secrets: dict[str, str], server_url: str) -> list[dict[str, Any]]:
    """Auth of the wrong shape, a likely typo (`auth: "{{ vault_token }}"`): refused, and must stay hidden."""
    hook = {"product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": "payment_succeeded"}
    shapes = {
        "auth a string": "Bearer " + secrets["typo auth string"],
        "auth.headers a string": {"headers": "X-Api-Key: " + secrets["typo header string"]},
        "auth with an unknown part": {"cookies": {"session": secrets["typo cookie"]}},
    }
    tasks = []
    for flavour, on_controller in (("controller", True), ("ansiballz", False)):
        for name, value in shapes.items():
            tasks.append({"name": f"{flavour}: {name}", "vars": {"ductape_run_on_controller": on_controller},
                          "ductape.webhooks.ductape_webhook": {**hook, "envs": [
                              {"slug": "prd", "url": "https://prd.example.com/hooks/payment", "auth": value}]},
                          "register": "typo", "ignore_errors": True})
    return [{"name": "Auth of the wrong shape", "hosts": "localhost", "gather_facts": False,
             "module_defaults": {"group/ductape.webhooks.ductape": {"api_url": server_url, "retries": 0}},
             "tasks": tasks}]


def modules_playbook(secrets: dict[str, str], server_url: str, check: bool = False) -> list[dict[str, Any]]:
    header = "changed header" if check else "header"
    plays = []
    for flavour, on_controller in (("controller", True), ("ansiballz", False)):
        tasks = module_tasks(secrets, flavour)
        if check:
            module = "ductape.webhooks.ductape_webhook"
            tasks = [{**task, module: {**task[module], "envs": envs(secrets, header)}}
                     if module in task and task["name"].endswith(": register") else task
                     for task in tasks]
        plays.append({
            "name": f"Modules with secrets ({flavour})",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {"ductape_run_on_controller": on_controller, "server_url": server_url},
            "module_defaults": {"group/ductape.webhooks.ductape": {"api_url": server_url, "retries": 0}},
            "tasks": tasks,
        })
    names = [task["register"] for play in plays for task in play["tasks"] if "register" in task]
    plays[-1]["tasks"].append(harness.dump_task("{" + ", ".join(f"'{n}': {n}" for n in names) + "}"))
    return plays


def role_inventory(secrets: dict[str, str]) -> dict[str, Any]:
    local = harness.localhost_inventory()["all"]["hosts"]
    return {"all": {"hosts": local, "children": {"ductape_environments": {"hosts": {
        "prd": {"ductape_receiver_base_url": "https://prd.example.com",
                # host-level auth is scoped to the app (access tag) it belongs to
                "ductape_webhook_auth": {ACCESS_TAG: {"headers": {"X-Api-Key": secrets["role host header"]},
                                                      "params": {"account": "acct_1"}}}},
        "stg": {"ductape_receiver_base_url": "https://stg.example.com"},
        "dev": {"ductape_receiver_base_url": "https://dev.example.com", "ductape_registration_mode": "link"},
    }}}}}


def role_playbook(secrets: dict[str, str], server_url: str, secure_logging: bool) -> list[dict[str, Any]]:
    extra = {} if secure_logging else {"ductape_webhooks_secure_logging": False}
    query = {"query": {"token": secrets["debug-off role query"]}} if not secure_logging else {}
    return [{
        "name": "The role with secrets",
        "hosts": "localhost",
        "gather_facts": False,
        "roles": [{"role": "ductape.webhooks.register", "vars": {
            "ductape_api_url": server_url, "ductape_access_key": secrets["role key"], "ductape_product": PRODUCT,
            "ductape_webhooks": [{"access_tag": ACCESS_TAG, "webhook_tag": "role_webhook", "path": "/hooks/role",
                                  "auth": {"body": {"signing_secret": secrets["role webhook body"]}, **query}}],
            **extra}}],
        "post_tasks": [harness.dump_task("ductape_webhook_registrations")],
    }]


@pytest.fixture(scope="module")
def secret_runs(secrets, tmp_path_factory):
    keys = [secrets["module key"], secrets["role key"]]
    env = {"DUCTAPE_ACCESS_KEY": secrets["module key"]}
    runs = {}
    with FlakyProvider([]) as provider, harness.local_server(seed(keys, provider.url)) as server:
        runs["apply"] = harness.run_playbook(tmp_path_factory.mktemp("secrets-apply"), modules_playbook(secrets, server.url),
                                             label="secrets: apply -vvv --diff", env=env, args=VERBOSE)
        runs["check"] = harness.run_playbook(tmp_path_factory.mktemp("secrets-check"),
                                             modules_playbook(secrets, server.url, check=True),
                                             label="secrets: check mode -vvv --diff", env=env, args=[*VERBOSE, "--check"])
        runs["role"] = harness.run_playbook(tmp_path_factory.mktemp("secrets-role"),
                                            role_playbook(secrets, server.url, secure_logging=True),
                                            label="secrets: role -vvv --diff", inventory=role_inventory(secrets),
                                            args=VERBOSE)
        runs["role debug logging"] = harness.run_playbook(
            tmp_path_factory.mktemp("secrets-role-debug"), role_playbook(secrets, server.url, secure_logging=False),
            label="secrets: role with secure logging off -vvv --diff", inventory=role_inventory(secrets), args=VERBOSE,
            record=False)
        runs["auth typos"] = harness.run_playbook(
            tmp_path_factory.mktemp("secrets-auth-typos"), auth_typo_playbook(secrets, server.url),
            label="secrets: auth of the wrong shape -vvv", env=env, args=VERBOSE, record=False)
        listed = harness.registrations(server, PRODUCT, ACCESS_TAG, secrets["module key"])
        calls = list(provider.calls)
        log_label = f"server log {server.workdir.name}"
    # harness.local_server recorded the server's log as it stopped.
    server_logs = [(label, text) for label, text in harness.OUTPUTS if label == log_label]
    return {"runs": runs, "listed": listed, "provider_calls": calls, "server_logs": server_logs}


def test_the_runs_did_what_they_should(secret_runs):
    runs = secret_runs["runs"]
    for name in ("apply", "check", "role"):
        assert runs[name].rc == 0, f"{name}:\n" + runs[name].output[-6000:]
    dump = runs["apply"].dump
    for flavour in ("controller", "ansiballz"):
        assert not dump[f"{flavour}_register"].get("failed"), dump[f"{flavour}_register"]
        for failure in ("bad_url", "unmapped_env", "wrong_key"):
            assert dump[f"{flavour}_{failure}"].get("failed") is True, (flavour, failure)
    assert dump["controller_provider_refuses"].get("failed") is True
    # the lifecycle tasks ran for real: one rotation (once, the other flavour finds generation 2), the
    # link, the test event sent (its receiver cannot be reached: failed), the replay, the bad option refused,
    # the api_url with a password refused
    assert [dump[f"{flavour}_rotate"].get("changed") for flavour in ("controller", "ansiballz")] == [True, False]
    for flavour in ("controller", "ansiballz"):
        assert not dump[f"{flavour}_url_with_a_password"].get("failed"), dump[f"{flavour}_url_with_a_password"]
        assert dump[f"{flavour}_test_event"].get("event_id"), dump[f"{flavour}_test_event"]
        assert not dump[f"{flavour}_replay"].get("failed"), dump[f"{flavour}_replay"]
        assert dump[f"{flavour}_bad_rotation"].get("failed") is True
        assert dump[f"{flavour}_api_url_with_a_password"].get("failed") is True
    check = runs["check"].dump
    assert [env["action"] for env in check["controller_register"]["envs"]] == ["updated", "updated"]
    # -vvv really printed the module arguments, with the secrets masked by ansible.
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in runs["apply"].output
    # The diffs show each auth value masked; check mode's diff marks the one that would change.
    assert '+                "Authorization": "********"' in runs["apply"].output
    assert '+                "Authorization": "******** (changed)"' in runs["check"].output


def test_the_secrets_reached_the_server_and_the_provider(secret_runs, secrets):
    calls = secret_runs["provider_calls"]
    sent = repr(calls)
    for name in ("query", "body", "nested body", "params", "role webhook body"):
        assert secrets[name] in sent, name
    # Headers reach the provider as headers, which the stub does not record; the digest proves them.
    from ductape_local.auth_digest import auth_matches

    [prd] = [r for r in secret_runs["listed"] if (r["webhook_tag"], r["productEnv"]) == ("payment_succeeded", "prd")]
    assert auth_matches(prd["auth_digest"], auth(secrets))
    assert secret_runs["runs"]["role"].dump, "the role recorded no registration"


@pytest.mark.parametrize("run_name", ["apply", "check", "role"])
def test_no_output_holds_a_secret(secret_runs, run_name):
    run = secret_runs["runs"][run_name]
    outputs = [(run_name + " output", run.output), (run_name + " log", run.log), (run_name + " dump", repr(run.dump))]
    hits = harness.secret_hits(outputs)
    assert not hits, hits


def test_the_role_with_secure_logging_off_still_hides_the_auth(secret_runs):
    """ductape_webhooks_secure_logging false shows the role's results, never an auth value."""
    run = secret_runs["runs"]["role debug logging"]
    assert run.rc == 0, run.output[-6000:]
    hits = harness.secret_hits([("output", run.output), ("log", run.log)])
    assert not hits, hits


def test_the_server_log_holds_no_secret(secret_runs, secrets):
    logs = secret_runs["server_logs"]
    assert logs and all(text for _label, text in logs), "the server of these runs left no log"
    # The log is the server's own record of these runs (it names the routes they called).
    assert any("/webhooks/v1/register" in text for _label, text in logs), logs[0][1][-2000:]
    assert not harness.secret_hits(logs)


def test_auth_of_the_wrong_shape_is_refused_without_showing_it(secret_runs, secrets):
    run = secret_runs["runs"]["auth typos"]
    assert run.output.count("FAILED!") >= 6, run.output[-4000:]
    hits = harness.secret_hits([("output", run.output), ("log", run.log)])
    assert not hits, sorted(set(hits))


def environment_play(server_url: str, key_in: str) -> list[dict[str, Any]]:
    """One info read run as a module on the target (ductape_run_on_controller false), with the access
    key either in the task's environment (what the docs warn against) or in module_defaults from a
    variable (what they recommend)."""
    task: dict[str, Any] = {"name": "read the webhooks", "register": "read", "vars": {"ductape_run_on_controller": False},
                            "ductape.webhooks.ductape_webhook_info": {"product": PRODUCT, "access_tag": ACCESS_TAG}}
    defaults: dict[str, Any] = {"api_url": server_url}
    if key_in == "environment":
        task["environment"] = {"DUCTAPE_ACCESS_KEY": "{{ the_key }}"}
    else:
        defaults["access_key"] = "{{ the_key }}"
    return [{"name": f"The access key through {key_in}", "hosts": "localhost", "gather_facts": False,
             "module_defaults": {"group/ductape.webhooks.ductape": defaults},
             "tasks": [task, harness.dump_task("read")]}]


@pytest.fixture(scope="module")
def environment_runs(tmp_path_factory):
    key = harness.plant("access key in a task environment")
    runs = {}
    with FlakyProvider([]) as provider, harness.local_server(seed([key], provider.url)) as server:
        for key_in, record in (("environment", False), ("module_defaults", True)):
            workdir = tmp_path_factory.mktemp(f"secrets-key-in-{key_in}")
            vars_file = workdir / "key.yml"
            vars_file.write_text(f"the_key: {key}\n", encoding="utf-8")
            runs[key_in] = harness.run_playbook(workdir, environment_play(server.url, key_in),
                                                label=f"secrets: the access key in {key_in} -vvv",
                                                args=["-vvv", "-e", f"@{vars_file}"], record=record)
    return {"key": key, "runs": runs}


def test_an_access_key_in_a_task_environment_is_printed_at_vvv(environment_runs):
    """What the docs warn against (guide_getting_started, guide_inventory, guide_awx, the role's
    README): the run works, and ansible-core prints the key on the module's command line."""
    run = environment_runs["runs"]["environment"]
    assert run.rc == 0, run.output[-6000:]
    assert run.dump is not None and not run.dump.get("failed"), run.dump
    printed = [line for line in run.output.splitlines() if environment_runs["key"] in line]
    assert printed, "the key in the task's environment was not printed: the docs' warning would be wrong"
    assert all(line.startswith("<localhost> EXEC ") and f"DUCTAPE_ACCESS_KEY={environment_runs['key']} " in line
               for line in printed), printed


def test_the_recommended_alternative_does_not_print_the_key(environment_runs):
    run = environment_runs["runs"]["module_defaults"]
    assert run.rc == 0, run.output[-6000:]
    assert run.dump is not None and not run.dump.get("failed"), run.dump
    assert "<localhost> EXEC " in run.output  # the same module path, at the same verbosity
    assert environment_runs["key"] not in run.output + run.log
