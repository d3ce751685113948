"""What survives a restart, what a seed load does to an existing database, and seed errors."""
from __future__ import annotations

import subprocess
import sys

import requests
import yaml

from conftest import Api, data_of, error_of, example_seed, live_registrations, registered
from ductape_local.testing import LocalServer, LocalServerError


def test_registrations_survive_restart_and_crash():
    with LocalServer() as server:
        api = Api(server)
        prd = registered(api, envs=[{"slug": "prd", "url": "https://a.example.com/h",
                                     "auth": {"headers": {"X-K": "v"}}}])["prd"]
        server.restart()
        [after_restart] = live_registrations(api)
        assert after_restart == {**{k: v for k, v in prd.items() if k not in ("changed", "created")},
                                 "webhook_tag": "payment_succeeded"}
        server.kill()
        server.start()
        again = registered(api, envs=[{"slug": "prd", "url": "https://a.example.com/h",
                                       "auth": {"headers": {"X-K": "v"}}}])["prd"]
        assert (again["uuid"], again["changed"]) == (prd["uuid"], False)


def test_loading_the_seed_again_is_idempotent_and_keeps_registrations():
    with LocalServer() as server:
        api = Api(server)
        registered(api, envs=[{"slug": "prd", "url": "https://a.example.com/h"}])
        before = data_of(api.webhooks())
        server.restart()  # loads the same seed file into the same database
        server.restart()
        assert data_of(api.webhooks()) == before


def test_a_changed_seed_never_drops_a_registration():
    seed = example_seed()
    with LocalServer(seed) as server:
        api = Api(server)
        prd = registered(api, envs=[{"slug": "prd", "url": "https://a.example.com/h"}])["prd"]
        renamed = example_seed()
        renamed["apps"][0]["webhooks"][0]["name"] = "Payment succeeded (renamed)"
        renamed["apps"][0]["webhooks"].append({"tag": "payout_paid", "name": "Payout paid"})
        server.seed_path.write_text(yaml.safe_dump(renamed), encoding="utf-8")
        server.restart()
        listing = {w["tag"]: w for w in data_of(api.webhooks())}
        assert listing["payment_succeeded"]["name"] == "Payment succeeded (renamed)"
        assert [r["uuid"] for r in listing["payment_succeeded"]["config"]] == [prd["uuid"]]
        assert listing["payout_paid"]["config"] == []


def test_database_remembers_its_seed_when_started_without_one():
    with LocalServer() as server:
        uuid = registered(Api(server))["prd"]["uuid"]
        server.stop()
        with LocalServer(db_path=server.db_path, load_seed=False) as second:
            assert "--seed" not in second.command()
            assert [r["uuid"] for r in live_registrations(Api(second))] == [uuid]


def test_bad_seed_is_refused_with_the_offending_path():
    seed = example_seed()
    seed["products"][0]["envs"].append("QA")
    try:
        with LocalServer(seed):
            raise AssertionError("a bad seed was accepted")
    except LocalServerError as exc:
        assert "seed error: products[0].envs[3]: env slug must be lowercase, 3+ characters (got 'QA')" in str(exc)


def test_empty_database_without_seed_is_refused(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ductape_local", "serve", "--db", str(tmp_path / "x.db")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "holds no seed yet: pass --seed FILE" in result.stderr


def test_seed_example_is_a_valid_seed_with_the_documented_content(tmp_path):
    printed = subprocess.run([sys.executable, "-m", "ductape_local", "seed-example"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
    (tmp_path / "seed.yml").write_text(printed)
    with LocalServer(tmp_path / "seed.yml") as server:
        assert server.access_key == "dtl_local_example_key"
        api = Api(server)
        assert [w["tag"] for w in data_of(api.webhooks())] == ["charge_refunded", "payment_succeeded"]
        assert [w["name"] for w in data_of(api.webhooks(access_tag="paystack-payments"))] == [
            "Charge success", "Transfer success"]
        envs = registered(api, envs=[{"slug": s, "url": "https://a.example.com/h"} for s in ("prd", "stg", "dev")])
        assert {s: r["appEnv"] for s, r in envs.items()} == {"prd": "live", "stg": "test", "dev": "test"}


def test_test_mode_routes_do_not_exist_without_test_mode():
    with LocalServer(test_mode=False) as server:
        for method, path in [("GET", "/_local/stats"), ("POST", "/_local/stats/reset"), ("POST", "/_local/faults")]:
            response = requests.request(method, server.url + path, json={}, timeout=10)
            assert error_of(response, 404) == f"no such route: {method} {path}"
        assert "/_local" not in requests.get(server.url + "/openapi.json", timeout=10).text


def test_the_commented_out_registration_block_of_the_example_seed_is_a_valid_declaration(tmp_path):
    from ductape_local.catalog import load_seed_file
    from ductape_local.cli import example_seed as example_seed_text

    lines = example_seed_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "# registration:")
    indent = lines[start].index("#")
    uncommented = list(lines)
    for i in range(start, len(lines)):
        if not lines[i].startswith(" " * indent + "#"):
            break
        uncommented[i] = " " * indent + lines[i][indent + 2:]
    (tmp_path / "seed.yml").write_text("\n".join(uncommented) + "\n")
    catalog = load_seed_file(tmp_path / "seed.yml")
    endpoint = catalog.apps["stripe"].webhooks["charge_refunded"].registration["live"]
    assert (endpoint.method, endpoint.link_in, endpoint.link_key) == ("POST", "body", "endpoint.url")
