"""Small local HTTP(S) servers that are not a good Ductape API: they answer wrong things on purpose.

- `StubApi(status, body, content_type)`: the same answer to every request (non-JSON, a wrong envelope, ...).
- `StubApi(hang=True)`: reads the request and never answers, until the server stops.
- `StubApi(..., tls=True)`: the same over HTTPS with a self-signed certificate for 127.0.0.1.
- `BlockingProvider`: a provider registration endpoint whose first call blocks until released.
- `ClosedPort`: a port that refuses connections, held bound so that nobody else takes it.
- `MeetingProxy`: an HTTP proxy that makes chosen requests meet at the server, and records when each
  request was there (`overlapping`, `most_at_once` count what overlapped).
"""
from __future__ import annotations

import datetime
import http.client
import ipaddress
import json
import socket
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 that nobody signed: what validate_certs must refuse."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ductape-reliability-self-signed")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class StubApi:
    def __init__(self, status: int = 200, body: str | bytes | Any = "", content_type: str = "application/json",
                 hang: bool = False, tls: bool = False):
        if not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        payload = body.encode("utf-8") if isinstance(body, str) else body
        self.requests = 0
        self._released = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                stub.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if hang:
                    stub._released.wait(60)
                    return
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._tempdir = None
        if tls:
            self._tempdir = tempfile.TemporaryDirectory(prefix="ductape-tls-")
            cert, key = self_signed_certificate(Path(self._tempdir.name))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "StubApi":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        if self._tempdir is not None:
            self._tempdir.cleanup()


class BlockingProvider:
    """A provider registration endpoint. The first call blocks until `release()`; every call is recorded."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.first_call = threading.Event()
        self._released = threading.Event()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                provider.calls.append({"path": self.path, "body": body})
                if len(provider.calls) == 1:
                    provider.first_call.set()
                    provider._released.wait(60)
                payload = b'{"id": "we_1"}'
                try:
                    self.send_response(201)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the caller is gone (killed while it waited)
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def release(self) -> None:
        self._released.set()

    def __enter__(self) -> "BlockingProvider":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()


class ClosedPort:
    """A loopback port bound but never listening: connections to it are refused, and no other
    program can take it while the test runs."""

    def __enter__(self) -> "ClosedPort":
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._socket.close()


class FlakyProvider:
    """A provider registration endpoint that answers `failures` (e.g. [500]) first, then 201; every call
    to a path under /fail answers 500."""

    def __init__(self, failures: list[int]) -> None:
        self.calls: list[dict[str, Any]] = []
        answers = list(failures)
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                provider.calls.append({"path": self.path, "body": json.loads(self.rfile.read(length) or b"{}")})
                status = 500 if self.path.startswith("/fail") else answers.pop(0) if answers else 201
                payload = b'{"id": "we_1"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "FlakyProvider":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy bytes from source to sink until either end closes, then shut both down (one direction of a
    tunnel; run one per direction)."""
    try:
        while True:
            chunk = source.recv(65536)
            if not chunk:
                break
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class DroppingProxy:
    """A TCP proxy to `target_port` that hangs up on its first `drops` connections without a word,
    as a load balancer does while the API restarts, and forwards every later one byte for byte."""

    def __init__(self, target_port: int, drops: int) -> None:
        self.dropped = 0
        self.forwarded = 0
        self._drops = drops
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self._target_port = target_port
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _address = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if self.dropped < self._drops:
                self.dropped += 1
                client.close()
                continue
            self.forwarded += 1
            upstream = socket.create_connection(("127.0.0.1", self._target_port))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=pump, args=(source, sink), daemon=True).start()

    def __enter__(self) -> "DroppingProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()


class MeetingProxy:
    """An HTTP proxy in front of ductape-local that makes chosen requests meet, and records when each
    request was at the server.

    `meeting(method, path, body)` names the meeting a request joins, as (key, parties, inside), or
    None. The first `parties` requests of a key wait for each other (at most `timeout` seconds), then
    go on together: with inside=False before anything is sent to the server; with inside=True after
    everything but the request's last byte is sent, so that the server holds every one of them, unable
    to answer any, until all have arrived. Later requests of a key go straight through.

    `records`: one dict per request: method, path, body (parsed JSON or None), key, joined (whether it
    was one of its key's first `parties`), met (whether its meeting was complete), sent and answered (time.monotonic() of its first byte to the server and of
    its answer read back). Every request goes to the server on a connection of its own.
    """

    def __init__(self, target_port: int, meeting, timeout: float = 120) -> None:
        self.records: list[dict[str, Any]] = []
        self._target_port = target_port
        self._meeting = meeting
        self._timeout = timeout
        self._lock = threading.Lock()
        self._barriers: dict[Any, tuple[threading.Barrier, list[int]]] = {}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, reason, headers, payload = proxy._exchange(self.command, self.path, self.headers, body)
                self.send_response(status, reason)
                for name, value in headers:
                    if name.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def _join(self, key: Any, parties: int) -> threading.Barrier | None:
        with self._lock:
            barrier, arrived = self._barriers.setdefault(key, (threading.Barrier(parties), [0]))
            arrived[0] += 1
            return barrier if arrived[0] <= parties else None

    def _meet(self, barrier: threading.Barrier | None) -> bool:
        if barrier is None:
            return False
        try:
            barrier.wait(self._timeout)
            return True
        except threading.BrokenBarrierError:
            return False

    def _exchange(self, method: str, path: str, headers, body: bytes):
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        chosen = self._meeting(method, path.split("?", 1)[0], parsed)
        key, parties, inside = chosen if chosen else (None, 0, False)
        barrier = self._join(key, parties) if chosen else None
        met = False
        if barrier is not None and not inside:
            met = self._meet(barrier)
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self._target_port}", "Connection: close"]
        head += [f"{name}: {value}" for name, value in headers.items()
                 if name.lower() not in ("host", "connection", "keep-alive", "content-length", "proxy-connection")]
        if body or method in ("POST", "PUT", "PATCH"):
            head.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        with socket.create_connection(("127.0.0.1", self._target_port), timeout=self._timeout + 60) as upstream:
            sent = time.monotonic()
            if barrier is not None and inside:
                upstream.sendall(raw[:-1])
                met = self._meet(barrier)
                upstream.sendall(raw[-1:])
            else:
                upstream.sendall(raw)
            response = http.client.HTTPResponse(upstream, method=method)
            response.begin()
            payload = response.read()
            answered = time.monotonic()
        with self._lock:
            self.records.append({"method": method, "path": path.split("?", 1)[0], "body": parsed, "key": key,
                                 "joined": barrier is not None, "met": met, "sent": sent, "answered": answered})
        return response.status, response.reason, response.getheaders(), payload

    def __enter__(self) -> "MeetingProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            for barrier, _arrived in self._barriers.values():
                barrier.abort()
        self._server.shutdown()
        self._server.server_close()


def overlapping(intervals: list[tuple[float, float]]) -> int:
    """How many of the (start, end) intervals overlap at least one other."""
    return sum(1 for index, (start, end) in enumerate(intervals)
               if any(other_start < end and start < other_end
                      for other, (other_start, other_end) in enumerate(intervals) if other != index))


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of the (start, end) intervals that were open at one instant."""
    events = sorted([(start, 1) for start, _end in intervals] + [(end, -1) for _start, end in intervals],
                    key=lambda event: (event[0], event[1]))
    most = current = 0
    for _at, step in events:
        current += step
        most = max(most, current)
    return most
