"""No access key and no auth value ever leaves the server: not in answers, errors or the log."""
from __future__ import annotations

import json

from conftest import Api, data_of
from ductape_local.testing import LocalServer
from test_provider_registration import seed_with_endpoints
from provider_endpoint import ProviderEndpoint

SECRETS = ["whsec_header_secret", "query_secret_value", "body_secret_value", "param_secret_value"]
AUTH = {"headers": {"X-Signing": SECRETS[0]}, "query": {"token": SECRETS[1]},
        "body": {"credentials": {"secret": SECRETS[2]}}, "params": {"account": SECRETS[3]}}


def test_neither_answers_nor_the_log_contain_a_secret():
    with ProviderEndpoint(status=500) as provider, LocalServer(seed_with_endpoints(provider.url)) as server:
        api = Api(server)
        answers = [
            api.register(webhook_tag="refund_body", envs=[{"slug": "prd", "url": "https://a.example.com/h",
                                                                "auth": AUTH}]),  # 502 from the provider
            api.register(envs=[{"slug": "prd", "url": "https://a.example.com/h", "auth": AUTH}]),
            api.register(envs=[{"slug": "stg", "url": "nope", "auth": AUTH}]),
            api.register(envs=[{"slug": "stg", "url": "https://a.example.com/h", "auth": {**AUTH, "extra": "x"}}]),
            api.webhooks(),
            api.call("GET", "/webhooks/v1/webhooks", key="dtl_wrong_but_secret",
                     params={"product": "my-product", "access_tag": "stripe-payments"}),
            api.call("GET", "/webhooks/v1/webhooks", key=None,
                     headers={"x-access-token": server.access_key},
                     params={"product": "my-product", "access_tag": "stripe-payments"}),
        ]
        uuid = data_of(answers[1])["envs"][0]["uuid"]
        answers.append(api.delete(uuid))
        assert provider.calls and provider.calls[0].headers["x-signing"] == SECRETS[0]  # the provider did get it
        server.stop()  # flush and close the log before reading it
        log = server.log_text()
    assert "ACCESS" in log and "POST /webhooks/v1/register" in log
    for text in [log] + [json.dumps(a.json()) + json.dumps(dict(a.headers)) for a in answers]:
        for secret in SECRETS + [server.access_key, "dtl_wrong_but_secret"]:
            assert secret not in text


def test_masked_auth_keeps_keys_and_hides_nested_values():
    with LocalServer() as server:
        prd = data_of(Api(server).register(envs=[{"slug": "prd", "url": "https://a.example.com/h", "auth": AUTH}]))
    assert prd["envs"][0]["auth"] == {"headers": {"X-Signing": "********"}, "query": {"token": "********"},
                                      "body": {"credentials": "********"}, "params": {"account": "********"}}
