"""Faults over real HTTP, through ductape-local's fault injection, and a server killed mid-converge.

One playbook injects faults before each task (POST /_local/faults) and runs the modules through them:
429 with Retry-After and bursts of 502/503/504 are ridden out with one warning per retry; retries
that run out fail with a message that says what was attempted, what the API answered and how often,
and nothing is written; the same task run again once the faults are gone converges.

Then a server is killed (SIGKILL) while it is inside a register call, between storing one env and
hearing back from the provider; it is started again on the same database, and a second run of the
same playbook converges: every registration the first run made is still there with its uuid, each
(webhook, env) is stored exactly once, and the provider holds the link.
"""
from __future__ import annotations

import re
from typing import Any

import pytest

import reliability_harness as harness
from stub_servers import BlockingProvider, DroppingProxy, FlakyProvider

PRODUCT = "fault-product"
ACCESS_TAG = "stripe-payments"
ENVS = ["prd", "stg", "dev"]
WEBHOOKS = ["wh_429", "wh_503_burst", "wh_502_504", "wh_exhausted", "wh_link", "wh_delete", "wh_dropped"]
DROPS = 2  # connections the proxy in front of the server hangs up on


def seed(key: str, provider_url: str | None = None, webhooks: tuple[str, ...] | list[str] | None = None) -> dict[str, Any]:
    definitions = []
    for tag in webhooks or WEBHOOKS:
        definition: dict[str, Any] = {"tag": tag, "name": tag.replace("_", " ")}
        if provider_url and tag in ("kill_provider", "flaky_provider"):
            definition["registration"] = {"live": {"url": provider_url + "/v1/webhook_endpoints", "method": "POST",
                                                   "link_in": "body", "link_key": "url"}}
        definitions.append(definition)
    return {
        "access_keys": [{"key": key, "products": [PRODUCT]}],
        "products": [{"tag": PRODUCT, "envs": ENVS, "connections": [
            {"access_tag": ACCESS_TAG, "app": "stripe", "envs": {"prd": "live", "stg": "test", "dev": "test"}}]}],
        "apps": [{"tag": "stripe", "webhooks": definitions}],
    }


def receivers(tag: str) -> list[dict[str, Any]]:
    return [{"slug": env, "url": f"https://{env}.example.com/hooks/{tag}", "method": "POST"} for env in ENVS]


def fault(route: str, status: int, count: int, retry_after: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"route": route, "status": status, "count": count}
    if retry_after is not None:
        body["retry_after"] = retry_after
    return {"name": f"inject {count} x {status} on {route}", "no_log": True, "ansible.builtin.uri": {
        "url": "{{ faults_url }}", "method": "POST", "body_format": "json", "body": body,
        "headers": {"Authorization": "Bearer {{ faults_key }}"}}}


def webhook_task(name: str, tag: str, register: str, **extra: Any) -> dict[str, Any]:
    args = {"product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": tag, "envs": receivers(tag), **extra}
    return {"name": name, "ductape.webhooks.ductape_webhook": args, "register": register, "ignore_errors": True}


REGISTER, LIST = "POST /webhooks/v1/register", "GET /webhooks/v1/webhooks"
LINK, DELETE = "POST /webhooks/v1/generate-link", "DELETE /webhooks/v1/registrations/{uuid}"
DELIVERIES = "GET /webhooks/v1/deliveries"

# (result name, faults injected before it: [(route, status, count, retry_after)], expected outcome)
RIDDEN = {
    "r429": [(REGISTER, 429, 1, 1)],
    "r503_burst": [(LIST, 503, 3, None)],
    "r502_504": [(LIST, 502, 1, None), (REGISTER, 504, 1, 0)],
    "rlink": [(LINK, 503, 2, 1)],
    "rinfo": [(LIST, 429, 1, 1)],
    "rdelete": [(DELETE, 503, 1, None)],
    "rdeliveries": [(DELIVERIES, 503, 2, 0)],
}


