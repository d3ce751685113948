"""Small local HTTP(S) servers that are not a good Ductape API: they answer wrong things on purpose.

- `StubApi(status, body, content_type)`: the same answer to every request (non-JSON, a wrong envelope, ...).
- `StubApi(hang=True)`: reads the request and never answers, until the server stops.
- `StubApi(..., tls=True)`: the same over HTTPS with a self-signed certificate for 127.0.0.1.
- `BlockingProvider`: a provider registration endpoint whose first call blocks until released.
- `closed_port()`: a port that refuses connections, held bound so that nobody else takes it.
"""
from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import tempfile
import threading
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
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
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

    def __enter__(self) -> "DroppingProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
