"""The dashboard's server side over HTTP: its page and assets, the sign-in that exchanges the access key
for an HttpOnly session cookie, what that cookie may and may not authenticate, and the products route.
The page itself is tested in a real browser by test_dashboard_browser.py (make test-dashboard)."""
from __future__ import annotations

import re
from http.cookies import SimpleCookie

import pytest
import requests

from conftest import CLOSED_URL, PRODUCT, data_of, error_of, example_seed
from ductape_local.dashboard import sessions as sessions_module
from ductape_local.dashboard.sessions import COOKIE, Sessions
from ductape_local.testing import LocalServer

MARK = {"X-Ductape-Dashboard": "1"}
OTHER_KEY = "dtl_second_product_key_Zx81"


def seed() -> dict:
    document = example_seed()
    document["access_keys"].append({"key": OTHER_KEY, "products": ["second-product"]})
    document["products"].append({"tag": "second-product", "envs": ["prd"], "connections": [
        {"access_tag": "second-stripe", "app": "stripe", "envs": {"prd": "live"}}]})
    return document


@pytest.fixture(scope="module")
def server():
    with LocalServer(seed()) as running:
        yield running


def sign_in(server: LocalServer, key: str | None = None) -> requests.Session:
    session = requests.Session()
    answer = session.post(server.url + "/dashboard/session", json={"access_key": key or server.access_key},
                          headers=MARK, timeout=30)
    assert data_of(answer) == {"signed_in": True}
    return session


def products(session: requests.Session, server: LocalServer, **headers: str) -> requests.Response:
    return session.get(server.url + "/webhooks/v1/products", headers=headers, timeout=30)


