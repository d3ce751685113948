"""Many forks at once against one ductape-local, as an AWX job with many hosts runs.

One play, one fork per host, every host with `ansible_connection: local`: twenty hosts each register a
different (webhook, env) of one product, at the same time; two hosts register the same env of one
webhook with the same receiver, and two more the same env of another webhook with different receivers.
Every registration must be there exactly once, each fork must succeed, and a second pass of the same
play changes nothing where nobody disagrees.

The figures are measured from what happened, not from the inputs. A proxy in front of the server
(stub_servers.MeetingProxy) holds each host's first listing until every host has sent one, so every
fork is under way at once; a callback (callback_plugins/host_times.py) records when each host's task
started and ended, and "forks" is the most hosts whose tasks were running at one instant. The proxy
also makes the register requests of each disputed env meet inside the server (sent but for their last
byte until the other has arrived), and "concurrent writers of one env" counts the register requests of
one env that were at the server at the same time as another.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

import reliability_harness as harness
from stub_servers import MeetingProxy, most_at_once, overlapping

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


HERE = Path(__file__).resolve().parent
LISTING, REGISTER = "/webhooks/v1/webhooks", "/webhooks/v1/register"


def meeting(forks: int):
    def choose(method: str, path: str, body: Any):
        if method == "GET" and path == LISTING:
            return ("every fork", forks, False)
        if method == "POST" and path == REGISTER and isinstance(body, dict) and body.get("webhook_tag") in (SAME, RACE):
            return (("writers", body["webhook_tag"], tuple(env.get("slug") for env in body.get("envs") or [])), 2, True)
        return None
    return choose


def task_intervals(times_path: Path, task: str) -> dict[str, tuple[float, float]]:
    starts, ends = {}, {}
    for line in times_path.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event["task"] == task:
            (starts if event["event"] == "start" else ends)[event["host"]] = event["at"]
    return {host: (starts[host], ends[host]) for host in starts if host in ends}


@pytest.fixture(scope="module")
def concurrent_run(tmp_path_factory):
    key = harness.plant("concurrency access key")
    forks = len(hosts())
    workdir = tmp_path_factory.mktemp("concurrency")
    times_path = workdir / "host_times.jsonl"
    env = {"ANSIBLE_CALLBACK_PLUGINS": str(HERE / "callback_plugins"), "ANSIBLE_CALLBACKS_ENABLED": "host_times",
           "RELIABILITY_HOST_TIMES": str(times_path)}
    with harness.local_server(seed(key)) as server, MeetingProxy(server.port, meeting(forks)) as proxy:
        run = harness.run_playbook(workdir, [play(proxy.url, key)], label="concurrency",
                                   inventory=inventory(), args=["--forks", str(forks)], env=env)
        rows = harness.stored_rows(server)
        listed = harness.registrations(server, PRODUCT, ACCESS_TAG, key)
        stats = server.stats()
        records = list(proxy.records)
    assert run.rc == 0, run.output[-8000:]
    return {"run": run, "rows": rows, "listed": listed, "stats": stats, "forks": forks, "records": records,
            "first_pass": task_intervals(times_path, "first pass")}


def test_the_forks_ran_at_once(concurrent_run):
    intervals = concurrent_run["first_pass"]
    assert sorted(intervals) == sorted(hosts())
    listings = [r for r in concurrent_run["records"] if r["key"] == "every fork" and r["joined"]]
    assert len(listings) == concurrent_run["forks"] and all(r["met"] for r in listings), listings
    at_once = most_at_once(list(intervals.values()))
    assert at_once == concurrent_run["forks"], f"only {at_once} of {concurrent_run['forks']} forks ran at once"
    harness.FIGURES["forks"] = max(harness.FIGURES["forks"], at_once)


def test_the_writers_of_one_env_were_at_the_server_together(concurrent_run):
    writers = [r for r in concurrent_run["records"] if r["key"] and r["key"][0] == "writers" and r["joined"]]
    by_env: dict[Any, list[dict[str, Any]]] = {}
    for record in writers:
        by_env.setdefault(record["key"], []).append(record)
    assert sorted(key[1] for key in by_env) == sorted([SAME, RACE]), writers
    together = 0
    for key, records in by_env.items():
        assert len(records) == 2 and all(r["met"] for r in records), (key, records)
        together += overlapping([(r["sent"], r["answered"]) for r in records])
    assert together == 4
    harness.figure("concurrent writers of one env", together)


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


def test_the_second_pass_changes_nothing_nobody_disputes(concurrent_run):
    second = concurrent_run["run"].dump["second"]
    undisputed = [host for host, v in hosts().items() if v["webhook_tag"] != RACE]
    assert [host for host in undisputed if second[host].get("changed")] == []
    assert all(second[host]["envs"][0]["action"] == "unchanged" for host in undisputed)
