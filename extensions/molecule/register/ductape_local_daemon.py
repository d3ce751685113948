"""Keep one `ductape-local --test-mode`, and a provider for it to call, running between molecule's
create and destroy steps.

    python ductape_local_daemon.py start STATE_DIR SEED   # prints the server's URL once it answers
    python ductape_local_daemon.py stop STATE_DIR         # stops it and removes its temporary files

Each molecule step is a separate ansible-playbook run, so the server cannot live inside one of them.
`start` launches a detached holder process that runs the server through
`ductape_local.testing.LocalServer` (the project's one way to start a test server: free port, temporary
database) and waits for SIGTERM; `stop` sends that signal, so LocalServer cleans up as in any test.

The holder also serves a provider's webhook registration endpoint on another free port: `@PROVIDER_URL@`
in the seed becomes its address, and every request it receives is appended to
STATE_DIR/provider-requests.jsonl (method, path, headers, JSON body), so that verify can check what
ductape-local sent to the provider.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


def state_file(state_dir: Path) -> Path:
    return state_dir / "ductape-local.json"


def provider_endpoint(requests_log: Path) -> ThreadingHTTPServer:
    """A provider's registration endpoint that accepts everything and records it."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                body = raw.decode("utf-8", errors="replace")
            entry = {"method": self.command, "path": self.path, "headers": dict(self.headers.items()), "body": body}
            with lock, open(requests_log, "a", encoding="utf-8") as log:
                log.write(json.dumps(entry) + "\n")
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _record

        def log_message(self, format, *args):
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def hold(state_dir: Path, seed: Path) -> int:
    import yaml
    from ductape_local.testing import LocalServer

    def stop_holding(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop_holding)
    signal.signal(signal.SIGINT, stop_holding)
    requests_log = state_dir / "provider-requests.jsonl"
    requests_log.write_text("", encoding="utf-8")
    provider = provider_endpoint(requests_log)
    threading.Thread(target=provider.serve_forever, daemon=True).start()
    provider_url = f"http://127.0.0.1:{provider.server_address[1]}"
    seed_text = seed.read_text(encoding="utf-8").replace("@PROVIDER_URL@", provider_url)
    with LocalServer(yaml.safe_load(seed_text)) as server:
        state = {"url": server.url, "provider_url": provider_url, "provider_requests": str(requests_log),
                 "holder_pid": os.getpid(), "server_pid": server.process.pid, "log": str(server.log_path)}
        temporary = state_file(state_dir).with_suffix(".tmp")
        temporary.write_text(json.dumps(state), encoding="utf-8")
        temporary.replace(state_file(state_dir))
        while True:
            if not server.running:
                print(f"ductape-local stopped by itself; log:\n{server.log_tail()}", file=sys.stderr)
                return 1
            time.sleep(0.5)


def start(state_dir: Path, seed: Path) -> int:
    state_dir.mkdir(parents=True, exist_ok=True)
    if state_file(state_dir).exists():
        stop(state_dir)
    holder_log = state_dir / "ductape-local-holder.log"
    with open(holder_log, "ab") as log:
        holder = subprocess.Popen(
            [sys.executable, __file__, "hold", str(state_dir), str(seed.resolve())],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if state_file(state_dir).exists():
            print(json.loads(state_file(state_dir).read_text(encoding="utf-8"))["url"])
            return 0
        if holder.poll() is not None:
            break
        time.sleep(0.1)
    if holder.poll() is None:
        holder.kill()
    print(f"ductape-local did not start; holder log {holder_log}:\n"
          f"{holder_log.read_text(encoding='utf-8', errors='replace')[-4000:]}", file=sys.stderr)
    return 1


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers signal 0; the holder is not our child, so look at its state.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def stop(state_dir: Path) -> int:
    if not state_file(state_dir).exists():
        return 0
    state = json.loads(state_file(state_dir).read_text(encoding="utf-8"))
    holder_pid, server_pid = state["holder_pid"], state["server_pid"]
    if alive(holder_pid):
        os.kill(holder_pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while alive(holder_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    # If the holder hung or was killed, its server is orphaned: end it too.
    for pid in (holder_pid, server_pid):
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    state_file(state_dir).unlink()
    return 0


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] in ("start", "hold"):
        action = start if argv[0] == "start" else hold
        return action(Path(argv[1]), Path(argv[2]))
    if len(argv) == 2 and argv[0] == "stop":
        return stop(Path(argv[1]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