def fault_play(server_url: str, key: str, proxy_url: str) -> dict[str, Any]:
    def faults(name: str) -> list[dict[str, Any]]:
        return [fault(*spec) for spec in RIDDEN[name]]

    tasks: list[dict[str, Any]] = [
        *faults("r429"), webhook_task("register through a 429 with Retry-After", "wh_429", "r429"),
        *faults("r503_burst"), webhook_task("register through a burst of three 503", "wh_503_burst", "r503_burst"),
        *faults("r502_504"), webhook_task("register through a 502 then a 504", "wh_502_504", "r502_504"),
        *faults("rlink"),
        {"name": "generate a link through two 503", "register": "rlink", "ignore_errors": True,
         "ductape.webhooks.ductape_webhook_link": {
             "product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": "wh_link",
             "env": "dev", "url": "https://dev.example.com/hooks/wh_link"}},
        *faults("rinfo"),
        {"name": "read the webhooks through a 429", "register": "rinfo", "ignore_errors": True,
         "ductape.webhooks.ductape_webhook_info": {"product": PRODUCT, "access_tag": ACCESS_TAG}},
        # Retries that run out: five 503 for three attempts.
        fault(REGISTER, 503, 5),
        webhook_task("register while the API keeps answering 503", "wh_exhausted", "rexhausted", retries=2),
        {"name": "read what the exhausted register left", "register": "after_exhausted", "ignore_errors": True,
         "ductape.webhooks.ductape_webhook_info": {
             "product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": "wh_exhausted"}},
        {"name": "clear the faults left over", "no_log": True, "ansible.builtin.uri": {
            "url": "{{ faults_url }}", "method": "DELETE", "headers": {"Authorization": "Bearer {{ faults_key }}"}}},
        webhook_task("register again once the API is back", "wh_exhausted", "rexhausted_again"),
        webhook_task("register the webhook to delete", "wh_delete", "rdelete_setup"),
        *faults("rdelete"),
        webhook_task("delete through a 503", "wh_delete", "rdelete", state="absent"),
        webhook_task("register through a proxy that hangs up twice", "wh_dropped", "rdropped", api_url=proxy_url),
        *faults("rdeliveries"),
        {"name": "read the deliveries through two 503", "register": "rdeliveries", "ignore_errors": True,
         "ductape.webhooks.ductape_webhook_delivery_info": {"product": PRODUCT, "access_tag": ACCESS_TAG}},
    ]
    names = list(RIDDEN) + ["rexhausted", "after_exhausted", "rexhausted_again", "rdelete_setup", "rdropped"]
    tasks.append(harness.dump_task("{" + ", ".join(f"'{name}': {name}" for name in names) + "}"))
    return {
        "name": "Modules through injected faults",
        "hosts": "localhost",
        "gather_facts": False,
        "vars": {"faults_url": server_url + "/_local/faults", "faults_key": key},
        "module_defaults": {"group/ductape.webhooks.ductape": {
            "api_url": server_url, "access_key": key, "retries": 3, "timeout": 10}},
        "tasks": tasks,
    }


@pytest.fixture(scope="module")
def fault_run(tmp_path_factory):
    key = harness.plant("fault access key")
    with harness.local_server(seed(key)) as server, DroppingProxy(server.port, DROPS) as proxy:
        run = harness.run_playbook(tmp_path_factory.mktemp("faults"), [fault_play(server.url, key, proxy.url)],
                                   label="faults")
        assert proxy.dropped == DROPS
        stats = server.stats()
        rows = harness.stored_rows(server)
    assert run.dump is not None, run.output[-8000:]
    return {"run": run, "stats": stats, "rows": rows}


