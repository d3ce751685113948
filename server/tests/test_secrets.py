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


LOG_SECRETS = ["whsec_planted_header_9f8e", "planted_query_7d6c", "planted_body_5b4a", "dtl_planted_wrong_key_3e2d"]


def test_no_failure_writes_an_auth_value_or_a_key_to_the_log():
    """Plant secrets in every part of requests that fail in every way the server can fail (an exception
    quoting the request, validation errors, bad encodings, slow and abandoned bodies, refused keys), then
    search the whole log: no secret, no traceback."""
    import socket

    auth = {"headers": {"Authorization": f"Bearer {LOG_SECRETS[0]}"}, "query": {"token": LOG_SECRETS[1]},
            "body": {"secret": LOG_SECRETS[2]}}
    with LocalServer(body_timeout=1) as server:
        api = Api(server)
        env = {"slug": "prd", "url": f"https://u:{LOG_SECRETS[1]}@a.example.com/h?token={LOG_SECRETS[1]}",
               "auth": auth}
        for route in ("POST /webhooks/v1/register", "POST /webhooks/v1/generate-link", "GET /webhooks/v1/webhooks",
                      "DELETE /webhooks/v1/registrations/{uuid}"):
            server.fault(route, 500, crash=True)
        crashed = [api.register(envs=[env]), api.generate_link(url=env["url"]), api.webhooks(cursor="not-secret"),
                   api.delete("not-a-uuid")]
        assert [r.status_code for r in crashed] == [500] * 4
        assert all(r.json()["errors"] == "internal server error" for r in crashed)
        api.register(envs=[dict(env, method=LOG_SECRETS[2])])                                  # 422
        api.register(envs=[dict(env, auth={"headers": {"X": [LOG_SECRETS[0]]}})])              # 422, wrong type
        api.register(envs=[dict(env, auth={**auth, "extra": LOG_SECRETS[0]})])                 # 422, unknown part
        api.call("POST", "/webhooks/v1/register", data=json.dumps({"envs": [env], "x": "\ud800"}),
                 headers={"Content-Type": "application/json"})                                 # 422, surrogate
        api.call("POST", "/webhooks/v1/register", data=b'{"k": "' + LOG_SECRETS[2].encode() + b'\xff"}',
                 headers={"Content-Type": "application/json"})                                 # invalid UTF-8
        api.call("POST", "/webhooks/v1/register", data=json.dumps({"envs": [env]})[:-3],
                 headers={"Content-Type": "application/json"})                                 # 400
        api.call("GET", "/webhooks/v1/webhooks", key=LOG_SECRETS[3], params={"product": "my-product"})  # 401
        api.call("POST", "/webhooks/v1/register", key=LOG_SECRETS[3], json={"envs": [env]})    # 401 before body
        api.call("GET", "/webhooks/v1/webhooks", key=None, headers={"Authorization": LOG_SECRETS[3]},
                 params={"product": "my-product", "access_tag": "stripe-payments"})
        for close_early in (True, False):                                                      # abandoned / slow
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(f"POST /webhooks/v1/register HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                             f"{server.access_key}\r\nContent-Length: 5000\r\n\r\n"
                             f'{{"envs": [{{"auth": {{"headers": {{"X": "{LOG_SECRETS[0]}'.encode())
                if not close_early:
                    sock.settimeout(10)
                    assert sock.recv(4096).startswith(b"HTTP/1.1 408")
        assert api.webhooks().status_code == 200
        server.stop()
        log = server.log_text()
    assert "internal error on POST /webhooks/v1/register: InjectedCrash" in log
    assert "Traceback" not in log
    for secret in LOG_SECRETS + [server.access_key]:
        assert secret not in log, secret
