"""`make demo`: the collection end to end on this machine, against ductape-local.

1. start ductape-local on a fresh SQLite file under .build/demo/ with the example seed;
2. run examples/register-webhooks.yml: the registrations and the links to paste;
3. run it again: nothing changes, and the server counts no write;
4. post a sample Stripe event to the dev environment's link and show it reaching a small local
   receiver, with Ductape's delivery record (when this ductape-local has the ingress route);
5. stop everything, also on failure or Ctrl-C.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WORKDIR = ROOT / ".build" / "demo"
ACCESS_KEY = "dtl_local_example_key"  # the example seed's key: it exists only on this laptop
PRODUCT = "my-product"
PREFERRED_PORT = 4311  # Ductape's local gateway port
EVENT_ENV = "dev"
EVENT_ACCESS_TAG = "stripe-payments"
EVENT_WEBHOOK_TAG = "payment_succeeded"
SAMPLE_EVENT = {
    "id": "evt_demo_0001",
    "object": "event",
    "type": "payment_intent.succeeded",
    "data": {"object": {"id": "pi_demo_0001", "amount": 2000, "currency": "usd", "status": "succeeded"}},
}


def say(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def free_port(preferred: int | None = None) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", preferred or 0))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Receiver:
    """The product's receiver in dev: records every request and answers 200."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                receiver.requests.append({"method": self.command, "path": self.path,
                                          "headers": dict(self.headers.items()), "body": body})
                receiver.arrived.set()
                answer = b'{"received": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _record

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()


class Server:
    """ductape-local on an SQLite file under .build/demo/, with the example seed."""

    def __init__(self) -> None:
        self.port = free_port(PREFERRED_PORT)
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = WORKDIR / "ductape.db"
        self.seed = WORKDIR / "seed.yml"
        self.log_path = WORKDIR / "ductape-local.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        for stale in WORKDIR.glob("ductape.db*"):
            stale.unlink()
        self.seed.write_text(subprocess.run([BIN / "ductape-local", "seed-example"], check=True,
                                            capture_output=True, text=True).stdout, encoding="utf-8")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [BIN / "ductape-local", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--db", str(self.db), "--seed", str(self.seed), "--test-mode"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ductape-local exited with {self.process.returncode}; see {self.log_path}:\n"
                                   + self.log_path.read_text(errors="replace")[-3000:])
            try:
                requests.get(self.url + "/openapi.json", timeout=2)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError(f"ductape-local did not answer on {self.url} within 30 s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {ACCESS_KEY}", **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=10, **kwargs)

    def writes(self) -> int:
        return self.api("GET", "/_local/stats").json()["data"]["writes"]

    def reset_stats(self) -> None:
        self.api("POST", "/_local/stats/reset").raise_for_status()

    def registrations(self) -> list[dict]:
        rows = []
        for access_tag in ("stripe-payments", "paystack-payments"):
            cursor = None
            while True:
                params = {"product": PRODUCT, "access_tag": access_tag, **({"cursor": cursor} if cursor else {})}
                answer = self.api("GET", "/webhooks/v1/webhooks", params=params)
                answer.raise_for_status()
                for webhook in answer.json()["data"]:
                    for registration in webhook["config"]:
                        rows.append({"access_tag": access_tag, "webhook_tag": webhook["tag"], **registration})
                cursor = answer.json()["meta"].get("next_cursor")
                if not cursor:
                    break
        return rows


def run_playbook(server: Server, overlay: Path) -> str:
    """Runs the example playbook, showing its output as it goes; returns that output."""
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DUCTAPE_API_URL": server.url,
        "DUCTAPE_ACCESS_KEY": ACCESS_KEY,
        # make exports the same path; a direct run of this script gets it here.
        "ANSIBLE_COLLECTIONS_PATH": os.environ.get("ANSIBLE_COLLECTIONS_PATH") or str(ROOT / ".build" / "collections"),
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "yaml",
        "ANSIBLE_NOCOLOR": "1",
    }
    command = [str(BIN / "ansible-playbook"), "-i", "examples/inventory.yml", "-i", str(overlay),
               "examples/register-webhooks.yml"]
    print("$ ansible-playbook " + " ".join(command[1:]), flush=True)
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    output = []
    for line in process.stdout:
        print(line, end="", flush=True)
        output.append(line)
    if process.wait() != 0:
        raise RuntimeError(f"ansible-playbook failed with exit code {process.returncode}")
    return "".join(output)


def changed_count(output: str) -> int:
    match = re.search(r"^localhost\s*:.*\bchanged=(\d+)", output, re.MULTILINE)
    if not match:
        raise RuntimeError("no PLAY RECAP line for localhost in the playbook's output")
    return int(match.group(1))


