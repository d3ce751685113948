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
            "ductape_webhook_auth": {"pay": {"headers": {"X-Key": SECRET, "X-Env": "prd"}},
                                     "other-app": {"headers": {"X-Other": "other-secret"}}}},
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
    # One entry of ductape_webhook_link's option webhooks per webhook, with its link-mode envs.
    assert result["link_calls"] == [{"access_tag": "pay", "webhook_tag": "paid",
                                     "envs": [{"slug": "stg", "url": "https://stg.example/paid", "method": "POST"}]}]


def _other_app():
    return {"access_tag": "other-app", "webhook_tag": "x", "path": "/x"}


def test_host_auth_goes_only_to_the_webhooks_of_its_access_tag():
    result = plan([{"access_tag": "pay", "webhook_tag": "paid", "path": "/paid"},
                   {"access_tag": "shipping", "webhook_tag": "shipped", "path": "/shipped"}, _other_app()])
    assert result["problems"] == []
    pay, shipping, other = result["full_calls"]
    assert pay["envs"][0]["auth"] == {"headers": {"X-Key": SECRET, "X-Env": "prd"}}
    # prd's host auth is pay's and other-app's: the shipping provider gets neither.
    assert [env["auth"] for env in shipping["envs"]] == [{}, {}]
    assert other["envs"][0]["auth"] == {"headers": {"X-Other": "other-secret"}}
    assert SECRET not in repr(other) and SECRET not in repr(shipping)


def test_the_former_host_auth_shape_is_refused_saying_what_to_change():
    hostvars = dict(HOSTVARS, prd=dict(HOSTVARS["prd"], ductape_webhook_auth={"headers": {"X-Key": SECRET}}))
    result = plan([{"access_tag": "pay", "webhook_tag": "paid", "path": "/paid"}], hostvars=hostvars)
    assert result["problems"] == [
        "host 'prd': ductape_webhook_auth is keyed by access tag: it applies to the webhooks of that app only. "
        "Move its \"headers\" under the access tag it belongs to, for example "
        "ductape_webhook_auth: {stripe-payments: {headers: ...}}"]
    # An access tag that no webhook of this run has is another play's: left alone, sent nowhere.
    hostvars["prd"]["ductape_webhook_auth"] = {"billing": {"headers": {"X-Key": SECRET}}}
    result = plan([{"access_tag": "pay", "webhook_tag": "paid", "path": "/paid"}], hostvars=hostvars)
    assert result["problems"] == [] and SECRET not in repr(result["full_calls"])


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


def test_every_input_error_is_named_by_index_and_field_and_no_auth_value_is_quoted():
    hostvars = dict(HOSTVARS, bad={"ductape_env": "BAD!", "ductape_registration_mode": "paper",
                                   "ductape_receiver_base_url": "ftp://x",
                                   "ductape_webhook_auth": {"pay": {"cookies": {}, "headers": SECRET}}},
                    twin={"ductape_env": "dev"})
    result = plan([
        {"access_tag": "pay", "webhook_tag": "a", "path": "/a", "url": "https://both.example",
         "auth": {"headers": {"X-Key": SECRET}}},
        {"access_tag": "pay", "webhook_tag": "a", "path": "/a"},
        {"access_tag": "pay", "webhook_tag": "c", "url": "not-a-url", "envs": ["prd", "qa1"],
         "overrides": {"qa1": {"colour": 1, "method": "FETCH", "mode": "fax", "auth": SECRET}}},
        {"access_tag": "pay", "webhook_tag": "d", "method": "post", "metod": "PUT", "auth": SECRET},
        "just-a-string",
        {"webhook_tag": 5, "url": "https://user:pw-secret@h.example/x"},
    ], group_hosts=GROUP + ["bad", "twin"], hostvars=hostvars)
    problems = result["problems"]
    expected = [
        "host 'bad': ductape_env \"BAD!\" is not a Ductape environment slug",
        "host 'bad': ductape_registration_mode \"paper\" must be 'full' or 'link'",
        "host 'bad': ductape_receiver_base_url: must be an absolute http:// or https:// URL (got \"ftp://x\")",
        "host 'bad': ductape_webhook_auth[\"pay\"]: unknown part \"cookies\"",
        "host 'bad': ductape_webhook_auth[\"pay\"].headers: must be a mapping of names to values (got a string; "
        "its value is not shown)",
        "host 'twin': ductape_env 'dev' is already the environment of host 'dev-host'",
        "ductape_webhooks[4]: must be a mapping with access_tag, webhook_tag and a receiver (got a string)",
        "ductape_webhooks[1]: webhook \"pay/a\" is listed twice (ductape_webhooks[0] and ductape_webhooks[1])",
        "ductape_webhooks[0]: set path or url, not both",
        "ductape_webhooks[2].envs[1]: \"qa1\" is not an environment that a host of group 'envs' defines "
        "(known: prd, stg, dev)",
        "ductape_webhooks[2].overrides.qa1: no host of group 'envs' defines environment \"qa1\"",
        "ductape_webhooks[2].overrides.qa1: unknown key \"colour\"",
        "ductape_webhooks[2].overrides.qa1.method: must be one of GET, POST, PUT, PATCH, DELETE (got \"FETCH\")",
        "ductape_webhooks[2].overrides.qa1.mode: must be 'full' or 'link' (got \"fax\")",
        "ductape_webhooks[2].overrides.qa1.auth: must be a mapping with any of the keys",
        "ductape_webhooks[2].url: must be an absolute http:// or https:// URL (got \"not-a-url\" for environment 'prd')",
        "ductape_webhooks[3]: unknown key \"metod\"",
        "ductape_webhooks[3].method: must be one of GET, POST, PUT, PATCH, DELETE (got \"post\")",
        "ductape_webhooks[3].auth: must be a mapping with any of the keys headers, query, body, params (got a string",
        "ductape_webhooks[3]: no receiver for environment 'prd' (host 'prd')",
        "ductape_webhooks[5].access_tag: is required",
        "ductape_webhooks[5].webhook_tag: must be a string (got 5)",
    ]
    for start in expected:
        assert any(problem.startswith(start) for problem in problems), (start, problems)
    # pay/d has no receiver in stg and dev either; webhooks[5]'s url is used in the three envs
    assert len(problems) == len(expected) + 2, problems
    assert not any(SECRET in problem or "pw-secret" in problem for problem in problems)