def live(rows: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    return [row for row in rows if row["webhook_tag"] == tag and row["deleted_at"] is None]


@pytest.mark.parametrize("name", list(RIDDEN))
def test_faults_are_ridden_out_with_a_warning_per_retry(fault_run, name):
    result = fault_run["run"].dump[name]
    assert not result.get("failed"), result.get("msg")
    injected = RIDDEN[name]
    warnings = result.get("warnings") or []
    assert len(warnings) == sum(count for _route, _status, count, _after in injected), warnings
    for _route, status, count, retry_after in injected:
        matching = [w for w in warnings if f"HTTP {status}" in w]
        assert len(matching) == count, warnings
        if retry_after:
            assert all(f"in {retry_after:.1f} s" in w for w in matching), matching
    assert all(re.search(r"retry \d of 3 in \d+\.\d s", w) for w in warnings), warnings
    harness.figure("faults ridden", sum(count for *_ignored, count, _after in injected), detail=name)


def test_dropped_connections_are_ridden_out_with_a_warning_each(fault_run):
    result = fault_run["run"].dump["rdropped"]
    assert not result.get("failed"), result.get("msg")
    assert [env["action"] for env in result["envs"]] == ["created"] * 3
    warnings = result.get("warnings") or []
    assert len(warnings) == DROPS and all("could not reach the Ductape API" in w for w in warnings), warnings
    harness.figure("faults ridden", DROPS, detail="rdropped")


def test_faults_are_ridden_out_without_a_duplicate(fault_run):
    rows, stats = fault_run["rows"], fault_run["stats"]["requests"]
    for tag in ("wh_429", "wh_503_burst", "wh_502_504", "wh_exhausted", "wh_dropped"):
        assert sorted(row["product_env"] for row in live(rows, tag)) == sorted(ENVS), tag
    assert [row["product_env"] for row in rows if row["webhook_tag"] == "wh_link"] == ["dev"]
    # The deleted webhook is gone (its three registrations are tombstones), nothing else was touched.
    assert live(rows, "wh_delete") == []
    assert len([row for row in rows if row["webhook_tag"] == "wh_delete"]) == 3
    assert len(rows) == 5 * 3 + 1 + 3
    # Each faulted request was sent again, and only as often as it was refused.
    assert stats[LINK] == 2 + 1
    assert stats[DELIVERIES] == 2 + 1


def test_exhausted_retries_fail_clearly_and_write_nothing(fault_run):
    dump = fault_run["run"].dump
    failed = dump["rexhausted"]
    assert failed.get("failed") is True
    message = failed["msg"]
    assert "register stripe-payments/wh_exhausted in prd, stg, dev" in message
    assert "HTTP 503" in message and "gave up after 3 attempts" in message and "retries" in message, message
    assert len(failed.get("warnings") or []) == 2
    # Nothing of it was stored, and the same task converged once the API answered again.
    [webhook] = dump["after_exhausted"]["webhooks"]
    assert webhook["config"] == []
    again = dump["rexhausted_again"]
    assert again.get("changed") is True and [env["action"] for env in again["envs"]] == ["created"] * 3
    harness.figure("faults exhausted", detail="503 x 5 for 3 attempts")


KILL_WEBHOOKS = ["kill_first", "kill_provider", "kill_third", "kill_fourth"]


def converge_play(server_url: str, key: str, retries: int) -> dict[str, Any]:
    return {
        "name": "Converge every webhook in every env",
        "hosts": "localhost",
        "gather_facts": False,
        "module_defaults": {"group/ductape.webhooks.ductape": {
            "api_url": server_url, "access_key": key, "retries": retries, "timeout": 30}},
        "tasks": [
            {"name": "register {{ item }}", "loop": KILL_WEBHOOKS, "register": "converged", "ignore_errors": True,
             "ductape.webhooks.ductape_webhook": {"product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": "{{ item }}",
                                                  "envs": [{"slug": env, "url": f"https://{env}.example.com/hooks/{{{{ item }}}}"}
                                                           for env in ENVS]}},
            harness.dump_task("converged.results"),
        ],
    }


@pytest.fixture(scope="module")
def kill_run(tmp_path_factory):
    """The server SIGKILLed inside the register call of kill_provider, while the provider registration
    of its prd env is outstanding; then started again on the same database and the play run again.
    What each step saw, for the tests below to judge (each of them runs this on its own when alone)."""
    key = harness.plant("kill access key")
    tmp_path = tmp_path_factory.mktemp("kill")
    with BlockingProvider() as provider, harness.local_server(seed(key, provider.url, KILL_WEBHOOKS)) as server:
        workdir = tmp_path / "first"
        process = harness.run_playbook(workdir, [converge_play(server.url, key, retries=0)], label="kill: first run",
                                       background=True)
        try:
            assert provider.first_call.wait(120), "the provider was never called"
            server.kill()
        finally:
            output, _unused = process.communicate(timeout=300)
        first = harness.finish_run(workdir, "kill: first run", process.returncode, output)
        provider.release()
        server.restart()  # the same port and database
        after_restart = harness.stored_rows(server)
        second = harness.run_playbook(tmp_path / "second", [converge_play(server.url, key, retries=3)],
                                      label="kill: second run")
        rows = harness.stored_rows(server)
        listed = harness.registrations(server, PRODUCT, ACCESS_TAG, key)
        provider_calls = list(provider.calls)
    return {"first": first, "after_restart": after_restart, "second": second, "rows": rows, "listed": listed,
            "provider_calls": provider_calls}


def kill_prd(kill_run) -> dict[str, Any]:
    [prd] = [r for r in kill_run["listed"] if (r["webhook_tag"], r["productEnv"]) == ("kill_provider", "prd")]
    return prd


def test_server_killed_mid_converge_then_a_rerun_converges(kill_run):
    first = kill_run["first"]
    assert first.dump is not None, first.output[-4000:]
    results = {result["item"]: result for result in first.dump}
    assert not results["kill_first"].get("failed"), results["kill_first"]
    assert all(results[tag].get("failed") for tag in KILL_WEBHOOKS[1:]), first.output[-4000:]
    before = {(env["slug"]): env["uuid"] for env in results["kill_first"]["envs"]}
    # Nothing lost: what the first run was told is stored is still stored, with the same uuids.
    assert {row["product_env"]: row["uuid"] for row in kill_run["after_restart"]
            if row["webhook_tag"] == "kill_first"} == before

    second = kill_run["second"]
    assert second.rc == 0, second.output[-6000:]
    results = {result["item"]: result for result in second.dump}
    assert results["kill_first"]["changed"] is False
    rows, listed = kill_run["rows"], kill_run["listed"]
    # Nothing duplicated: each (webhook, env) exactly once, in the table and in the listing.
    keys = [(row["webhook_tag"], row["product_env"]) for row in rows if row["deleted_at"] is None]
    assert sorted(keys) == sorted((tag, env) for tag in KILL_WEBHOOKS for env in ENVS)
    assert len(rows) == len(keys)
    assert sorted((r["webhook_tag"], r["productEnv"]) for r in listed) == sorted(keys)
    # The registration stored before the kill kept its uuid, and the provider was told its link.
    assert {call["body"]["url"] for call in kill_run["provider_calls"]} == {kill_prd(kill_run)["link"]}
    # Counted once every assertion about the kill and the re-run has passed.
    harness.figure("server kills", detail="SIGKILL inside register, during the provider call")


# A provider that refused the link, or never answered because the server died mid-call, is sent the
# link again by the next run: ductape-local marks the call "pending" first, and ductape_webhook treats
# any provider status but "registered" as something left to do.
def test_after_the_kill_the_rerun_gives_the_provider_its_link(kill_run):
    prd = kill_prd(kill_run)
    assert prd["provider_registration"] is not None and prd["provider_registration"]["status"] == "registered", (
        "after the re-run, the provider still does not hold the link of kill_provider in prd "
        f"(provider calls: {len(kill_run['provider_calls'])}): {prd['provider_registration']}")


def test_a_failed_provider_registration_is_sent_again_by_the_next_run(tmp_path):
    """The provider refuses the first registration (HTTP 500): the module fails naming the env and the
    provider's status, and the next identical run must send the link again rather than call it unchanged."""
    key = harness.plant("flaky access key")
    args = {"product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": "flaky_provider", "envs": receivers("flaky_provider")}
    play = {
        "name": "Register where the provider refuses once",
        "hosts": "localhost",
        "gather_facts": False,
        "module_defaults": {"group/ductape.webhooks.ductape": {"access_key": key, "retries": 0}},
        "tasks": [
            {"name": "first run: the provider answers 500", "ductape.webhooks.ductape_webhook": args,
             "register": "first", "ignore_errors": True},
            {"name": "second run: the same task", "ductape.webhooks.ductape_webhook": args,
             "register": "second", "ignore_errors": True},
            harness.dump_task("{'first': first, 'second': second}"),
        ],
    }
    with FlakyProvider([500]) as provider, harness.local_server(seed(key, provider.url, ["flaky_provider"])) as server:
        play["module_defaults"]["group/ductape.webhooks.ductape"]["api_url"] = server.url
        run = harness.run_playbook(tmp_path, [play], label="flaky provider")
        listed = harness.registrations(server, PRODUCT, ACCESS_TAG, key)
    assert run.dump is not None, run.output[-6000:]
    first = run.dump["first"]
    assert first.get("failed") is True
    assert first["msg"] == (f"register {ACCESS_TAG}/flaky_provider in prd, stg, dev: HTTP 502: "
                            "provider registration failed for env prd: provider answered HTTP 500"), first["msg"]
    [prd] = [r for r in listed if r["productEnv"] == "prd"]
    assert len(listed) == 3
    assert len(provider.calls) == 2, (
        f"the second run did not send the link to the provider again (provider calls: {len(provider.calls)}; "
        f"second run reported {[(e['slug'], e['action']) for e in run.dump['second'].get('envs', [])]}; "
        f"stored provider_registration: {prd['provider_registration']})")
    assert prd["provider_registration"]["status"] == "registered"
