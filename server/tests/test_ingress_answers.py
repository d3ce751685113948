"""The exact bytes a provider gets back from a wrapped link, for every answer it can get (202, 404 for
an unknown uuid or route, 405, 410, 413, a redirect for a trailing slash), and the exact request that
is stored for delivery (method, path, query, every header as sent, body), read from the database."""

from __future__ import annotations

import json
import re
import socket
import urllib.parse
import sqlite3
import uuid

import pytest
import requests

from conftest import CLOSED_URL, Api, data_of
from ductape_local.testing import LocalServer

MAX_BODY = 2048
PREFIX = "/webhooks/v1/process/"
# uvicorn adds these on every answer; everything else comes from the application
SERVER_HEADERS = {"date", "server"}


@pytest.fixture(scope="module", params=[True, False], ids=["test-mode", "deployed"])
def server(request):
    with LocalServer(max_body=MAX_BODY, retry_schedule="600", test_mode=request.param) as running:
        yield running


@pytest.fixture(scope="module")
def links(server):
    api = Api(server)
    live = data_of(api.generate_link(env="dev", url=f"{CLOSED_URL}/in"))
    gone = data_of(api.generate_link(env="prd", url=f"{CLOSED_URL}/gone"))
    data_of(api.delete(gone["uuid"]))
    return {"live": live["uuid"], "gone": gone["uuid"]}


