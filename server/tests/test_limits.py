"""Resource limits of the transport: an unauthenticated body is refused before it is read, slow clients
are cut off and cannot starve fast ones, a client that hangs up costs one quiet log line, and the
numeric options refuse values out of their bounds at start."""
from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from conftest import Api, data_of, error_of, shared_seed
from ductape_local import config
from ductape_local.access import MISSING_KEY, UNKNOWN_KEY
from ductape_local.cli import build_parser
from ductape_local.testing import LocalServer

MB = 1024 * 1024


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def connect(server: LocalServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
    return sock


def send_until_answered(sock: socket.socket, declared: int, limit: int) -> tuple[bytes, int]:
    """Send body bytes until the server answers or hangs up; (what it answered, bytes sent)."""
    chunk, sent = b"x" * 65536, 0
    while sent < limit:
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            break
        try:
            sent += sock.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            break
    sock.settimeout(30)
    answer = b""
    try:
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _length(answer):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    except (ConnectionResetError, socket.timeout):
        pass
    return answer, sent


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


@pytest.fixture(scope="module")
def small():
    with LocalServer(shared_seed(), header_timeout=1, body_timeout=2) as running:
        yield running


@pytest.mark.parametrize("key_header, refusal", [(b"", MISSING_KEY),
                                                 (b"Authorization: Bearer dtl_not_a_key\r\n", UNKNOWN_KEY),
                                                 (b"x-access-token: nope\r\n", UNKNOWN_KEY)])
def test_an_unauthenticated_300_mb_body_is_refused_before_it_is_read(small, key_header, refusal):
    declared = 300 * MB
    with connect(small) as sock:
        sock.sendall(b"POST /webhooks/v1/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + key_header + f"Content-Length: {declared}\r\n\r\n".encode())
        answer, sent = send_until_answered(sock, declared, 64 * MB)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["errors"] == refusal, answer[:400]
    assert sent < 64 * MB, "the server read the body before answering"
    assert rss_mb(small.process.pid) < 300


def test_an_authenticated_body_over_the_limit_is_413_from_its_length(small):
    with connect(small) as sock:
        sock.sendall(b"POST /webhooks/v1/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Authorization: Bearer {small.access_key}\r\nContent-Length: {300 * MB}\r\n\r\n".encode())
        answer, sent = send_until_answered(sock, 300 * MB, 64 * MB)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 64 * MB


def test_a_chunked_body_over_the_limit_is_413(small):
    def chunks():
        for _ in range(40):
            yield b"y" * (64 * 1024)
    response = requests.post(small.url + "/webhooks/v1/register", data=chunks(), timeout=30,
                             headers={**small.auth_headers, "Content-Type": "application/json"})
    assert error_of(response, 413).startswith("request body: larger than the limit")


def wait_closed(sockets: list[socket.socket], bound_s: float) -> int:
    """How many of `sockets` the server has closed (or answered) within `bound_s`."""
    deadline, closed = time.monotonic() + bound_s, set()
    while len(closed) < len(sockets) and time.monotonic() < deadline:
        readable, _, _ = select.select([s for s in sockets if s not in closed], [], [], 0.5)
        for sock in readable:
            try:
                data = sock.recv(4096)
            except OSError:
                data = b""
            if not data or data.startswith(b"HTTP/1.1 408"):
                closed.add(sock)
            else:
                closed.add(sock)
    return len(closed)


def test_slow_clients_are_cut_off_and_do_not_starve_a_normal_request(small, tag):
    link = data_of(Api(small).generate_link(webhook_tag=tag))["link"]
    uuid_path = link.split(str(small.port), 1)[1]
    slow: list[socket.socket] = []
    try:
        for i in range(150):
            sock = socket.create_connection(("127.0.0.1", small.port), timeout=10)
            if i % 3 == 0:    # headers that never end
                sock.sendall(b"GET /webhooks/v1/webhooks?product=my-product HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            elif i % 3 == 1:  # a control-plane body that never ends
                sock.sendall(b"POST /webhooks/v1/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             + f"Authorization: Bearer {small.access_key}\r\nContent-Length: 1000\r\n\r\n{{".encode())
            else:             # a provider event that never ends
                sock.sendall(f"POST {uuid_path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{".encode())
            slow.append(sock)
        idle = [socket.create_connection(("127.0.0.1", small.port), timeout=10) for _ in range(50)]  # never send
        slow += idle
        # A normal request is served while all of them are open...
        assert Api(small).webhooks().status_code == 200
        # ...and the server closes every one of them itself (bounded wait: they would stay open forever).
        assert wait_closed(slow, 60) == len(slow)
    finally:
        for sock in slow:
            sock.close()
    assert Api(small).webhooks().status_code == 200


def test_a_client_that_hangs_up_mid_body_costs_one_quiet_line(small, tag):
    link = data_of(Api(small).generate_link(webhook_tag=tag))["link"]
    uuid_path = link.split(str(small.port), 1)[1]
    before = small.log_text()
    for path, key in [("/webhooks/v1/register", small.access_key)] * 5 + [(uuid_path, None)] * 5:
        with socket.create_connection(("127.0.0.1", small.port), timeout=10) as sock:
            auth = f"Authorization: Bearer {key}\r\n" if key else ""
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}"
                         f"Content-Length: 100000\r\n\r\n{{\"product\": ".encode())
            time.sleep(0.05)
    assert Api(small).webhooks().status_code == 200  # the server is still fine
    time.sleep(0.5)
    added = small.log_text()[len(before):]
    assert "Traceback" not in added and " 500" not in added, added[-3000:]
    assert len([line for line in added.splitlines() if "went away" in line]) <= 10


NUMERIC = ["--port", "--provider-timeout", "--max-body", "--delivery-timeout", "--max-request-body",
           "--body-timeout", "--header-timeout", "--keep-alive", "--max-connections", "--backlog"]
BAD_VALUES = ["0", "-1", "nan", "NaN", "inf", "-inf", "1e309", "abc", "", "99999999999999999999"]


@pytest.mark.parametrize("option", NUMERIC)
@pytest.mark.parametrize("value", BAD_VALUES)
def test_bad_numeric_options_are_refused_naming_option_and_value(option, value, capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["serve", f"{option}={value}"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert option in err and repr(value) in err, err


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "1,nan", "1,-5", "x"])
def test_a_bad_retry_schedule_is_refused(value, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", f"--retry-schedule={value}"])
    assert "--retry-schedule" in capsys.readouterr().err


def test_a_bad_option_stops_the_server_at_start(tmp_path):
    completed = subprocess.run([sys.executable, "-m", "ductape_local", "serve", "--db", str(tmp_path / "x.db"),
                                "--delivery-timeout", "nan"], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2 and "--delivery-timeout" in completed.stderr and "'nan'" in completed.stderr
    assert not (tmp_path / "x.db").exists()


def test_the_defaults_are_config_s():
    args = build_parser().parse_args(["serve"])
    assert args.delivery_timeout == config.DEFAULT_DELIVERY_TIMEOUT
    assert args.retry_schedule == config.DEFAULT_RETRY_SCHEDULE
    assert args.provider_timeout == config.DEFAULT_PROVIDER_TIMEOUT
    assert args.max_body == config.DEFAULT_MAX_BODY and args.port == config.DEFAULT_PORT
    with pytest.raises(ValueError, match="--delivery-timeout"):
        config.ServerConfig(db_path=Path("x"), public_url="http://x", delivery_timeout=float("nan"))
