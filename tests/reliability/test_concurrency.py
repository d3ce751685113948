"""Many forks at once against one ductape-local, as an AWX job with many hosts runs.

One play, one fork per host, every host with `ansible_connection: local`: twenty hosts each register a
different (webhook, env) of one product, at the same time; two hosts register the same env of one
webhook with the same receiver, and two more the same env of another webhook with different receivers.
Every registration must be there exactly once, each fork must succeed, and a second pass of the same
play changes nothing where nobody disagrees.
"""
from __future__ import annotations

import sys
from typing import Any

import pytest

import reliability_harness as harness

PRODUCT = "conc-product"
ACCESS_TAG = "stripe-payments"
ENVS = ["e01", "e02", "e03", "e04", "e05"]
WEBHOOKS = ["w01", "w02", "w03", "w04"]
SAME, RACE = "w_same_receiver", "w_two_receivers"


def seed(key: str) -> dict[str, Any]:
    return {
        "access_keys": [{"key": key, "products": [PRODUCT]}],
        "products": [{"tag": PRODUCT, "envs": ENVS, "connections": [
            {"access_tag": ACCESS_TAG, "app": "stripe", "envs": {env: "live" for env in ENVS}}]}],
        "apps": [{"tag": "stripe", "webhooks": [{"tag": tag, "name": tag} for tag in WEBHOOKS + [SAME, RACE]]}],
    }


def hosts() -> dict[str, dict[str, Any]]:
    found = {}
    for webhook in WEBHOOKS:
        for env in ENVS:
            found[f"{webhook}-{env}"] = {"webhook_tag": webhook, "env_slug": env,
                                         "receiver": f"https://{env}.example.com/hooks/{webhook}"}
    for index in (1, 2):
        found[f"same-{index}"] = {"webhook_tag": SAME, "env_slug": "e01", "receiver": "https://e01.example.com/hooks/same"}
        found[f"race-{index}"] = {"webhook_tag": RACE, "env_slug": "e01",
                                  "receiver": f"https://e01.example.com/hooks/race-{index}"}
    return found


def inventory() -> dict[str, Any]:
    common = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    return {"all": {"hosts": {name: {**common, **variables} for name, variables in hosts().items()}}}


def play(server_url: str, key: str) -> dict[str, Any]:
    task = {"ductape.webhooks.ductape_webhook": {
        "product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": "{{ webhook_tag }}",
        "envs": [{"slug": "{{ env_slug }}", "url": "{{ receiver }}", "method": "POST",
                  "auth": {"headers": {"X-Signature-Key": "{{ signing_key }}"}}}]}}
    by_host = "dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars, '{}')))"
    return {
        "name": "Every host registers its own webhook env, all at once",
        "hosts": "all",
        "gather_facts": False,
        "vars": {"signing_key": harness.plant("concurrency auth header")},
        "module_defaults": {"group/ductape.webhooks.ductape": {"api_url": server_url, "access_key": key}},
        "tasks": [
            {"name": "first pass", **task, "register": "first"},
            {"name": "second pass", **task, "register": "second"},
            harness.dump_task("{'first': " + by_host.format("first") + ", 'second': " + by_host.format("second") + "}"),
        ],
    }


@pytest.fixture(scope="module")
def concurrent_run(tmp_path_factory):
    key = harness.plant("concurrency access key")
    forks = len(hosts())
    with harness.local_server(seed(key)) as server:
        run = harness.run_playbook(tmp_path_factory.mktemp("concurrency"), [play(server.url, key)], label="concurrency",
                                   inventory=inventory(), args=["--forks", str(forks)])
        rows = harness.stored_rows(server)
        listed = harness.registrations(server, PRODUCT, ACCESS_TAG, key)
        stats = server.stats()
    assert run.rc == 0, run.output[-8000:]
    harness.FIGURES["forks"] = max(harness.FIGURES["forks"], forks)
    return {"run": run, "rows": rows, "listed": listed, "stats": stats, "forks": forks}


def test_every_fork_succeeded(concurrent_run):
    dump = concurrent_run["run"].dump
    assert len(dump["first"]) == concurrent_run["forks"] == 24
    failed = {host: result.get("msg") for host, result in dump["first"].items() if result.get("failed")}
    assert not failed


def test_every_registration_is_present_exactly_once(concurrent_run):
    rows, listed = concurrent_run["rows"], concurrent_run["listed"]
    expected = sorted({(v["webhook_tag"], v["env_slug"]) for v in hosts().values()})
    assert len(expected) == 20 + 2
    # The table itself, tombstones included: a duplicate, or a delete-and-recreate, would show here.
    assert sorted((row["webhook_tag"], row["product_env"]) for row in rows) == expected
    assert all(row["deleted_at"] is None for row in rows)
    assert sorted((r["webhook_tag"], r["productEnv"]) for r in listed) == expected
    for host, variables in hosts().items():
        if variables["webhook_tag"] in WEBHOOKS:
            [row] = [r for r in rows if (r["webhook_tag"], r["product_env"]) == (variables["webhook_tag"],
                                                                                 variables["env_slug"])]
            assert row["url"] == variables["receiver"], host


def test_two_forks_on_one_env_leave_one_registration(concurrent_run):
    rows, dump = concurrent_run["rows"], concurrent_run["run"].dump
    [same] = [row for row in rows if row["webhook_tag"] == SAME]
    [race] = [row for row in rows if row["webhook_tag"] == RACE]
    assert same["url"] == "https://e01.example.com/hooks/same"
    assert race["url"] in {hosts()[f"race-{i}"]["receiver"] for i in (1, 2)}
    # Both forks of a pair name the one registration that exists.
    for pair, row in (("same", same), ("race", race)):
        uuids = {dump["first"][f"{pair}-{i}"]["envs"][0]["uuid"] for i in (1, 2)}
        assert uuids == {row["uuid"]}, pair
    harness.figure("concurrent writers of one env", 4)


def test_the_second_pass_changes_nothing_nobody_disputes(concurrent_run):
    second = concurrent_run["run"].dump["second"]
    undisputed = [host for host, v in hosts().items() if v["webhook_tag"] != RACE]
    assert [host for host in undisputed if second[host].get("changed")] == []
    assert all(second[host]["envs"][0]["action"] == "unchanged" for host in undisputed)