def test_the_page_and_its_assets_come_from_the_package_with_a_strict_policy(server):
    page = requests.get(server.url + "/dashboard", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    # Nothing inline and nothing from another origin: every script and stylesheet is one of ours.
    assert "<script>" not in page.text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/dashboard/static/") for s in sources), sources
    for source in sources:
        asset = requests.get(server.url + source, timeout=30)
        assert asset.status_code == 200 and asset.content, source
    assert "http://" not in page.text and "https://" not in page.text
    for path in ("/dashboard/static/sessions.py", "/dashboard/static/..%2F__init__.py", "/dashboard/static/index.html"):
        assert requests.get(server.url + path, timeout=30).status_code == 404, path


def test_the_script_never_parses_data_as_markup():
    """Every value reaches the page as text: the script has no HTML sink at all."""
    from importlib import resources

    script = resources.files("ductape_local.dashboard").joinpath("static", "app.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                 "localStorage", "sessionStorage", "document.cookie"):
        assert sink not in script, sink


def test_sign_in_sets_an_httponly_strict_cookie_and_never_answers_the_key(server):
    answer = requests.post(server.url + "/dashboard/session", json={"access_key": server.access_key},
                           headers=MARK, timeout=30)
    assert data_of(answer) == {"signed_in": True}
    assert server.access_key not in answer.text
    cookie = SimpleCookie(answer.headers["set-cookie"])[COOKIE]
    assert cookie["httponly"] is True and cookie["samesite"].lower() == "strict" and cookie["path"] == "/"
    assert server.access_key not in cookie.value and len(cookie.value) >= 32
    assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("key", ["dtl_not_a_key_4242", "dtl_local_example_key ", "dtl_local_example_kéy"])
def test_sign_in_with_an_unknown_key_is_refused_without_quoting_it(server, key):
    answer = requests.post(server.url + "/dashboard/session", json={"access_key": key}, headers=MARK, timeout=30)
    if key.strip() == server.access_key:  # surrounding blanks are no part of a key
        assert answer.status_code == 200
        return
    assert error_of(answer, 401) == "unknown access key"
    assert "set-cookie" not in answer.headers and key.strip() not in answer.text


@pytest.mark.parametrize("body, status, message", [
    (b"not json", 400, 'request body: send JSON {"access_key": "..."}'),
    (b'{"access_key": ""}', 422, "access_key: required, a non-empty string"),
    (b'{"access_key": 42}', 422, "access_key: required, a non-empty string"),
    (b'["dtl_local_example_key"]', 422, "access_key: required, a non-empty string"),
    (b'{"access_key": "' + b"k" * 9000 + b'"}', 413, "request body: larger than the limit of 8192 bytes"),
])
def test_a_bad_sign_in_body_is_refused_naming_the_field(server, body, status, message):
    answer = requests.post(server.url + "/dashboard/session", data=body,
                           headers={**MARK, "Content-Type": "application/json"}, timeout=30)
    assert error_of(answer, status) == message
    assert "set-cookie" not in answer.headers


def test_sign_in_and_out_need_the_dashboard_header(server):
    """A form or a request of another origin cannot send it: no sign-in (or out) by a foreign page."""
    answer = requests.post(server.url + "/dashboard/session", json={"access_key": server.access_key}, timeout=30)
    assert "X-Ductape-Dashboard" in error_of(answer, 403) and "set-cookie" not in answer.headers
    session = sign_in(server)
    assert error_of(session.delete(server.url + "/dashboard/session", timeout=30), 403)
    assert products(session, server, **MARK).status_code == 200


def test_the_cookie_authenticates_control_plane_reads_and_writes_only_with_the_dashboard_header(server):
    session = sign_in(server)
    # the example seed's key has two products, listed by tag
    assert [p["tag"] for p in data_of(products(session, server, **MARK))] == ["acme_space:shop", PRODUCT]
    # The cookie alone (what a cross-site request would carry, were SameSite not honoured) is no key.
    assert error_of(products(session, server), 401).startswith("missing access key")
    link = {"product": PRODUCT, "access_tag": "stripe-payments", "webhook_tag": "payment_succeeded", "env": "dev",
            "url": f"{CLOSED_URL}/dashboard-cookie", "method": "POST"}
    assert error_of(session.post(server.url + "/webhooks/v1/generate-link", json=link, timeout=30), 401)
    made = data_of(session.post(server.url + "/webhooks/v1/generate-link", json=link, headers=MARK, timeout=30))
    assert made["url"] == link["url"]


def test_a_key_sent_by_the_client_wins_over_the_session(server):
    session = sign_in(server)
    other = data_of(products(session, server, **MARK, Authorization=f"Bearer {OTHER_KEY}"))
    assert [p["tag"] for p in other] == ["second-product"]
    wrong = products(session, server, **MARK, Authorization="Bearer dtl_wrong_key_1")
    assert error_of(wrong, 401) == "unknown access key"


def test_sign_out_ends_the_session_and_a_forged_token_is_nothing(server):
    session = sign_in(server)
    token = session.cookies[COOKIE]
    answer = session.delete(server.url + "/dashboard/session", headers=MARK, timeout=30)
    assert data_of(answer) == {"signed_in": False}
    replayed = requests.get(server.url + "/webhooks/v1/products", cookies={COOKIE: token}, headers=MARK, timeout=30)
    assert error_of(replayed, 401).startswith("missing access key")
    forged = requests.get(server.url + "/webhooks/v1/products", cookies={COOKIE: "A" * 43}, headers=MARK, timeout=30)
    assert error_of(forged, 401).startswith("missing access key")


def test_the_products_route_lists_the_keys_products_with_envs_and_connections(server):
    answer = requests.get(server.url + "/webhooks/v1/products", headers={"x-access-token": OTHER_KEY}, timeout=30)
    assert data_of(answer) == [{"tag": "second-product", "envs": ["prd"], "connections": [
        {"access_tag": "second-stripe", "app": "stripe", "envs": {"prd": "live"}}]}]
    mine = data_of(requests.get(server.url + "/webhooks/v1/products", headers=server.auth_headers, timeout=30))
    by_tag = {p["tag"]: p for p in mine}
    assert sorted(by_tag) == ["acme_space:shop", PRODUCT]
    assert [c["access_tag"] for c in by_tag[PRODUCT]["connections"]] == ["paystack-payments", "stripe-payments"]
    assert [c["access_tag"] for c in by_tag["acme_space:shop"]["connections"]] == ["ductape:paystack"]
    assert error_of(requests.get(server.url + "/webhooks/v1/products", timeout=30), 401).startswith("missing access key")


def test_the_schema_names_the_products_route_but_not_the_pages(server):
    paths = requests.get(server.url + "/openapi.json", timeout=30).json()["paths"]
    assert "/webhooks/v1/products" in paths
    assert not [p for p in paths if p.startswith("/dashboard")]


def test_sessions_end_when_idle_or_too_old_and_are_bounded_in_number(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(sessions_module.time, "monotonic", lambda: now[0])
    sessions = Sessions(idle_seconds=10, lifetime_seconds=25, max_sessions=2)
    token = sessions.open("key-a")
    now[0] += 9
    assert sessions.key_for(token) == "key-a"
    now[0] += 9  # 9 s idle again: still alive, 18 s old
    assert sessions.key_for(token) == "key-a"
    now[0] += 8  # 26 s old: past its lifetime although used 8 s ago
    assert sessions.key_for(token) is None
    idle = sessions.open("key-b")
    now[0] += 11
    assert sessions.key_for(idle) is None
    first, second, third = sessions.open("1"), sessions.open("2"), sessions.open("3")
    assert sessions.key_for(first) is None and sessions.key_for(second) == "2" and sessions.key_for(third) == "3"
    assert sessions.key_for(None) is None and sessions.key_for("") is None
