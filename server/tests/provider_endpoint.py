"""A provider's webhook registration endpoint for tests: records every request, answers a set status."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class ReceivedCall:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


class Hold:
    """Calls under one prefix wait, before they are answered, until the test releases them."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.released = threading.Event()

    def release(self) -> None:
        self.released.set()


class ProviderEndpoint:
    """`status` answers every call, except paths under a prefix listed in `status_by_prefix`.
    `hold(prefix)` makes the calls under `prefix` wait for the test's `release()` (at most 120 s)."""

    def __init__(self, status: int = 201):
        self.status = status
        self.status_by_prefix: dict[str, int] = {}
        self.holds: dict[str, Hold] = {}
        self.calls: list[ReceivedCall] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                endpoint.calls.append(ReceivedCall(
                    method=self.command, path=parts.path, query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=json.loads(raw) if raw else None,
                ))
                for prefix, hold in list(endpoint.holds.items()):
                    if parts.path.startswith(prefix):
                        hold.arrived.set()
                        hold.released.wait(120)
                payload = json.dumps({"id": "we_123"}).encode()
                self.send_response(endpoint.status_for(parts.path))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_PUT = do_PATCH = do_GET = do_DELETE = _record

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def hold(self, prefix: str) -> Hold:
        self.holds[prefix] = Hold()
        return self.holds[prefix]

    def status_for(self, path: str) -> int:
        for prefix, status in self.status_by_prefix.items():
            if path.startswith(prefix):
                return status
        return self.status

    def calls_under(self, prefix: str) -> list[ReceivedCall]:
        return [call for call in self.calls if call.path.startswith(prefix)]

    def __enter__(self) -> "ProviderEndpoint":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for hold in self.holds.values():
            hold.release()
        self._server.shutdown()
        self._server.server_close()