def show_registrations(server: Server) -> dict:
    rows = server.registrations()
    width = max(len(f"{row['access_tag']}/{row['webhook_tag']}") for row in rows)
    for row in sorted(rows, key=lambda r: (r["productEnv"], r["access_tag"], r["webhook_tag"])):
        print(f"  {row['productEnv']:4} {row['access_tag'] + '/' + row['webhook_tag']:{width}}  "
              f"{row['method']:6} {row['url']}")
    return {(r["productEnv"], r["access_tag"], r["webhook_tag"]): r for r in rows}


def send_sample_event(server: Server, receiver: Receiver, registration: dict) -> None:
    say(f"A provider event through {EVENT_ENV}'s {EVENT_ACCESS_TAG}/{EVENT_WEBHOOK_TAG} link")
    body = json.dumps(SAMPLE_EVENT).encode()
    print(f"POST {registration['link']}\n  {body.decode()}")
    answer = requests.post(registration["link"], data=body, timeout=10, headers={
        "Content-Type": "application/json", "Stripe-Signature": "t=1700000000,v1=demo_signature"})
    envelope_error = answer.headers.get("content-type", "").startswith("application/json") and "status" in answer.json()
    if answer.status_code in (404, 405) and not envelope_error:
        print("This ductape-local has no ingress route (/webhooks/v1/process) yet: skipping the live event.")
        return
    if answer.status_code != 202:
        raise RuntimeError(f"the link answered {answer.status_code}: {answer.text}")
    event_id = answer.json()["data"]["event_id"]
    print(f"ductape-local: 202 Accepted, event_id {event_id}")

    if not receiver.arrived.wait(timeout=30):
        raise RuntimeError(f"the event did not reach the receiver {receiver.url} within 30 s")
    arrived = receiver.requests[0]
    print(f"\nThe dev receiver ({receiver.url}) got:\n  {arrived['method']} {arrived['path']}")
    for name, value in arrived["headers"].items():
        if name.lower().startswith("x-ductape-") or name.lower() in ("content-type", "stripe-signature"):
            print(f"  {name}: {value}")
    print(f"  body: {arrived['body'].decode(errors='replace')}"
          f"  ({'byte for byte as sent' if arrived['body'] == body else 'DIFFERENT from what was sent'})")

    delivery = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        delivery = server.api("GET", f"/webhooks/v1/deliveries/{event_id}").json()["data"]
        if delivery["status"] != "pending":
            break
        time.sleep(0.2)
    print(f"\nDuctape's delivery record (GET /webhooks/v1/deliveries/{event_id}):")
    for key in ("status", "env", "webhook_tag", "method", "attempt_count", "received_at", "delivered_at"):
        print(f"  {key}: {delivery.get(key)}")
    for attempt in delivery.get("attempts", []):
        print(f"  attempt {attempt['n']}: HTTP {attempt['status_code']} in {attempt['latency_ms']} ms"
              + (f", {attempt['error']}" if attempt.get("error") else ""))


def main() -> int:
    WORKDIR.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    server, receiver = Server(), Receiver()
    try:
        say(f"Starting ductape-local on {server.url} (SQLite {server.db.relative_to(ROOT)}, example seed)")
        server.start()
        receiver.start()
        # dev's receivers are this demo's small local receiver; prd and stg keep examples/inventory.yml's.
        overlay = WORKDIR / "inventory-dev-receiver.yml"
        overlay.write_text(json.dumps({"all": {"children": {"ductape_environments": {"hosts": {
            "dev": {"ductape_receiver_base_url": receiver.url}}}}}}), encoding="utf-8")

        say("Registering the example webhooks in prd, stg and dev (examples/register-webhooks.yml)")
        run_playbook(server, overlay)

        say("What ductape-local now holds (GET /webhooks/v1/webhooks)")
        registrations = show_registrations(server)

        say("The same playbook again: nothing should change")
        server.reset_stats()
        second = run_playbook(server, overlay)
        changed, writes = changed_count(second), server.writes()
        print(f"\nSecond run: changed={changed}; ductape-local counted {writes} write(s).")
        if changed or writes:
            raise RuntimeError("the second run was expected to change nothing")

        send_sample_event(server, receiver, registrations[(EVENT_ENV, EVENT_ACCESS_TAG, EVENT_WEBHOOK_TAG)])
        say("Demo finished. Try it yourself while a server runs:")
        print(f"  .venv/bin/ductape-local serve --port 4311 --db /tmp/ductape.db --seed {server.seed.relative_to(ROOT)} &\n"
              "  DUCTAPE_API_URL=http://127.0.0.1:4311 DUCTAPE_ACCESS_KEY=dtl_local_example_key \\\n"
              "    ANSIBLE_COLLECTIONS_PATH=.build/collections \\\n"
              "    .venv/bin/ansible-playbook -i examples/inventory.yml examples/register-webhooks.yml --check --diff")
        return 0
    except (RuntimeError, requests.RequestException) as error:
        print(f"\nmake demo failed: {error}", file=sys.stderr)
        if server.log_path.exists():
            print(f"ductape-local's log: {server.log_path}", file=sys.stderr)
        return 1
    finally:
        server.stop()
        receiver.stop()


if __name__ == "__main__":
    sys.exit(main())
