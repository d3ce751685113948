"""LocalServer: one `ductape-local serve --test-mode` for a test, on a free port with its own temp dir.

    with LocalServer(seed) as server:          # seed: a dict, a path, or None for the example seed
        requests.get(server.url + "/webhooks/v1/webhooks", headers=server.auth_headers, ...)
        server.stats()["writes"]

Every test suite of the project starts its servers through this class.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
import yaml

from ductape_local.cli import example_seed

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
PORT_ATTEMPTS = 3


class LocalServerError(RuntimeError):
    pass


class PortTakenError(LocalServerError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalServer:
    """A ductape-local subprocess; `options` become CLI flags (public_url="x" -> --public-url x, flag=True -> --flag).

    load_seed=False starts without --seed, so the server uses the seed stored in its database.
    """

    def __init__(
        self,
        seed: dict[str, Any] | str | os.PathLike[str] | None = None,
        *,
        test_mode: bool = True,
        extra_args: list[str] | tuple[str, ...] = (),
        db_path: str | os.PathLike[str] | None = None,
        load_seed: bool = True,
        startup_timeout: float = STARTUP_TIMEOUT,
        **options: Any,
    ):
        self.workdir = Path(tempfile.mkdtemp(prefix="ductape-local-"))
        # An existing database may be given, e.g. to start a second server on the first one's data.
        self.db_path = Path(db_path) if db_path is not None else self.workdir / "ductape.db"
        self.load_seed = load_seed
        self.log_path = self.workdir / "server.log"
        self.seed_path = self.workdir / "seed.yml"
        if seed is None:
            self.seed_path.write_text(example_seed(), encoding="utf-8")
        elif isinstance(seed, dict):
            self.seed_path.write_text(yaml.safe_dump(seed, sort_keys=False), encoding="utf-8")
        else:
            shutil.copyfile(seed, self.seed_path)
        self.seed = yaml.safe_load(self.seed_path.read_text(encoding="utf-8"))
        self.test_mode = test_mode
        self.extra_args = list(extra_args)
        self.options = options
        self.startup_timeout = startup_timeout
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._started_once = False
        self._log_offset = 0
        self._log_file = None

    # Life cycle.

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_key(self) -> str:
        """The seed's first access key, for tests that need any valid key."""
        return self.seed["access_keys"][0]["key"]

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_key}"}

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "ductape_local", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--db", str(self.db_path)]
        if self.load_seed:
            args += ["--seed", str(self.seed_path)]
        if self.test_mode:
            args.append("--test-mode")
        for name, value in self.options.items():
            flag = "--" + name.replace("_", "-")
            if value is True:
                args.append(flag)
            elif value not in (None, False):
                args += [flag, str(value)]
        return args + self.extra_args

    def start(self) -> "LocalServer":
        if self.running:
            return self
        for attempt in range(PORT_ATTEMPTS):
            try:
                self._spawn()
                self._started_once = True
                return self
            except PortTakenError:
                # Another process took the free port between our probe and the server's bind. A restart
                # keeps its port (links name it), so only a first start moves to another one.
                if self._started_once or attempt == PORT_ATTEMPTS - 1:
                    raise
                self.port = free_port()
        return self

    def _spawn(self) -> None:
        self._log_file = open(self.log_path, "ab")
        self._log_offset = len(self.log_text())
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # Same process group as the test run, so that a Ctrl-C stops the servers too.
        self.process = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT, env=env,
        )
        self._wait_until_ready()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._close_log()
                if "address already in use" in self.log_text()[self._log_offset:].lower():
                    raise PortTakenError(f"port {self.port} is taken")
                raise LocalServerError(
                    f"ductape-local exited with {self.process.returncode} while starting; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                # Not a contract route, so the probe never shows in stats(). The title tells our server
                # from another program that answers on the same port.
                probe = requests.get(self.url + "/openapi.json", timeout=2)
                if probe.status_code == 200 and probe.json().get("info", {}).get("title") == "ductape-local":
                    return
            except (requests.RequestException, ValueError):  # not listening yet, or another program
                pass
            time.sleep(0.05)
        self.kill()
        raise LocalServerError(f"ductape-local did not answer within {self.startup_timeout}s; log {self.log_path}:\n"
                               f"{self.log_tail()}")

    def stop(self) -> None:
        """Graceful stop (SIGTERM), escalating to SIGKILL when it hangs."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close_log()

    def kill(self) -> None:
        """SIGKILL, as a crash would; start() or restart() brings it back on the same port and database."""
        if self.running:
            self.process.kill()
            self.process.wait()
        self._close_log()

    def restart(self) -> "LocalServer":
        self.stop()
        return self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "LocalServer":
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def __del__(self) -> None:
        # Last resort for a server that a test forgot to stop: never leave a process behind.
        process = getattr(self, "process", None)
        if process is not None and process.poll() is None:
            process.kill()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # Test-mode routes.

    def _local(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, self.url + "/_local" + path, timeout=10, **kwargs)
        if response.status_code != 200:
            raise LocalServerError(f"{method} /_local{path} answered {response.status_code}: {response.text}")
        return response.json()["data"]

    def stats(self) -> dict[str, Any]:
        """{"requests": {"POST /webhooks/v1/register": n, ...}, "reads": n, "writes": n}"""
        return self._local("GET", "/stats")

    def reset_stats(self) -> None:
        self._local("POST", "/stats/reset")

    def fault(self, route: str, status: int, count: int = 1, retry_after: int | None = None,
              crash: bool = False) -> None:
        """The next `count` requests to `route` ("POST /webhooks/v1/register") answer `status`; with
        crash=True they raise an exception quoting the request's headers and body instead."""
        body = {"route": route, "status": status, "count": count, "crash": crash}
        if retry_after is not None:
            body["retry_after"] = retry_after
        self._local("POST", "/faults", json=body, headers=self.auth_headers)

    def clear_faults(self) -> None:
        self._local("DELETE", "/faults", headers=self.auth_headers)
