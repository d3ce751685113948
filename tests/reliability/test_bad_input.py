"""Bad input, to every module and to the role, in one ansible-playbook run against a real ductape-local.

Each case must fail, with a message that names the field and the offending value (a secret is named,
never shown), and must leave nothing half-written: the cases that can be caught before any request
send none, and the server holds no registration at the end although several cases sent valid envs
next to a bad one.

docs/reliability.md holds the table of the cases and of the messages they get; this test builds the
same table from the run and fails when the two differ (RELIABILITY_UPDATE_DOCS=1 rewrites it).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

import reliability_harness as harness
from stub_servers import ClosedPort, StubApi

PRODUCT = "rel-product"
ACCESS_TAG = "stripe-payments"
WEBHOOK = "payment_succeeded"
RECEIVER = "https://prd.example.com/hooks/payment"
DOC = harness.DOC
TABLE_BEGIN = "<!-- bad-inputs:begin (written by tests/reliability/test_bad_input.py) -->"
TABLE_END = "<!-- bad-inputs:end -->"

W, L, I, D = ("ductape.webhooks.ductape_webhook", "ductape.webhooks.ductape_webhook_link",
              "ductape.webhooks.ductape_webhook_info", "ductape.webhooks.ductape_webhook_delivery_info")
T, P = "ductape.webhooks.ductape_webhook_test", "ductape.webhooks.ductape_webhook_replay"


def seed(key: str) -> dict[str, Any]:
    return {
        "access_keys": [{"key": key, "products": [PRODUCT]}],
        "products": [
            # sbx exists in the product but the connection does not map it.
            {"tag": PRODUCT, "envs": ["prd", "stg", "dev", "sbx"], "connections": [
                {"access_tag": ACCESS_TAG, "app": "stripe", "envs": {"prd": "live", "stg": "test", "dev": "test"}}]},
            # A product this key may not use.
            {"tag": "other-product", "envs": ["prd"], "connections": [
                {"access_tag": ACCESS_TAG, "app": "stripe", "envs": {"prd": "live"}}]},
        ],
        "apps": [{"tag": "stripe", "webhooks": [{"tag": WEBHOOK, "name": "Payment succeeded"},
                                                {"tag": "charge_refunded", "name": "Charge refunded"}]}],
    }


@dataclass
class Case:
    id: str
    module: str
    what: str  # the bad input, as the docs table shows it
    args: dict[str, Any]
    field: str  # must appear in the message
    value: str | None  # must appear in the message (None: there is no value to show, e.g. a missing option)
    secret: str | None = None  # the name of a planted secret that the case sends; the message must not show it
    sends: bool = False  # whether the case may reach the main server at all (it is refused there)


def env(slug: str = "prd", **extra: Any) -> dict[str, Any]:
    return {"slug": slug, "url": RECEIVER, "method": "POST", **extra}


def webhook(**args: Any) -> dict[str, Any]:
    base = {"product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": WEBHOOK, "envs": [env()]}
    base.update(args)
    return {name: value for name, value in base.items() if value is not None}


def link(**args: Any) -> dict[str, Any]:
    base = {"product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": WEBHOOK, "env": "prd", "url": RECEIVER}
    base.update(args)
    return {name: value for name, value in base.items() if value is not None}


def module_cases() -> list[Case]:
    """{{ secret_* }}, {{ stub_* }} and {{ main_authority }} are play variables: planted secrets, the stub
    servers' URLs and the main server's host:port."""
    return [
        Case("w-missing-product", W, "`product` left out", webhook(product=None), "product", None),
        Case("w-envs-not-list", W, "`envs: prd` (a string)", webhook(envs="prd"), "envs", None),
        Case("w-envs-empty", W, "`envs: []`", webhook(envs=[]), "envs", "empty list"),
        Case("w-env-not-dict", W, "`envs: [prd]` (an item that is not a mapping)", webhook(envs=["prd"]), "envs", None),
        Case("w-dup-env", W, "env `prd` listed twice", webhook(envs=[env(), env()]), "envs[1].slug", '"prd"'),
        Case("w-empty-slug", W, "an env with `slug: ''`", webhook(envs=[env("")]), "envs[0].slug", '""'),
        Case("w-missing-url", W, "an env without `url`", webhook(envs=[{"slug": "prd"}]), "envs[0].url", '"prd"'),
        Case("w-bad-url", W, "`url: ftp://example.com/hook`", webhook(envs=[env(url="ftp://example.com/hook")]),
             "envs[0].url", '"ftp://example.com/hook"'),
        Case("w-url-no-scheme", W, "`url: example.com/hook`", webhook(envs=[env(url="example.com/hook")]),
             "envs[0].url", '"example.com/hook"'),
        Case("w-bad-method", W, "`method: FETCH`", webhook(envs=[env(method="FETCH")]), "method", "FETCH"),
        Case("w-auth-not-dict", W, "`auth` a string (holding a secret)",
             webhook(envs=[env(auth="{{ secret_auth_string }}")]), "auth", None, secret="auth_string"),
        Case("w-auth-part-not-dict", W, "`auth.headers` a string (holding a secret)",
             webhook(envs=[env(auth={"headers": "{{ secret_header_string }}"})]), "headers", None,
             secret="header_string"),
        Case("w-auth-unknown-part", W, "`auth.cookies` (not headers, query, body or params)",
             webhook(envs=[env(auth={"cookies": {"session": "{{ secret_cookie }}"}})]), "cookies", None, secret="cookie"),
        Case("w-bad-state", W, "`state: gone`", webhook(state="gone"), "state", "gone"),
        Case("w-retries-type", W, "`retries: many`", webhook(retries="many"), "retries", "many"),
        Case("w-retries-negative", W, "`retries: -1`", webhook(retries=-1), "retries", "-1"),
        Case("w-timeout-type", W, "`timeout: soon`", webhook(timeout="soon"), "timeout", None),
        Case("w-timeout-zero", W, "`timeout: 0`", webhook(timeout=0), "timeout", "0"),
        Case("w-validate-certs-type", W, "`validate_certs: maybe`", webhook(validate_certs="maybe"),
             "validate_certs", "maybe"),
        Case("w-api-url-no-scheme", W, "`api_url: api.ductape.test` (no scheme)", webhook(api_url="api.ductape.test"),
             "api_url", '"api.ductape.test"'),
        Case("w-api-url-credentials", W, "`api_url` with `user:password@` in it (a secret)",
             webhook(api_url="http://ops:{{ secret_url_password }}@{{ main_authority }}"), "api_url",
             '"http://********@', secret="url_password"),
        Case("w-no-access-key", W, "`access_key: ''` and no DUCTAPE_ACCESS_KEY", webhook(access_key=""),
             "access_key", None),
        Case("w-unknown-product", W, "`product: no-such-product`", webhook(product="no-such-product"),
             "product", '"no-such-product"', sends=True),
        Case("w-product-not-allowed", W, "`product: other-product` (the key may not use it)",
             webhook(product="other-product"), "product", '"other-product"', sends=True),
        Case("w-unknown-access-tag", W, "`access_tag: no-such-connection`", webhook(access_tag="no-such-connection"),
             "access_tag", '"no-such-connection"', sends=True),
        Case("w-unknown-webhook-tag", W, "`webhook_tag: no_such_webhook`", webhook(webhook_tag="no_such_webhook"),
             "webhook_tag", '"no_such_webhook"', sends=True),
        Case("w-env-not-in-product", W, "env `qa1`, not an env of the product", webhook(envs=[env("qa1")]),
             "envs[0].slug", '"qa1"', sends=True),
        Case("w-env-not-mapped", W, "env `sbx`, in the product but not mapped for the access tag",
             webhook(envs=[env("sbx")]), "envs[0].slug", '"sbx"', sends=True),
        Case("w-second-env-bad", W, "valid `prd` with `qa1` after it (prd must not be written either)",
             webhook(envs=[env("prd"), env("qa1")]), "envs[1].slug", '"qa1"', sends=True),
        Case("w-wrong-key", W, "a wrong `access_key` (a secret)", webhook(access_key="{{ secret_wrong_key }}"),
             "access key", "401", secret="wrong_key", sends=True),
        Case("w-unreachable", W, "`api_url` a closed port", webhook(api_url="{{ stub_closed }}"),
             "api_url", "{{ stub_closed }}"),
        Case("w-tls-self-signed", W, "`api_url` HTTPS with a self-signed certificate, `validate_certs: true`",
             webhook(api_url="{{ stub_tls }}"), "validate_certs", "{{ stub_tls }}"),
        Case("w-not-json", W, "the API answers HTML, not JSON", webhook(api_url="{{ stub_html }}"),
             "api_url", "{{ stub_html }}"),
        Case("w-wrong-envelope", W, "the API answers JSON without the envelope", webhook(api_url="{{ stub_envelope }}"),
             "api_url", "{{ stub_envelope }}"),
        Case("w-data-wrong-type", W, "the API answers `data` of the wrong type", webhook(api_url="{{ stub_data }}"),
             "list", "str"),
        Case("w-false-status", W, "the API answers HTTP 200 with `status: false`", webhook(api_url="{{ stub_false }}"),
             "HTTP 200", "quota exceeded"),
        Case("w-timeout", W, "the API never answers (`timeout: 1`)", webhook(api_url="{{ stub_hang }}", timeout=1),
             "did not answer within the timeout", "{{ stub_hang }}"),
        Case("w-link-generation-zero", W, "`link_generation: 0`", webhook(link_generation=0), "link_generation", "0"),
        Case("w-link-generation-type", W, "`link_generation: next`", webhook(link_generation="next"),
             "link_generation", "next"),
        Case("w-rotate-older-than", W, "`rotate_older_than: 90 days`", webhook(rotate_older_than="90 days"),
             "rotate_older_than", '"90 days"'),
        Case("w-rotation-grace-range", W, "`rotation_grace: 604801`", webhook(rotation_grace=604801),
             "rotation_grace", "604801"),
        Case("w-prune-choice", W, "`prune: everything`",
             {"product": PRODUCT, "webhooks": [{"access_tag": ACCESS_TAG, "webhook_tag": WEBHOOK, "envs": [env()]}],
              "prune": "everything"}, "prune", "everything"),
        Case("w-auth-header", W, "`auth_header: x-api-key`", webhook(auth_header="x-api-key"), "auth_header", "x-api-key"),
        Case("w-auth-unknown", W, "`auth_unknown: ignore`", webhook(auth_unknown="ignore"), "auth_unknown", "ignore"),
        Case("w-token-exchange", W, "`token_exchange: oauth`", webhook(token_exchange="oauth"), "token_exchange",
             "oauth"),
        Case("l-missing-env", L, "`env` left out", link(env=None), "env", None),
        Case("l-bad-method", L, "`method: TRACE`", link(method="TRACE"), "method", "TRACE"),
        Case("l-bad-url", L, "`url: not a url`", link(url="not a url"), "url", '"not a url"'),
        Case("l-env-not-mapped", L, "env `sbx`, not mapped for the access tag", link(env="sbx"), "env", '"sbx"',
             sends=True),
        Case("i-unknown-access-tag", I, "`access_tag: no-such-connection`",
             {"product": PRODUCT, "access_tag": "no-such-connection"}, "access_tag", '"no-such-connection"', sends=True),
        Case("i-missing-product", I, "`product` left out", {"access_tag": ACCESS_TAG}, "product", None),
        Case("d-bad-status", D, "`status: exploded`", {"status": "exploded"}, "status", "exploded"),
        Case("d-limit-type", D, "`limit: lots`", {"limit": "lots"}, "limit", "lots"),
        Case("t-missing-env", T, "`env` left out", {k: v for k, v in link().items() if k not in ("env", "url")},
             "env", None),
        Case("t-max-attempts", T, "`max_attempts: 11`", {**args_of_a_test_event(), "max_attempts": 11}, "max_attempts", "11"),
        Case("t-wait-timeout", T, "`wait_timeout: 0`", {**args_of_a_test_event(), "wait_timeout": 0}, "wait_timeout", "0"),
        Case("t-payload-type", T, "`payload: hello` (not a mapping)", {**args_of_a_test_event(), "payload": "hello"}, "payload",
             None),
        Case("t-env-not-in-product", T, "env `qa1`, not an env of the product", {**args_of_a_test_event(), "env": "qa1"}, "env",
             '"qa1"', sends=True),
        Case("t-env-not-mapped", T, "env `sbx`, with no registration to test", {**args_of_a_test_event(), "env": "sbx"}, "env",
             "sbx", sends=True),
        Case("p-bad-status", P, "`status: exploded`", {"product": PRODUCT, "status": "exploded"}, "status", "exploded"),
        Case("p-limit-zero", P, "`limit: 0`", {"product": PRODUCT, "limit": 0}, "limit", "0"),
        Case("p-received-after", P, "`received_after: yesterday`", {"product": PRODUCT, "received_after": "yesterday"},
             "received_after", '"yesterday"'),
        Case("p-ids-and-filter", P, "`event_ids` with `env` (mutually exclusive)",
             {"product": PRODUCT, "event_ids": ["e1"], "env": "prd"}, "event_ids", "env"),
        Case("p-unknown-webhook-tag", P, "`webhook_tag: no_such_webhook`",
             {"product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": "no_such_webhook"}, "webhook_tag",
             '"no_such_webhook"', sends=True),
    ]


def args_of_a_test_event() -> dict[str, Any]:
    return {"product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": WEBHOOK, "env": "prd"}


R = "ductape.webhooks.register (role)"


def role_cases() -> list[Case]:
    """Role cases: `args` are the role's variables; `group` picks the inventory group of environment hosts."""
    hook = {"access_tag": ACCESS_TAG, "webhook_tag": WEBHOOK, "path": "/hooks/payment"}
    return [
        Case("r-missing-product", R, "`ductape_product` left out", {"ductape_webhooks": [hook]}, "ductape_product", None),
        Case("r-webhooks-not-list", R, "`ductape_webhooks: payment_succeeded`",
             {"ductape_product": PRODUCT, "ductape_webhooks": "payment_succeeded"}, "ductape_webhooks", None),
        Case("r-webhook-method", R, "a webhook with `method: FETCH`",
             {"ductape_product": PRODUCT, "ductape_webhooks": [{**hook, "method": "FETCH"}]}, "method", "FETCH"),
        Case("r-dup-env", R, "two hosts with `ductape_env: prd`",
             {"ductape_product": PRODUCT, "ductape_webhooks": [hook], "ductape_environments_group": "dup_envs"},
             "ductape_env", "'prd'"),
        Case("r-bad-slug", R, "a host with `ductape_env: PRD`",
             {"ductape_product": PRODUCT, "ductape_webhooks": [hook], "ductape_environments_group": "badslug_envs"},
             "ductape_env", '"PRD"'),
        Case("r-bad-mode", R, "a host with `ductape_registration_mode: auto`",
             {"ductape_product": PRODUCT, "ductape_webhooks": [hook], "ductape_environments_group": "badmode_envs"},
             "ductape_registration_mode", '"auto"'),
        Case("r-bad-base-url", R, "a host with `ductape_receiver_base_url: ftp://files.example.com`",
             {"ductape_product": PRODUCT, "ductape_webhooks": [hook], "ductape_environments_group": "badbase_envs"},
             "ductape_receiver_base_url", '"ftp://files.example.com"'),
        Case("r-no-base-url", R, "a webhook `path` for a host without `ductape_receiver_base_url`",
             {"ductape_product": PRODUCT, "ductape_webhooks": [hook], "ductape_environments_group": "nobase_envs"},
             "ductape_receiver_base_url", '"/hooks/payment"'),
        Case("r-host-auth-not-dict", R, "a host whose `ductape_webhook_auth` is a string (a secret)",
             {"ductape_product": PRODUCT, "ductape_webhooks": [hook], "ductape_environments_group": "badauth_envs"},
             "ductape_webhook_auth", "'stg'", secret="host_auth_string"),
        Case("r-no-hosts", R, "`ductape_environments_group` with no hosts",
             {"ductape_product": PRODUCT, "ductape_webhooks": [hook], "ductape_environments_group": "no_such_group"},
             "ductape_environments_group", "'no_such_group'"),
        Case("r-webhook-twice", R, "the same webhook listed twice",
             {"ductape_product": PRODUCT, "ductape_webhooks": [hook, hook]}, "ductape_webhooks",
             '"stripe-payments/payment_succeeded"'),
        Case("r-unknown-env", R, "a webhook whose `envs` lists `qa1`, which no host defines",
             {"ductape_product": PRODUCT, "ductape_webhooks": [{**hook, "envs": ["qa1"]}]}, "envs", '"qa1"'),
        Case("r-override-method", R, "`overrides.stg.method: FETCH`",
             {"ductape_product": PRODUCT, "ductape_webhooks": [{**hook, "overrides": {"stg": {"method": "FETCH"}}}]},
             "overrides.stg.method", '"FETCH"'),
        Case("r-unknown-product", R, "`ductape_product: no-such-product` (refused by the API)",
             {"ductape_product": "no-such-product", "ductape_webhooks": [hook]}, "product", '"no-such-product"',
             sends=True),
    ]