def exchange(server: LocalServer, request: bytes, head: bool = False) -> tuple[str, list[tuple[str, str]], bytes]:
    """One request over a fresh connection: (status line, application headers in order, body)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed before the answer's head: {data!r}"
            data += chunk
        head_bytes, _, body = data.partition(b"\r\n\r\n")
        lines = head_bytes.decode("latin-1").split("\r\n")
        headers = [(name.lower(), value.strip()) for name, _, value in (line.partition(":") for line in lines[1:])]
        length = int(dict(headers).get("content-length", "0"))
        while not head and len(body) < length:
            chunk = sock.recv(65536)
            assert chunk, "connection closed before the answer's body"
            body += chunk
    return lines[0], [(name, value) for name, value in headers if name not in SERVER_HEADERS], body


def post(path: str, body: bytes = b'{"n": 1}', method: str = "POST", extra: str = "") -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: relay.test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n").encode("latin-1") + body


def envelope_error(message: str) -> bytes:
    return json.dumps({"status": False, "meta": {}, "errors": message}, ensure_ascii=False,
                      separators=(",", ":")).encode()


def json_headers(body: bytes) -> list[tuple[str, str]]:
    return [("content-length", str(len(body))), ("content-type", "application/json"), ("connection", "close")]


def stored(server: LocalServer, event_id: str) -> sqlite3.Row:
    conn = sqlite3.connect(server.db_path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM middleware_events WHERE event_id = ?", (event_id,)).fetchone()
    finally:
        conn.close()


def test_accepted_answer_is_the_envelope_with_the_event_id(server, links):
    status, headers, body = exchange(server, post(PREFIX + links["live"]))
    assert status == "HTTP/1.1 202 Accepted"
    assert re.fullmatch(rb'\{"status":true,"meta":\{\},"data":\{"event_id":"evt_[0-9a-f]{32}"\}\}', body), body
    assert headers == json_headers(body)
    event_id = json.loads(body)["data"]["event_id"]
    assert stored(server, event_id)["registration_uuid"] == links["live"]


def test_head_is_accepted_with_the_same_head_and_no_body(server, links):
    status, headers, body = exchange(server, post(PREFIX + links["live"], b"", method="HEAD"), head=True)
    assert status == "HTTP/1.1 202 Accepted"
    assert body == b""
    assert [name for name, _ in headers] == ["content-length", "content-type", "connection"]


@pytest.mark.parametrize("segment", ["0c1d7a8e-0000-4000-8000-000000000000", "caf%C3%A9", "x" * 200, "a%2Fb",
                                     "a%3Fb%23c%5Cd", "%22quoted%22", ".."])
def test_unknown_uuid_is_404_naming_it(server, segment):
    status, headers, body = exchange(server, post(PREFIX + segment))
    decoded = urllib.parse.unquote(segment)
    quoted = json.dumps(decoded, ensure_ascii=False)
    quoted = quoted if len(quoted) <= 120 else quoted[:120] + "..."
    if "/" in decoded:  # a decoded slash makes it another route
        assert status == "HTTP/1.1 404 Not Found"
        assert body == envelope_error(f"no such route: POST {PREFIX}{decoded}")
    else:
        assert status == "HTTP/1.1 404 Not Found"
        assert body == envelope_error(f"no webhook registration has the link uuid {quoted}")
    assert headers == json_headers(body)


def test_deleted_link_is_410(server, links):
    status, headers, body = exchange(server, post(PREFIX + links["gone"]))
    assert status == "HTTP/1.1 410 Gone"
    message = json.loads(body)["errors"]
    assert message.startswith(f'the webhook registration "{links["gone"]}" was deleted at ')
    assert message.endswith("; its link no longer forwards events")
    assert headers == json_headers(body)


def test_too_large_is_413_declared_or_streamed(server, links):
    expected = envelope_error(f"the event body is larger than the limit of {MAX_BODY} bytes (--max-body)")
    status, headers, body = exchange(server, post(PREFIX + links["live"], b"x" * (MAX_BODY + 1)))
    assert (status, body) == ("HTTP/1.1 413 Request Entity Too Large", expected)
    assert headers == json_headers(body)
    chunk = b"y" * 1000
    chunked = (f"POST {PREFIX}{links['live']} HTTP/1.1\r\nHost: relay.test\r\nTransfer-Encoding: chunked\r\n"
               "Connection: close\r\n\r\n").encode() + b"".join(b"3e8\r\n" + chunk + b"\r\n" for _ in range(3)) + b"0\r\n\r\n"
    status, headers, body = exchange(server, chunked)
    assert (status, body) == ("HTTP/1.1 413 Request Entity Too Large", expected)
    assert headers == json_headers(body)


def test_a_method_the_route_does_not_take_is_405(server, links):
    status, headers, body = exchange(server, post(PREFIX + links["live"], method="TRACE"))
    assert status == "HTTP/1.1 405 Method Not Allowed"
    assert body == envelope_error(f"method TRACE is not allowed on {PREFIX}{links['live']}")
    assert headers[0][0] == "allow"
    assert set(headers[0][1].split(", ")) == {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
    assert headers[1:] == json_headers(body)


@pytest.mark.parametrize("path", [PREFIX, PREFIX.rstrip("/"), PREFIX + "a/b"])
def test_paths_beside_the_route_are_404_no_such_route(server, path):
    # with the key: the guard (limits.Guard) lets a control-plane body through to the router
    status, headers, body = exchange(server, post(path, extra=f"Authorization: Bearer {Api(server).key}\r\n"))
    assert (status, body) == ("HTTP/1.1 404 Not Found", envelope_error(f"no such route: POST {path}"))
    assert headers == json_headers(body)


def test_a_body_beside_the_ingress_without_a_key_is_401_before_it_is_read(server):
    # not under the ingress prefix, so the guard's control-plane rule holds: no key, no body read
    status, _, _ = exchange(server, post(PREFIX.rstrip("/")))
    assert status == "HTTP/1.1 401 Unauthorized"


def test_a_trailing_slash_redirects_to_the_link(server, links):
    status, headers, body = exchange(server, post(PREFIX + links["live"] + "/"))
    assert status == "HTTP/1.1 307 Temporary Redirect"
    assert ("location", f"http://relay.test{PREFIX}{links['live']}") in headers
    assert body == b""


def test_the_request_is_stored_as_sent(server, links):
    body = bytes(range(256)) + "caf\u00e9".encode()
    extra = ("X-Repeated: one\r\nX-Repeated: two\r\nX-Latin: caf\xe9\r\nStripe-Signature: t=1,v1=abc\r\n"
             "Connection: keep-alive, X-Hop\r\nX-Hop: x\r\n")
    request = (f"PUT {PREFIX}{links['live']}?b=%20x&a=1&flag&utf=caf%C3%A9 HTTP/1.1\r\nHost: relay.test\r\n"
               f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
               ).encode("latin-1") + body
    status, _, answer = exchange(server, request)
    assert status == "HTTP/1.1 202 Accepted", answer
    row = stored(server, json.loads(answer)["data"]["event_id"])
    assert bytes(row["body"]) == body
    assert (row["request_method"], row["request_path"], row["request_query"]) == (
        "PUT", PREFIX + links["live"], "b=%20x&a=1&flag&utf=caf%C3%A9")
    # every header as sent, in order, names lowercased; hop-by-hop ones are dropped at delivery, not here
    assert json.loads(row["request_headers"]) == [
        ["host", "relay.test"], ["content-type", "application/octet-stream"],
        ["content-length", str(len(body))], ["x-repeated", "one"], ["x-repeated", "two"],
        ["x-latin", "caf\u00e9"], ["stripe-signature", "t=1,v1=abc"],
        ["connection", "keep-alive, X-Hop"], ["x-hop", "x"],
    ]
    assert (row["target_url"], row["target_method"]) == (f"{CLOSED_URL}/in", "POST")


def test_a_link_in_another_spelling_of_its_uuid_is_the_same_link(server, links):
    spelled = PREFIX + "".join(f"%{ord(c):02X}" if c in "abcdef" else c for c in links["live"])
    status, _, answer = exchange(server, post(spelled))
    assert status == "HTTP/1.1 202 Accepted"
    assert stored(server, json.loads(answer)["data"]["event_id"])["request_path"] == PREFIX + links["live"]


def test_an_unknown_uuid_stores_nothing(server):
    conn = sqlite3.connect(server.db_path)
    try:
        before = conn.execute("SELECT COUNT(*) FROM middleware_events").fetchone()[0]
        exchange(server, post(PREFIX + str(uuid.uuid4())))
        assert conn.execute("SELECT COUNT(*) FROM middleware_events").fetchone()[0] == before
    finally:
        conn.close()


def test_a_client_hanging_up_mid_body_stores_nothing_and_logs_no_traceback(server, links):
    conn = sqlite3.connect(server.db_path)
    try:
        before = conn.execute("SELECT COUNT(*) FROM middleware_events").fetchone()[0]
        log_before = server.log_text()
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(post(PREFIX + links["live"], b"x" * 100)[:-60])
        # the next request on another connection is answered once the server has seen the hang-up
        assert exchange(server, post(PREFIX + str(uuid.uuid4())))[0] == "HTTP/1.1 404 Not Found"
        assert conn.execute("SELECT COUNT(*) FROM middleware_events").fetchone()[0] == before
        assert "Traceback" not in server.log_text()[len(log_before):]
    finally:
        conn.close()


def test_events_get_no_access_line_and_the_next_request_on_the_connection_does(server, links):
    api = Api(server)
    log_before = len(server.log_text())
    with requests.Session() as session:
        for _ in range(3):
            assert session.post(server.url + PREFIX + links["live"], data=b"{}").status_code == 202
        assert session.post(server.url + PREFIX + links["gone"], data=b"{}").status_code == 410
        listing = session.get(server.url + "/webhooks/v1/webhooks", headers={"Authorization": f"Bearer {api.key}"},
                              params={"product": "my-product", "access_tag": "stripe-payments"})
        assert listing.status_code == 200
    lines = [line for line in server.log_text()[log_before:].splitlines() if " ACCESS " in line]
    assert len(lines) == 1 and "GET /webhooks/v1/webhooks?" in lines[0]


def test_in_test_mode_events_are_counted_and_faulted_like_any_route(server, links):
    if not server.test_mode:  # deployed, there is nothing to count with
        assert requests.get(server.url + "/_local/stats", timeout=30).status_code == 404
        return
    route = "POST /webhooks/v1/process/{uuid}"
    server.reset_stats()
    assert exchange(server, post(PREFIX + links["live"]))[0] == "HTTP/1.1 202 Accepted"
    assert server.stats()["requests"].get(route) == 1
    server.fault(route, 503, count=1, retry_after=2)
    status, headers, body = exchange(server, post(PREFIX + links["live"]))
    assert status == "HTTP/1.1 503 Service Unavailable"
    assert ("retry-after", "2") in headers
    assert body == envelope_error("fault injected by test mode: HTTP 503")
    assert exchange(server, post(PREFIX + links["live"]))[0] == "HTTP/1.1 202 Accepted"
