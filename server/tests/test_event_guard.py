"""Provider events reach the accept path before FastAPI's middleware (app.DuctapeLocalApp), so what the
guard (limits.Guard) promises for every request must hold for them through the wrapper create_app puts
around `event_handler`: a failure is a 500 in the envelope with one log line naming its type (no request
value, no traceback), and a looping event is refused before its body is read."""
from __future__ import annotations

import json
import socket

from conftest import CLOSED_URL, Api, data_of
from ductape_local.delivery import HOPS_HEADER, MAX_HOPS
from ductape_local.testing import LocalServer

PREFIX = "/webhooks/v1/process/"
PLANTED = ["whsec_event_header_4c1d", "event_body_secret_8a2f"]


def answer_of(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_a_crash_on_the_event_path_is_one_quiet_line_without_request_values():
    with LocalServer() as server:
        uuid = data_of(Api(server).generate_link(env="dev", url=f"{CLOSED_URL}/in"))["uuid"]
        server.fault("POST /webhooks/v1/process/{uuid}", 500, crash=True)
        body = json.dumps({"secret": PLANTED[1]}).encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(f"POST {PREFIX}{uuid} HTTP/1.1\r\nHost: x\r\nX-Signature: {PLANTED[0]}\r\n"
                         f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                         "Connection: close\r\n\r\n".encode() + body)
            answer = answer_of(sock)
            while True:  # the body follows the head
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 500"), answer[:300]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["errors"] == "internal server error", answer[-300:]
        server.stop()  # flush and close the log before reading it
        log = server.log_text()
    assert f"internal error on POST {PREFIX}{uuid}: InjectedCrash" in log
    assert "Traceback" not in log
    for secret in PLANTED + [server.access_key]:
        assert secret not in log, secret


def test_a_looping_event_is_refused_before_its_body_is_read():
    with LocalServer(body_timeout=600, header_timeout=600) as server:
        uuid = data_of(Api(server).generate_link(env="dev", url=f"{CLOSED_URL}/in"))["uuid"]
        with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
            # the body is announced and never sent: only an answer given before reading it arrives
            sock.sendall(f"POST {PREFIX}{uuid} HTTP/1.1\r\nHost: x\r\n{HOPS_HEADER}: {MAX_HOPS}\r\n"
                         "Content-Length: 100000\r\n\r\n{".encode())
            answer = answer_of(sock)
        assert answer.startswith(b"HTTP/1.1 508"), answer[:300]