def env_hosts(group: str, hosts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {group: {"hosts": hosts}}


def inventory(secrets: dict[str, str]) -> dict[str, Any]:
    base = "https://{}.example.com"
    children: dict[str, Any] = {}
    children.update(env_hosts("ductape_environments", {
        "rel-prd": {"ductape_env": "prd", "ductape_receiver_base_url": base.format("prd")},
        "rel-stg": {"ductape_env": "stg", "ductape_receiver_base_url": base.format("stg")}}))
    children.update(env_hosts("dup_envs", {
        "dup-a": {"ductape_env": "prd", "ductape_receiver_base_url": base.format("a")},
        "dup-b": {"ductape_env": "prd", "ductape_receiver_base_url": base.format("b")}}))
    children.update(env_hosts("badslug_envs", {"slug-host": {"ductape_env": "PRD", "ductape_receiver_base_url": base.format("x")}}))
    children.update(env_hosts("badmode_envs", {
        "mode-host": {"ductape_env": "prd", "ductape_registration_mode": "auto", "ductape_receiver_base_url": base.format("x")}}))
    children.update(env_hosts("badbase_envs", {
        "base-host": {"ductape_env": "prd", "ductape_receiver_base_url": "ftp://files.example.com"}}))
    children.update(env_hosts("nobase_envs", {"nobase-host": {"ductape_env": "prd"}}))
    children.update(env_hosts("badauth_envs", {
        "stg": {"ductape_receiver_base_url": base.format("stg"), "ductape_webhook_auth": secrets["host_auth_string"]}}))
    local = harness.localhost_inventory()["all"]["hosts"]
    return {"all": {"hosts": local, "children": children}}


def stats_task(case: Case) -> dict[str, Any]:
    """The server's request counts after a case (read in the controller, never counted themselves)."""
    return {"name": f"requests after {case.id}", "ansible.builtin.set_fact": {
        "stats_after": "{{ stats_after | default({}) | combine({'" + case.id + "': (lookup('ansible.builtin.url', "
                       "stats_url, split_lines=False) | from_json).data}) }}"}}


def module_play(cases: list[Case], server_url: str, key: str, play_vars: dict[str, Any]) -> dict[str, Any]:
    tasks: list[dict[str, Any]] = []
    for case in cases:
        tasks.append({"name": f"bad input {case.id}", case.module: case.args, "register": f"case_{case.id.replace('-', '_')}",
                      "ignore_errors": True})
        tasks.append(stats_task(case))
    return {
        "name": "Bad input to the modules",
        "hosts": "localhost",
        "gather_facts": False,
        "vars": {**play_vars, "stats_url": server_url + "/_local/stats"},
        "module_defaults": {"group/ductape.webhooks.ductape": {
            "api_url": server_url, "access_key": key, "retries": 0, "timeout": 10}},
        "tasks": tasks,
    }


def role_play(cases: list[Case], server_url: str, key: str) -> dict[str, Any]:
    tasks: list[dict[str, Any]] = []
    for case in cases:
        tasks.append({
            "name": f"bad input {case.id}",
            "block": [{"name": f"role with {case.id}", "ansible.builtin.include_role": {"name": "ductape.webhooks.register"},
                       "vars": {"ductape_api_url": server_url, "ductape_access_key": key, "ductape_retries": 0,
                                **case.args}},
                      {"name": f"{case.id} did not fail", "ansible.builtin.set_fact": {
                          "role_failures": "{{ role_failures | default({}) | combine({'" + case.id + "': 'DID NOT FAIL'}) }}"}}],
            "rescue": [{"name": f"record why {case.id} failed", "ansible.builtin.set_fact": {
                "role_failures": "{{ role_failures | default({}) | combine({'" + case.id + "': ansible_failed_result.msg}) }}"}}],
        })
        tasks.append(stats_task(case))
    return {"name": "Bad input to the role", "hosts": "localhost", "gather_facts": False,
            "vars": {"stats_url": server_url + "/_local/stats"}, "tasks": tasks}


def normalise(message: str, urls: dict[str, str]) -> str:
    """The message as the docs show it: stub URLs by name, ports and versions that vary removed."""
    for name, url in sorted(urls.items(), key=lambda item: -len(item[1])):
        message = message.replace(url, "<" + name + ">")
    message = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", message)
    message = re.sub(r"port=\d+", "port=PORT", message)
    message = re.sub(r"\(_ssl\.c:\d+\)", "(_ssl.c)", message)
    # ansible-core lists the booleans from a set, in an order that changes from run to run.
    message = re.sub(r"Valid booleans include: (.*)$",
                     lambda found: "Valid booleans include: " + ", ".join(sorted(found[1].split(", "))), message)
    return " ".join(message.split())


def docs_table(rows: list[tuple[Case, str]]) -> str:
    lines = ["| # | case | to | bad input | message |", "|---|---|---|---|---|"]
    for number, (case, message) in enumerate(rows, 1):
        module = case.module.replace("ductape.webhooks.", "")
        cell = "`" + message.replace("|", "\\|").replace("`", "'") + "`"
        lines.append(f"| {number} | `{case.id}` | {module} | {case.what} | {cell} |")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def bad_input_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("bad-input")
    secrets = {name: harness.plant(name) for name in
               ("access key", "wrong_key", "auth_string", "header_string", "cookie", "host_auth_string",
                "url_password")}
    key = secrets["access key"]
    modules, roles = module_cases(), role_cases()
    with harness.local_server(seed(key)) as server, ClosedPort() as closed, \
            StubApi(200, "<html><body>Welcome to nginx</body></html>", "text/html") as html, \
            StubApi(200, {"ok": True, "items": []}) as envelope, \
            StubApi(200, {"status": True, "meta": {}, "data": "oops"}) as data, \
            StubApi(200, {"status": False, "meta": {}, "errors": "quota exceeded"}) as false_status, \
            StubApi(hang=True) as hang, \
            StubApi(200, {"status": True, "meta": {}, "data": []}, tls=True) as tls:
        urls = {"stub_closed": closed.url, "stub_tls": tls.url, "stub_html": html.url, "stub_envelope": envelope.url,
                "stub_data": data.url, "stub_false": false_status.url, "stub_hang": hang.url}
        play_vars = {**urls, **{"secret_" + name: value for name, value in secrets.items() if name != "access key"},
                     "main_authority": server.url.split("://", 1)[1]}
        dump = harness.dump_task("{'modules': {" + ", ".join(
            f"'{case.id}': case_{case.id.replace('-', '_')}" for case in modules
        ) + "}, 'stats': stats_after, 'role': role_failures}")
        plays = [module_play(modules, server.url, key, play_vars), role_play(roles, server.url, key)]
        plays[-1]["tasks"].append(dump)
        run = harness.run_playbook(workdir, plays, label="bad input", inventory=inventory(secrets))
        stored = harness.stored_rows(server)
        listed = harness.registrations(server, PRODUCT, ACCESS_TAG, key)
        stub_requests = {name: stub.requests for name, stub in
                         (("html", html), ("envelope", envelope), ("data", data), ("false", false_status))}
    return {"run": run, "modules": modules, "roles": roles, "secrets": secrets, "urls": urls, "stored": stored,
            "listed": listed, "stub_requests": stub_requests}


def messages(bad_input_run) -> list[tuple[Case, str]]:
    run = bad_input_run["run"]
    assert run.dump is not None, run.output[-8000:]
    rows = []
    for case in bad_input_run["modules"]:
        result = run.dump["modules"][case.id]
        assert result.get("failed") is True, f"{case.id} did not fail: {result}"
        rows.append((case, result.get("msg", "")))
    for case in bad_input_run["roles"]:
        rows.append((case, run.dump["role"][case.id]))
    return rows


# Cases whose message does not yet name what it should, with what is missing. Each is checked by
# test_known_gap below, which is an xfail(strict): it turns red as soon as the gap is closed, so that
# the entry is removed here and the case joins the strict test.
KNOWN_GAPS: dict[str, str] = {}


# The operation the client names before what went wrong ("list the webhooks of A in product P: ...").
# It repeats the task's own arguments, so it must not count as the message naming the field or value.
OPERATION = re.compile(
    r"(?:list the webhooks of \S+ in product \S+|list the deliveries|register \S+/\S+ in [\w, -]+"
    r"|generate the link of \S+/\S+ in \S+|delete the registration \S+(?: in \S+)?): ")


def without_operations(message: str) -> str:
    return OPERATION.sub("", message)


def problem(case: Case, message: str, urls: dict[str, str], secrets: dict[str, str]) -> str | None:
    """What is wrong with the message a case got, or None. The field and the value must be named by
    the message itself, not only by the operation it starts with."""
    if message == "DID NOT FAIL":
        return "did not fail"
    expected = [case.field] + ([case.value] if case.value else [])
    expected = [urls.get(text.strip("{} ").strip(), text) if text.startswith("{{") else text for text in expected]
    said = without_operations(message)
    missing = [text for text in expected if text not in said]
    if missing:
        return f"message lacks {missing}: {message}"
    if case.secret and secrets[case.secret] in message:
        return f"message shows the secret planted as {case.secret}"
    return None


def test_the_operation_alone_does_not_name_the_field_or_the_value():
    case = Case("x-unknown-product", W, "`product: nope`", {}, "product", "nope")
    prefix = "list the webhooks of stripe-payments in product nope: "
    assert problem(case, prefix + "HTTP 404: not found", {}, {}) == (
        f"message lacks ['product', 'nope']: {prefix}HTTP 404: not found")
    assert problem(case, prefix + "HTTP 404: product: unknown product nope", {}, {}) is None
    role = ("ductape.webhooks.register: the registration failed for: - stripe-payments/payment_succeeded in prd, stg: "
            "register stripe-payments/payment_succeeded in prd, stg: HTTP 502: gateway")
    assert without_operations(role) == ("ductape.webhooks.register: the registration failed for: "
                                        "- stripe-payments/payment_succeeded in prd, stg: HTTP 502: gateway")


def test_every_bad_input_fails_naming_the_field_and_the_value(bad_input_run):
    rows = messages(bad_input_run)
    problems = []
    for case, message in rows:
        harness.figure("bad inputs tried", detail=case.id)
        found = problem(case, message, bad_input_run["urls"], bad_input_run["secrets"])
        if found is None:
            harness.figure("bad inputs refused with field and value")
        elif case.id not in KNOWN_GAPS:
            problems.append(f"{case.id}: {found}")
    assert len(rows) >= 25
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("case_id", [pytest.param(case_id, marks=pytest.mark.xfail(strict=True, reason=reason))
                                     for case_id, reason in KNOWN_GAPS.items()])
def test_known_gap(bad_input_run, case_id):
    [(case, message)] = [(case, message) for case, message in messages(bad_input_run) if case.id == case_id]
    found = problem(case, message, bad_input_run["urls"], bad_input_run["secrets"])
    assert found is None, found


def test_no_message_shows_a_secret(bad_input_run):
    for case, message in messages(bad_input_run):
        for value in bad_input_run["secrets"].values():
            assert value not in message, case.id
    assert not harness.secret_hits([(label, text) for label, text in harness.OUTPUTS if label.startswith("bad input")])


def test_nothing_was_written(bad_input_run):
    run = bad_input_run["run"]
    assert run.dump is not None, run.output[-8000:]
    # The server holds nothing, although several cases sent a valid env next to a bad one.
    assert bad_input_run["stored"] == []
    assert bad_input_run["listed"] == []
    stats = run.dump["stats"]
    previous = {"reads": 0, "writes": 0, "requests": {}}
    for case in bad_input_run["modules"] + bad_input_run["roles"]:
        now = stats[case.id]
        sent = now["reads"] + now["writes"] - previous["reads"] - previous["writes"]
        if not case.sends:
            assert sent == 0, f"{case.id} sent {sent} request(s) to the server; it should fail before any"
        previous = now
    # A wrong answer from a server that is not the Ductape API is never followed by a write.
    assert all(count <= 1 for count in bad_input_run["stub_requests"].values()), bad_input_run["stub_requests"]


def test_docs_table_matches_the_run(bad_input_run):
    rows = [(case, normalise(message, bad_input_run["urls"])) for case, message in messages(bad_input_run)]
    table = docs_table(rows)
    harness.OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    (harness.OUTPUT_DIR / "bad-inputs.md").write_text(table + "\n", encoding="utf-8")
    documented = harness.documented_block(TABLE_BEGIN, TABLE_END, table)
    assert documented is not None, f"{DOC} has no bad-inputs table markers"
    assert documented == table, (
        f"{DOC.relative_to(harness.REPO)} is stale: the run's table is in "
        f"{(harness.OUTPUT_DIR / 'bad-inputs.md').relative_to(harness.REPO)}; "
        "rewrite it with RELIABILITY_UPDATE_DOCS=1 make test-reliability"
    )
