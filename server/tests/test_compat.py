"""`--compat ductape`: the hosted Ductape's shapes, the 404 allowlist, and the session token it requires."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from conftest import CLOSED_URL, data_of, error_of, example_seed
from ductape_local.access import MISSING_KEY, UNKNOWN_KEY
from ductape_local.compat import LISTING_PAGE, ROW_KEYS, SessionTokens
from ductape_local.config import ServerConfig
from ductape_local.testing import LocalServer, free_port

INGRESS = "https://webhooks.ductape.test"
PRODUCT = "acme_space:shop"
ACCESS_TAG = "ductape:paystack"
ROW = set(ROW_KEYS)


@pytest.fixture(scope="module")
def compat():
    with LocalServer(example_seed(), compat="ductape", ingress_url=INGRESS) as running:
        yield running


def session(server: LocalServer, header: str = "Authorization") -> dict[str, str]:
    answer = data_of(requests.post(server.url + "/webhooks/v1/session", headers=server.auth_headers, timeout=30))
    assert set(answer) == {"token", "token_type", "expires_in"} and answer["token_type"] == "Bearer"
    assert answer["token"] != server.access_key
    token = answer["token"]
    return {"Authorization": f"Bearer {token}"} if header == "Authorization" else {header: token}


def call(server: LocalServer, method: str, path: str, headers: dict[str, str] | None, **kwargs) -> requests.Response:
    return requests.request(method, server.url + path, headers=headers or {}, timeout=30, **kwargs)


def link_body(**overrides):
    body = {"product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": "charge_success", "env": "snd",
            "url": f"{CLOSED_URL}/hooks/charge?token=s3cr3t", "method": "POST"}
    body.update(overrides)
    return body


def test_generate_link_answers_the_link_string_on_the_ingress_base(compat):
    headers = session(compat)
    link = data_of(call(compat, "POST", "/webhooks/v1/generate-link", headers, json=link_body()))
    assert isinstance(link, str)
    assert link.startswith(INGRESS + "/webhooks/v1/process/")
    assert urlsplit(link).netloc != urlsplit(compat.url).netloc
    again = call(compat, "POST", "/webhooks/v1/generate-link", headers, json=link_body())
    assert again.json() == {"status": True, "meta": {}, "data": link}


def test_listing_rows_carry_only_what_ductapes_ui_sees(compat):
    headers = session(compat)
    data_of(call(compat, "POST", "/webhooks/v1/generate-link", headers, json=link_body(env="prd")))
    response = call(compat, "GET", "/webhooks/v1/webhooks", headers,
                    params={"product": PRODUCT, "access_tag": ACCESS_TAG})
    body = response.json()
    assert body["meta"] == {}
    webhooks = {w["tag"]: w for w in body["data"]}
    assert set(webhooks) == {"charge_success", "transfer_success"}
    for webhook in webhooks.values():
        assert set(webhook) == {"tag", "name", "config"}
    rows = webhooks["charge_success"]["config"]
    assert rows and all(set(r) == ROW for r in rows)
    prd = next(r for r in rows if r["productEnv"] == "prd")
    assert prd["appEnv"] == "live" and prd["method"] == "POST" and prd["active"] is False
    assert prd["url"] == f"{CLOSED_URL}/hooks/charge?token=********"  # masked, as in every answer


def test_the_listing_is_one_page_and_ignores_limit_cursor_and_the_tag_filter(compat):
    headers = session(compat)
    response = call(compat, "GET", "/webhooks/v1/webhooks", headers,
                    params={"product": PRODUCT, "access_tag": ACCESS_TAG, "limit": 1, "cursor": "junk",
                            "webhook_tag": "transfer_success"})
    body = response.json()
    assert response.status_code == 200, body
    assert [w["tag"] for w in body["data"]] == ["charge_success", "transfer_success"]
    assert "next_cursor" not in body["meta"] and "product_envs" not in body["meta"]


def test_the_one_page_holds_every_webhook_of_an_app_with_more_than_one_page_of_them():
    seed = example_seed()
    paystack = next(app for app in seed["apps"] if app["tag"] == "paystack")
    extra = [f"event_{number:03d}" for number in range(LISTING_PAGE + 10)]
    paystack["webhooks"] += [{"tag": tag, "name": tag} for tag in extra]
    with LocalServer(seed, compat="ductape", ingress_url=INGRESS) as server:
        headers = session(server)
        data_of(call(server, "POST", "/webhooks/v1/generate-link", headers,
                     json=link_body(webhook_tag=extra[-1], env="prd")))
        response = call(server, "GET", "/webhooks/v1/webhooks", headers,
                        params={"product": PRODUCT, "access_tag": ACCESS_TAG})
        body = response.json()
    assert response.status_code == 200, body
    tags = [w["tag"] for w in body["data"]]
    assert tags == sorted(["charge_success", "transfer_success"] + extra)  # every page, in tag order, once
    assert body["meta"] == {}
    registered_on_page_two = next(w["config"] for w in body["data"] if w["tag"] == extra[-1])
    assert [r["productEnv"] for r in registered_on_page_two] == ["prd"] and set(registered_on_page_two[0]) == ROW


def test_register_answers_rows_without_auth_digest_timestamps_or_provider_status(compat):
    headers = session(compat)
    body = {"product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": "transfer_success",
            "envs": [{"slug": "snd", "url": "https://receiver.example/hook", "method": "PUT",
                      "auth": {"headers": {"Authorization": "Bearer provider-secret"}}}]}
    response = call(compat, "POST", "/webhooks/v1/register", headers, json=body)
    data = data_of(response)
    assert set(data) == {"product", "access_tag", "webhook_tag", "envs"}
    assert data["product"] == PRODUCT and data["access_tag"] == ACCESS_TAG
    [env] = data["envs"]
    assert set(env) == ROW and env["productEnv"] == "snd" and env["method"] == "PUT"
    assert "provider-secret" not in response.text


def test_errors_keep_the_envelope_and_name_the_field(compat):
    headers = session(compat)
    message = error_of(call(compat, "POST", "/webhooks/v1/generate-link", headers, json=link_body(env="stg")), 422)
    assert '"stg"' in message and "snd, prd" in message


# Every route that other branches add, and ours, answers 404: the gate is an allowlist.
NOT_OFFERED = [
    ("DELETE", "/webhooks/v1/registrations/3b75523b-36f9-43df-bf72-cf1e50dfe08f"),
    ("GET", "/webhooks/v1/deliveries"),
    ("GET", "/webhooks/v1/deliveries/evt_1"),
    ("GET", "/webhooks/v1/deliveries/summary?product=acme_space%3Ashop"),
    ("POST", "/webhooks/v1/deliveries/replay"),
    ("POST", "/webhooks/v1/deliveries/evt_1/replay"),
    ("POST", "/webhooks/v1/registrations/3b75523b/disable"),
    ("POST", "/webhooks/v1/registrations/3b75523b/enable"),
    ("POST", "/webhooks/v1/registrations/3b75523b/rotate"),
    ("POST", "/webhooks/v1/registrations/3b75523b/test"),
    ("GET", "/webhooks/v1/register"),
    ("PUT", "/webhooks/v1/generate-link"),
    ("POST", "/webhooks/v1/webhooks"),
    ("GET", "/webhooks/v1/some-route-added-later"),
    ("GET", "/dashboard/"),
    ("GET", "/docs"),
    ("GET", "/"),
]


@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-credential"])
@pytest.mark.parametrize("method,path", NOT_OFFERED)
def test_every_route_but_the_three_the_ingress_and_the_session_answers_404(compat, method, path, with_token):
    headers = session(compat) if with_token else None
    response = call(compat, method, path, headers, json={} if method in ("POST", "PUT") else None)
    message = error_of(response, 404)
    assert message.startswith("no such route: " + method)


def test_the_same_routes_answer_in_normal_mode(server, api):
    # Not a vacuous allowlist: the normal server offers what compat mode hides.
    assert api.call("GET", "/webhooks/v1/deliveries").status_code == 200
    assert api.call("DELETE", "/webhooks/v1/registrations/nope").status_code == 404
    assert "no registration" in error_of(api.call("DELETE", "/webhooks/v1/registrations/nope"), 404)


ROUTES = [("POST", "/webhooks/v1/generate-link", {"json": link_body()}),
          ("POST", "/webhooks/v1/register", {"json": {"product": PRODUCT, "access_tag": ACCESS_TAG,
                                                      "webhook_tag": "charge_success",
                                                      "envs": [{"slug": "prd", "url": "https://r.example/h"}]}}),
          ("GET", "/webhooks/v1/webhooks", {"params": {"product": PRODUCT, "access_tag": ACCESS_TAG}})]


@pytest.mark.parametrize("method,path,kwargs", ROUTES, ids=[r[1] for r in ROUTES])
def test_every_control_plane_route_requires_a_session_token(compat, method, path, kwargs):
    key = compat.access_key
    for headers, expected in (
        (None, "missing session token"),
        ({"Authorization": f"Bearer {key}"}, "an access key is not a session token"),
        ({"x-access-token": key}, "an access key is not a session token"),
        ({"Authorization": "Bearer dts_made_up"}, "unknown or expired session token"),
    ):
        response = call(compat, method, path, headers, **kwargs)
        message = error_of(response, 401)
        assert message.startswith(expected), message
        assert key not in response.text
    for header in ("Authorization", "x-access-token"):
        assert call(compat, method, path, session(compat, header), **kwargs).status_code == 200


def test_the_session_route_takes_only_a_known_access_key(compat):
    for headers, message in (({}, MISSING_KEY), ({"Authorization": "Bearer not-a-key"}, UNKNOWN_KEY)):
        response = requests.post(compat.url + "/webhooks/v1/session", headers=headers, timeout=30)
        assert error_of(response, 401) == message
    token = session(compat)
    # a token is not an access key: it cannot mint another token
    assert requests.post(compat.url + "/webhooks/v1/session", headers=token, timeout=30).status_code == 401


def test_the_ingress_answers_on_the_servers_own_port_without_a_token(compat):
    link = data_of(call(compat, "POST", "/webhooks/v1/generate-link", session(compat),
                        json=link_body(webhook_tag="transfer_success", env="prd")))
    response = requests.post(compat.url + urlsplit(link).path, json={"event": "transfer.success"}, timeout=30)
    assert response.status_code == 202, response.text
    assert response.json()["data"]["event_id"]
    unknown = requests.post(compat.url + "/webhooks/v1/process/no-such-uuid", json={}, timeout=30)
    assert unknown.status_code == 404


def test_session_tokens_expire_after_their_ttl():
    now = [100.0]
    tokens = SessionTokens(ttl=60, clock=lambda: now[0])
    token = tokens.issue("dtl_key")
    assert tokens.key_of(token) == "dtl_key"
    now[0] += 59.9
    assert tokens.key_of(token) == "dtl_key"
    now[0] += 0.2
    assert tokens.key_of(token) is None
    assert tokens.key_of(None) is None and tokens.key_of("") is None


@pytest.mark.parametrize("field,value,expected", [
    ("compat", "hosted", "--compat must be one of ductape (got 'hosted')"),
    ("ingress_url", "webhooks.ductape.app", "--ingress-url must be an absolute http or https URL"),
    ("ingress_url", "https://webhooks.ductape.app/?x=1", "(got 'https://webhooks.ductape.app/?x=1')"),
    ("session_ttl", 0, "--session-ttl must be a finite number from 1 to 86400 (got '0')"),
])
def test_bad_compat_options_are_refused_naming_option_and_value(tmp_path, field, value, expected):
    with pytest.raises(ValueError) as raised:
        ServerConfig(db_path=tmp_path / "db", public_url="http://127.0.0.1:4311", **{field: value})
    assert expected in str(raised.value)


def test_the_ingress_url_is_the_link_base_and_one_of_the_servers_own_addresses(tmp_path):
    config = ServerConfig(db_path=tmp_path / "db", public_url="http://127.0.0.1:4311",
                          ingress_url="https://webhooks.ductape.app/")
    assert config.link_base == "https://webhooks.ductape.app"
    assert ("webhooks.ductape.app", 443) in config.listen_addresses


def test_a_loopback_ingress_url_on_another_port_is_listened_on_for_events_only():
    ingress = f"http://127.0.0.1:{free_port()}"
    with LocalServer(example_seed(), compat="ductape", ingress_url=ingress) as running:
        link = data_of(call(running, "POST", "/webhooks/v1/generate-link", session(running), json=link_body()))
        assert link.startswith(ingress + "/webhooks/v1/process/")
        delivered = requests.post(link, json={"event": "charge.success"}, timeout=30)
        assert delivered.status_code == 202, delivered.text
        # the ingress port answers events and nothing else, with or without a credential
        for headers in (None, session(running)):
            response = requests.get(ingress + "/webhooks/v1/webhooks", headers=headers, timeout=30,
                                    params={"product": PRODUCT, "access_tag": ACCESS_TAG})
            assert "no such route" in error_of(response, 404)
        assert requests.post(ingress + "/webhooks/v1/session", headers=running.auth_headers,
                             timeout=30).status_code == 404
        # and the API's port still takes the same link's events
        assert requests.post(running.url + urlsplit(link).path, json={}, timeout=30).status_code == 202


def test_an_ingress_url_elsewhere_or_on_the_apis_own_port_opens_no_listener(tmp_path):
    def listener(url):
        return ServerConfig(db_path=tmp_path / "db", public_url="http://127.0.0.1:4311", ingress_url=url,
                            port=4311).ingress_listener

    assert listener("https://webhooks.ductape.app") is None
    assert listener("http://127.0.0.1:4311") is None
    assert listener("http://127.0.0.1:4312") == ("127.0.0.1", 4312)


def test_the_readme_compat_mode_calls_run_as_printed(compat):
    """server/README.md's "Compat mode" console block (after its serve line), only the port replaced."""
    if shutil.which("curl") is None:
        pytest.fail("curl is needed to run the README's calls as a reader would; install it (apt install curl)")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Compat mode", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```console\n(.*?)```", section, re.S)
    commands = [line[2:] if line.startswith("$ ") else line for line in block.splitlines()]
    assert commands[0].startswith("ductape-local serve ") and "--compat ductape" in commands[0]
    script = "set -euo pipefail\n" + "\n".join(commands[1:]).replace("http://127.0.0.1:4311", compat.url)
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["status"] is True and answer["meta"] == {}
    assert [w["tag"] for w in answer["data"]] == ["charge_success", "transfer_success"]