def test_a_path_needs_the_hosts_base_url_and_an_empty_group_is_a_problem():
    result = plan([{"access_tag": "pay", "webhook_tag": "a", "path": "/a"}], group_hosts=["bare"],
                  hostvars={"bare": {}})
    assert result["problems"] == ["host 'bare': ductape_receiver_base_url is not set, and ductape_webhooks[0] "
                                  "needs it for its path \"/a\" in environment 'bare'"]
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
# The registered result of the role's one ductape_webhook_link task, in the batch form.
LINK_RESULTS = {"changed": False, "webhooks": [
    {"access_tag": "pay", "webhook_tag": "a", "changed": False,
     "envs": [{"slug": "stg", "action": "unchanged", "uuid": "u3", "link": "https://link/3", "url": "https://s/a",
               "method": "POST", "provider_registration": None}]},
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
    assert register_registrations({"changed": False, "webhooks": []}, {"webhooks": []}, GROUP, ENV_HOSTS) == []


def test_failures_name_the_webhook_and_its_envs_not_the_auth():
    assert register_failures(FULL_RESULT) == ["pay/b in prd: HTTP 403 for product 'pay'"]
    assert register_failures({"changed": False, "webhooks": [FULL_RESULT["webhooks"][0]]}) == []
    assert register_failures({"skipped": True, "changed": False}) == []
    assert register_failures({}) == []


def test_failures_of_both_tasks_are_named():
    link_failed = {"failed": True, "changed": False, "msg": "1 of 1 webhooks failed", "webhooks": [
        {"access_tag": "pay", "webhook_tag": "c", "failed": True, "msg": "HTTP 404", "envs": [{"slug": "stg"}]}]}
    assert register_failures(FULL_RESULT, link_failed) == ["pay/b in prd: HTTP 403 for product 'pay'",
                                                           "pay/c in stg: HTTP 404"]
    assert register_failures({}, {"failed": True, "msg": "product: is required"}) == ["product: is required"]


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


def test_a_real_run_on_an_api_that_reports_no_provider_status_nor_link_says_so():
    """The hosted Ductape's answers (ductape-local --compat ductape) carry neither: the summary must not
    claim "no provider registration endpoint" nor "(created on a real run)" after a real run."""
    full = {"changed": True, "webhooks": [
        {"access_tag": "ductape:paystack", "webhook_tag": "charge_success", "changed": True,
         "envs": [{"slug": "prd", "action": "created", "uuid": "u9", "link": None, "url": "https://p/c",
                   "method": "POST", "provider_registration": None, "provider_reported": False}]}]}
    rows = register_registrations(full, {"webhooks": []}, ["prd"], {"prd": "prd"})
    assert rows[0]["provider_reported"] is False and rows[0]["paste_link"] is True
    assert register_summary(rows, "acme_space:shop") == [
        "Product 'acme_space:shop': 1 registration(s) in 1 environment(s): 1 created",
        "prd (host prd):",
        "  ductape:paystack/charge_success: created, POST https://p/c "
        "(the API does not say whether the provider holds the link)",
        "Links to paste into the providers' dashboards (nobody registered them at the provider, or the API does "
        "not say):",
        "  prd  ductape:paystack/charge_success  (the API's answers give no link for it)",
    ]
    assert register_summary(rows, "acme_space:shop", True)[-1] == (
        "  prd  ductape:paystack/charge_success  (created on a real run)")
