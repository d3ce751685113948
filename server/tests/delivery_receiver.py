"""A product's receiver for the middleware tests: a real HTTP server on a free port that records
every request it gets and answers from a script (fail the first N, ask to retry later, never answer)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    at: float

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return ", ".join(values) if values else None

    def header_names(self) -> set[str]:
        return {key.lower() for key, _ in self.headers}


@dataclass
class Answer:
    """One scripted answer; ``hang`` keeps the request open until the receiver is closed."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


class Receiver:
    def __init__(self, script: list[Answer] | None = None, default: Answer | None = None):
        self._script = list(script or [])
        self._default = default or Answer()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._released = threading.Event()
        self.requests: list[Received] = []
        self.hung = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def release(self) -> None:
        """Lets hanging requests end without an answer, as a receiver restart would."""
        self._released.set()

    def set_default(self, answer: Answer) -> None:
        with self._lock:
            self._default = answer

    def wait_for(self, count: int, timeout: float = 20.0, answered_only: bool = False) -> list[Received]:
        """Blocks until ``count`` requests have arrived (hanging ones count unless ``answered_only``)
        and returns the answered ones; fails the test if they do not come."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.requests) + (0 if answered_only else self.hung) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"receiver got {len(self.requests)} answered and {self.hung} hanging requests, "
                        f"expected {count}"
                    )
                self._arrived.wait(remaining)
            return list(self.requests)

    def _next_answer(self) -> Answer:
        return self._script.pop(0) if self._script else self._default

    def _handler_class(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with receiver._lock:
                    answer = receiver._next_answer()
                    if answer.hang:
                        receiver.hung += 1
                    else:
                        receiver.requests.append(
                            Received(
                                self.command, self.path, list(self.headers.items()), body, time.time()
                            )
                        )
                    receiver._arrived.notify_all()
                if answer.hang:
                    receiver._released.wait()
                    return
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

        return Handler


class Dribbler:
    """A receiver that accepts every connection and sends its answer's header one byte at a time,
    ``interval`` seconds apart, so that no single read ever waits long but the whole answer takes
    ``interval`` times its length. ``finished`` counts answers it managed to send to the end."""

    ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Slow: " + b"x" * 40 + b"\r\n\r\n"

    def __init__(self, interval: float = 0.3):
        import socket

        self.interval = interval
        self.connections = 0
        self.finished = 0
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.1)
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "Dribbler":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    def _accept(self) -> None:
        import socket

        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._dribble, args=(conn,), daemon=True).start()

    def _dribble(self, conn) -> None:
        try:
            conn.settimeout(1.0)
            try:
                conn.recv(65536)
            except OSError:
                pass
            for byte in self.ANSWER:
                if self._stop.wait(self.interval):
                    return
                conn.sendall(bytes([byte]))
            self.finished += 1
        except OSError:
            pass
        finally:
            conn.close()


class Forwarder:
    """A receiver that is a transparent proxy: it sends every request it gets on to ``target`` (set
    after start) with the same method, headers and body, and answers with the status it got back.
    Pointed at a relay's own link it closes a loop through something the relay cannot recognise."""

    def __init__(self):
        self.target: str | None = None
        self.forwarded = 0
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "Forwarder":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self):
        import requests

        forwarder = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                try:
                    status = requests.request(self.command, forwarder.target, data=body, headers=headers,
                                              timeout=10).status_code
                except requests.RequestException:
                    status = 502
                with forwarder._lock:
                    forwarder.forwarded += 1
                    forwarder.statuses.append(status)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, *args) -> None:
                pass

        return Handler
