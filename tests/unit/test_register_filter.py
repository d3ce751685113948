"""The filters behind the role ductape.webhooks.register (plugins/filter/register.py), without Ansible.

The role's molecule scenario runs them through real playbooks; these pin each decision and message.
"""
from __future__ import annotations

from ansible_collections.ductape.webhooks.plugins.filter.register import (
    FilterModule,
    register_failures,
    register_plan,
    register_registrations,
    register_summary,
)

SECRET = "s3cr3t-value"

HOSTVARS = {
    "prd": {"ductape_receiver_base_url": "https://prd.example/hooks/",
            "ductape_webhook_auth": {"headers": {"X-Key": SECRET, "X-Env": "prd"}}},
    "stg": {"ductape_receiver_base_url": "https://stg.example", "ductape_registration_mode": "link"},
    "dev-host": {"ductape_env": "dev", "ductape_receiver_base_url": "https://dev.example"},
}
GROUP = ["prd", "stg", "dev-host"]


def plan(webhooks, group_hosts=None, hostvars=None):
    return register_plan(webhooks, GROUP if group_hosts is None else group_hosts,
                         HOSTVARS if hostvars is None else hostvars, "envs")


def test_the_filters_are_exported_under_their_documented_names():
    assert set(FilterModule().filters()) == {"register_plan", "register_failures", "register_registrations",
                                             "register_summary"}


def test_one_full_call_per_webhook_and_one_link_call_per_link_mode_environment():
    result = plan([{"access_tag": "pay", "webhook_tag": "paid", "path": "/paid",
                    "auth": {"headers": {"X-Key": "webhook-level"}, "query": {"q": "1"}}}])
    assert result["problems"] == []
    [call] = result["full_calls"]
    # Each call is one entry of ductape_webhook's option webhooks, as it is: nothing else in it.
    assert set(call) == {"access_tag", "webhook_tag", "envs"}
    assert result["env_hosts"] == {"prd": "prd", "stg": "stg", "dev": "dev-host"}
    assert call["envs"] == [
        # The webhook's auth is merged over the host's, key by key.
        {"slug": "prd", "url": "https://prd.example/hooks/paid", "method": "POST",
         "auth": {"headers": {"X-Key": "webhook-level", "X-Env": "prd"}, "query": {"q": "1"}}},
        {"slug": "dev", "url": "https://dev.example/paid", "method": "POST",
         "auth": {"headers": {"X-Key": "webhook-level"}, "query": {"q": "1"}}},
    ]
    assert result["link_calls"] == [{"access_tag": "pay", "webhook_tag": "paid", "env": "stg", "host": "stg",
                                     "url": "https://stg.example/paid", "method": "POST"}]


def test_overrides_win_per_environment_and_envs_limits_the_environments():
    result = plan([
        {"access_tag": "pay", "webhook_tag": "a", "url": "https://one.example/a", "method": "PUT",
         "overrides": {"prd": {"url": "https://other.example/a", "auth": {"body": {"k": "v"}}},
                       "stg": {"mode": "full", "path": "x", "method": "PATCH"}}},
        {"access_tag": "pay", "webhook_tag": "b", "path": "b", "envs": ["dev"]},
    ])
    assert result["problems"] == []
    first, second = result["full_calls"]
    assert [(env["slug"], env["url"], env["method"]) for env in first["envs"]] == [
        ("prd", "https://other.example/a", "PUT"),
        ("stg", "https://stg.example/x", "PATCH"),
        ("dev", "https://one.example/a", "PUT"),
    ]
    assert first["envs"][0]["auth"] == {"headers": {"X-Key": SECRET, "X-Env": "prd"}, "body": {"k": "v"}}
    assert [env["slug"] for env in second["envs"]] == ["dev"]
    assert result["link_calls"] == []


def test_every_input_error_is_named_and_no_auth_value_is_quoted():
    hostvars = dict(HOSTVARS, bad={"ductape_env": "BAD!", "ductape_registration_mode": "paper",
                                   "ductape_receiver_base_url": "ftp://x",
                                   "ductape_webhook_auth": {"cookies": {}, "headers": SECRET}},
                    twin={"ductape_env": "dev"})
    result = plan([
        {"access_tag": "pay", "webhook_tag": "a", "path": "/a", "url": "https://both.example",
         "auth": {"headers": {"X-Key": SECRET}}},
        {"access_tag": "pay", "webhook_tag": "a", "path": "/a"},
        {"access_tag": "pay", "webhook_tag": "c", "url": "not-a-url", "envs": ["prd", "qa1"],
         "overrides": {"qa1": {"colour": 1, "method": "FETCH", "mode": "fax", "auth": SECRET}}},
        {"access_tag": "pay", "webhook_tag": "d"},
    ], group_hosts=GROUP + ["bad", "twin"], hostvars=hostvars)
    problems = result["problems"]
    expected = [
        "host 'bad': ductape_env 'BAD!' is not a Ductape environment slug",
        "host 'bad': ductape_registration_mode 'paper' must be 'full' or 'link'",
        "host 'bad': ductape_receiver_base_url 'ftp://x' is not an http:// or https:// URL",
        "host 'bad': ductape_webhook_auth has the unknown key 'cookies'",
        "host 'bad': ductape_webhook_auth.headers must be a mapping",
        "host 'twin': ductape_env 'dev' is already the environment of host 'dev-host'",
        "webhook 'pay/a': set path or url, not both",
        "webhook 'pay/a': listed twice in ductape_webhooks",
        "webhook 'pay/c': envs lists 'qa1', which no host of group 'envs' defines (known: prd, stg, dev)",
        "webhook 'pay/c': overrides.qa1: no host of group 'envs' defines environment 'qa1'",
        "webhook 'pay/c': overrides.qa1 has the unknown key 'colour'",
        "webhook 'pay/c': overrides.qa1.method 'FETCH' must be one of GET, POST, PUT, PATCH, DELETE",
        "webhook 'pay/c': overrides.qa1.mode 'fax' must be 'full' or 'link'",
        "webhook 'pay/c': overrides.qa1.auth must be a mapping",
        "webhook 'pay/c': url 'not-a-url' for environment 'prd' is not an http:// or https:// URL",
        "webhook 'pay/d': no receiver for environment 'prd' (host 'prd')",
    ]
    for start in expected:
        assert any(problem.startswith(start) for problem in problems), (start, problems)
    assert len(problems) == len(expected) + 2  # pay/d has no receiver in stg and dev either
    assert not any(SECRET in problem for problem in problems)


