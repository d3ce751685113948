"""The role's pruning in its filters (plugins/filter/register.py): the plan declares the link-mode envs as
prune_keep, and the rows and summary show pruned registrations without asking for a paste."""
from __future__ import annotations

from ansible_collections.ductape.webhooks.plugins.filter.register import (
    register_plan,
    register_registrations,
    register_summary,
)

HOSTVARS = {"prd": {"ductape_receiver_base_url": "https://prd.example"},
            "stg": {"ductape_receiver_base_url": "https://stg.example", "ductape_registration_mode": "link"}}


def test_the_plan_keeps_every_link_mode_env_from_pruning():
    plan = register_plan([{"access_tag": "pay", "webhook_tag": "paid", "path": "/paid"},
                          {"access_tag": "pay", "webhook_tag": "refunded", "path": "/r", "envs": ["prd"]}],
                         ["prd", "stg"], HOSTVARS, "envs")
    assert plan["problems"] == []
    assert plan["prune_keep"] == [{"access_tag": "pay", "webhook_tag": "paid", "envs": ["stg"]}]


def env(slug, action, url="https://old.example/x"):
    return {"slug": slug, "action": action, "uuid": "u-" + slug, "link": "https://l/u-" + slug, "url": url,
            "method": "POST", "provider_registration": None}


FULL = {"changed": True, "webhooks": [
    {"access_tag": "pay", "webhook_tag": "paid", "changed": False, "envs": [env("prd", "unchanged")]},
    {"access_tag": "pay", "webhook_tag": "old", "changed": True, "pruned": True,
     "envs": [env("prd", "deleted"), env("dev", "deleted")]},
]}


def test_pruned_rows_never_ask_for_a_paste_and_an_env_without_a_host_comes_last():
    rows = register_registrations(FULL, {}, ["prd", "stg"], {"prd": "prd", "stg": "stg"})
    assert [(row["webhook_tag"], row["env"], row["pruned"], row["paste_link"]) for row in rows] == [
        ("paid", "prd", False, True), ("old", "prd", True, False), ("old", "dev", True, False)]
    assert rows[-1]["host"] is None


def test_the_summary_says_what_pruning_removes_or_would_remove():
    rows = register_registrations(FULL, {}, ["prd", "stg"], {"prd": "prd", "stg": "stg"})
    lines = register_summary(rows, "my-product", check_mode=True)
    assert lines[0] == ("Product 'my-product': 3 registration(s) in 2 environment(s): 1 would be unchanged, "
                        "2 would be deleted (check mode: nothing was written)")
    assert "  pay/old: would be deleted, POST https://old.example/x (no longer declared in the inventory)" in lines
    assert "dev (no host of the inventory):" in lines
    pasted = lines[lines.index("Links to paste into the providers' dashboards (nobody registered them at the "
                               "provider):") + 1:]
    assert [line.split()[1] for line in pasted] == ["pay/paid"]
