"""The role's filters with tags as Ductape writes them: workspace-prefixed (``ductape:paystack``) and the
default env slugs snd and prd."""
from __future__ import annotations

from ansible_collections.ductape.webhooks.plugins.filter.register import register_plan

ACCESS_TAG = "ductape:paystack"
HOSTVARS = {
    "snd": {"ductape_receiver_base_url": "https://snd.example",
            "ductape_webhook_auth": {ACCESS_TAG: {"headers": {"X-Key": "snd-secret"}}}},
    "prd": {"ductape_receiver_base_url": "https://prd.example", "ductape_registration_mode": "link"},
}


def test_workspace_prefixed_access_tags_plan_calls_and_take_their_host_auth():
    result = register_plan([{"access_tag": ACCESS_TAG, "webhook_tag": "charge_success", "path": "/charge"}],
                           ["snd", "prd"], HOSTVARS, "envs")
    assert result["problems"] == []
    [call] = result["full_calls"]
    assert (call["access_tag"], call["webhook_tag"]) == (ACCESS_TAG, "charge_success")
    assert call["envs"] == [{"slug": "snd", "url": "https://snd.example/charge", "method": "POST",
                             "auth": {"headers": {"X-Key": "snd-secret"}}}]
    assert result["link_calls"] == [{"access_tag": ACCESS_TAG, "webhook_tag": "charge_success",
                                     "envs": [{"slug": "prd", "url": "https://prd.example/charge", "method": "POST"}]}]


def test_a_problem_with_a_workspace_prefixed_webhook_names_it_as_given():
    result = register_plan([{"access_tag": ACCESS_TAG, "webhook_tag": "charge_success", "path": "/charge"},
                            {"access_tag": ACCESS_TAG, "webhook_tag": "charge_success", "path": "/again"}],
                           ["snd", "prd"], HOSTVARS, "envs")
    assert any("ductape:paystack" in problem for problem in result["problems"]), result["problems"]