def test_a_path_needs_the_hosts_base_url_and_an_empty_group_is_a_problem():
    result = plan([{"access_tag": "pay", "webhook_tag": "a", "path": "/a"}], group_hosts=["bare"],
                  hostvars={"bare": {}})
    assert result["problems"] == ["host 'bare': ductape_receiver_base_url is not set, and webhook 'pay/a' "
                                  "needs it for its path '/a' in environment 'bare'"]
    assert plan([], group_hosts=[])["problems"] == [
        "inventory group 'envs' (ductape_environments_group) has no hosts: add one host per Ductape environment"]


# The registered result of the role's one ductape_webhook task, in the batch form.
FULL_RESULT = {
    "changed": True, "failed": True, "msg": "1 of 2 webhooks failed: pay/b: HTTP 403 for product 'pay'",
    "invocation": {"module_args": {"webhooks": [
        {"access_tag": "pay", "webhook_tag": "a",
         "envs": [{"slug": "prd", "auth": {"headers": {"X-Key": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"}}}]}]}},
    "webhooks": [
        {"access_tag": "pay", "webhook_tag": "a", "changed": True,
         "envs": [{"slug": "dev", "action": "created", "uuid": "u1", "link": "https://link/1", "url": "https://d/a",
                   "method": "POST", "provider_registration": {"status": "registered"}},
                  {"slug": "prd", "action": "updated", "uuid": "u2", "link": "https://link/2", "url": "https://p/a",
                   "method": "PUT", "provider_registration": None}]},
        {"access_tag": "pay", "webhook_tag": "b", "changed": False, "failed": True, "msg": "HTTP 403 for product 'pay'",
         "envs": [{"slug": "prd", "action": None, "uuid": None, "link": None, "url": "https://p/b", "method": "POST",
                   "provider_registration": None}]},
    ],
}
ENV_HOSTS = {"prd": "prd", "stg": "stg", "dev": "dev-host"}
LINK_RESULTS = {"results": [
    {"changed": False, "action": "unchanged", "uuid": "u3", "link": "https://link/3",
     "item": {"access_tag": "pay", "webhook_tag": "a", "env": "stg", "host": "stg", "url": "https://s/a",
              "method": "POST"}},
]}


def test_registrations_follow_the_groups_host_order_and_carry_no_auth():
    rows = register_registrations(FULL_RESULT, LINK_RESULTS, GROUP, ENV_HOSTS)
    assert [(row["env"], row["host"], row["mode"], row["action"], row["paste_link"]) for row in rows] == [
        ("prd", "prd", "full", "updated", True),
        ("stg", "stg", "link", "unchanged", True),
        ("dev", "dev-host", "full", "created", False),
    ]
    assert SECRET not in repr(rows)
    assert register_registrations({"skipped": True}, {}, GROUP, ENV_HOSTS) == []
    assert register_registrations({"changed": False, "webhooks": []}, {"results": []}, GROUP, ENV_HOSTS) == []


def test_failures_name_the_webhook_and_its_envs_not_the_auth():
    assert register_failures(FULL_RESULT) == ["pay/b in prd: HTTP 403 for product 'pay'"]
    assert register_failures({"changed": False, "webhooks": [FULL_RESULT["webhooks"][0]]}) == []
    assert register_failures({"skipped": True, "changed": False}) == []
    assert register_failures({}) == []


def test_a_task_refused_before_any_request_fails_with_its_own_message():
    refused = {"failed": True, "changed": False, "msg": "access_key: no access key given"}
    assert register_failures(refused) == ["access_key: no access key given"]


def test_summary_tallies_lists_per_environment_and_aligns_the_links_to_paste():
    rows = register_registrations(FULL_RESULT, LINK_RESULTS, GROUP, ENV_HOSTS)
    assert register_summary(rows, "shop") == [
        "Product 'shop': 3 registration(s) in 3 environment(s): 1 updated, 1 unchanged, 1 created",
        "prd (host prd):",
        "  pay/a: updated, PUT https://p/a (no provider registration endpoint)",
        "stg (host stg):",
        "  pay/a: unchanged, POST https://s/a (link mode)",
        "dev (host dev-host):",
        "  pay/a: created, POST https://d/a (registered at the provider)",
        "Links to paste into the providers' dashboards (nobody registered them at the provider):",
        "  prd  pay/a  https://link/2",
        "  stg  pay/a  https://link/3",
    ]
    checked = register_summary([dict(rows[2], link=None, paste_link=True, action="created")], "shop", True)
    assert checked[0] == ("Product 'shop': 1 registration(s) in 1 environment(s): 1 would be created "
                          "(check mode: nothing was written)")
    assert checked[-1] == "  dev  pay/a  (created on a real run)"


def test_an_empty_summary_says_there_is_nothing_to_paste():
    assert register_summary([], "shop") == [
        "Product 'shop': 0 registration(s) in 0 environment(s)",
        "No link to paste: every registration is registered at its provider.",
    ]
