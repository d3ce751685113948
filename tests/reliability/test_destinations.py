"""Receiver urls through the collection: a url that is the relay's own link (any spelling) and, with
--block-private-destinations, a private or metadata address are refused by the server at registration,
and a playbook shows the server's reason, naming the env's url, with nothing stored."""
from __future__ import annotations

from pathlib import Path

import reliability_harness as harness

PRODUCT = "my-product"
ACCESS_TAG = "stripe-payments"
KEY = "dtl_destinations_key_4f1c"
SEED = {
    "access_keys": [{"key": KEY, "products": [PRODUCT]}],
    "products": [{"tag": PRODUCT, "envs": ["prd", "stg"], "connections": [
        {"access_tag": ACCESS_TAG, "app": "stripe", "envs": {"prd": "live", "stg": "test"}}]}],
    "apps": [{"tag": "stripe", "webhooks": [{"tag": f"wh_{i}", "name": f"wh {i}"} for i in range(6)]}],
}


def task(name: str, tag: str, url: str) -> dict:
    return {"name": name, "register": name, "ignore_errors": True, "ductape.webhooks.ductape_webhook": {
        "product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": tag,
        "envs": [{"slug": "stg", "url": "http://8.8.8.8/fine"}, {"slug": "prd", "url": url}]}}


def test_refused_destinations_through_a_playbook(tmp_path: Path):
    with harness.local_server(SEED, block_private_destinations=True) as server:
        own = f"http://LOCALHOST.:{server.port}/webhooks/v1/process/0b6f1f3e-1111-4222-8333-444455556666"
        cases = {"metadata": ("wh_0", "http://169.254.169.254/latest/meta-data"),
                 "private": ("wh_1", "http://0xa000001/h"),
                 "ipv6_loopback": ("wh_2", "http://[::ffff:127.0.0.1]:8080/h"),
                 "self_loop": ("wh_3", own),
                 "public": ("wh_4", "http://1.1.1.1/h")}
        plays = [{"name": "destinations", "hosts": "localhost", "gather_facts": False,
                  "module_defaults": {"group/ductape.webhooks.ductape": {"api_url": server.url, "access_key": KEY}},
                  "tasks": [task(name, tag, url) for name, (tag, url) in cases.items()]
                  + [harness.dump_task("{" + ", ".join(f"'{n}': {n}" for n in cases) + "}")]}]
        run = harness.run_playbook(tmp_path / "destinations", plays, label="destinations")
        assert run.rc == 0, run.output[-4000:]
        for name in ("metadata", "private", "ipv6_loopback"):
            result = run.dump[name]
            assert result.get("failed") is True, result
            assert "--block-private-destinations" in result["msg"] and "envs[1].url" in result["msg"], result["msg"]
            harness.figure("destinations refused", detail=name)
        assert run.dump["self_loop"].get("failed") is True
        assert "deliver to itself" in run.dump["self_loop"]["msg"], run.dump["self_loop"]["msg"]
        assert not run.dump["public"].get("failed"), run.dump["public"]
        stored = {(r["webhook_tag"], r["product_env"]) for r in harness.stored_rows(server)}
        assert stored == {("wh_4", "stg"), ("wh_4", "prd")}, stored  # a refused env's partner is not written
