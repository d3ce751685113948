"""What every reliability test shares: real ansible-playbook runs, ductape-local servers, the figures
that `make test-reliability` prints, and the secret search over everything that was printed.

Every ansible-playbook run and every server log of the session goes through `record_output`, so that
the secret search covers all of them, not only the secrets test's own runs.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import requests
import yaml

from ductape_local.testing import LocalServer

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
OUTPUT_DIR = REPO / "tests" / "output" / "reliability"

# The figures printed at the end of the run (conftest.pytest_terminal_summary).
FIGURES: Counter[str] = Counter()
# What the run did, for the figures' details: bad input case ids, fault kinds, ...
DETAILS: dict[str, list[str]] = {}


def figure(name: str, amount: int = 1, detail: str | None = None) -> None:
    FIGURES[name] += amount
    if detail is not None:
        DETAILS.setdefault(name, []).append(detail)


# ---------------------------------------------------------------------------------------------
# docs/reliability.md: the blocks the suite writes (the figures, the bad-inputs table).

DOC = REPO / "docs" / "reliability.md"
UPDATE_DOCS = "RELIABILITY_UPDATE_DOCS"


def documented_block(begin: str, end: str, content: str) -> str | None:
    """What DOC holds between the markers `begin` and `end` (stripped), or None without them. With
    RELIABILITY_UPDATE_DOCS=1 the block is first rewritten to `content`."""
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    if begin not in text or end not in text:
        return None
    if os.environ.get(UPDATE_DOCS) == "1":
        head, rest = text.split(begin, 1)
        text = head + begin + "\n" + content + "\n" + end + rest.split(end, 1)[1]
        DOC.write_text(text, encoding="utf-8")
    return text.split(begin, 1)[1].split(end, 1)[0].strip()


# ---------------------------------------------------------------------------------------------
# Secrets: every planted value, and every text that must not hold one.

PLANTED: dict[str, str] = {}  # secret value -> where it was planted
OUTPUTS: list[tuple[str, str]] = []  # (label, text)


def plant(where: str) -> str:
    """A fresh secret string, unique to this run, remembered for the final search."""
    value = f"s3cr3t-{where.replace('_', '-').replace(' ', '-')}-{uuid.uuid4().hex}"
    PLANTED[value] = where
    figure("secrets planted")
    return value


def record_output(label: str, text: str) -> None:
    OUTPUTS.append((label, text))


def secret_hits(outputs: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """(output label, where the secret was planted) for every planted secret found in an output."""
    hits = []
    for label, text in OUTPUTS if outputs is None else outputs:
        for value, where in PLANTED.items():
            if value in text:
                hits.append((label, where))
    return hits


# ---------------------------------------------------------------------------------------------
# ductape-local.

@contextlib.contextmanager
def local_server(seed: dict[str, Any] | None = None, **options: Any) -> Iterator[LocalServer]:
    """A LocalServer whose log is searched for secrets once it stops."""
    server = LocalServer(seed, **options)
    try:
        with server:
            yield server
            server.stop()
            record_output(f"server log {server.workdir.name}", server.log_text())
    finally:
        if server.log_path.exists():
            record_output(f"server log {server.workdir.name} (teardown)", server.log_text())


def api_get(server: LocalServer, path: str, key: str | None = None, **params: Any) -> Any:
    response = requests.get(server.url + path, params=params, timeout=30,
                            headers={"Authorization": f"Bearer {key or server.access_key}"})
    response.raise_for_status()
    return response.json()["data"]


def registrations(server: LocalServer, product: str, access_tag: str, key: str | None = None) -> list[dict[str, Any]]:
    """Every live registration of an app connection, each with its webhook's tag, over every page."""
    found = []
    cursor = None
    while True:
        params = {"product": product, "access_tag": access_tag, "limit": 250}
        if cursor:
            params["cursor"] = cursor
        response = requests.get(server.url + "/webhooks/v1/webhooks", params=params, timeout=30,
                                headers={"Authorization": f"Bearer {key or server.access_key}"})
        response.raise_for_status()
        body = response.json()
        for webhook in body["data"]:
            for registration in webhook["config"]:
                found.append({**registration, "webhook_tag": webhook["tag"]})
        cursor = body["meta"].get("next_cursor")
        if not cursor:
            return found


def stored_rows(server: LocalServer) -> list[dict[str, Any]]:
    """The registrations table itself, tombstones included: what a duplicate would leave behind."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(server.db_path)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(
            "SELECT uuid, product, access_tag, webhook_tag, product_env, url, method, deleted_at FROM registrations")]


# ---------------------------------------------------------------------------------------------
# ansible-playbook.

@dataclass
class PlaybookRun:
    rc: int
    output: str
    dump: Any = None
    log: str = ""
    args: list[str] = field(default_factory=list)

    def lines_with(self, text: str) -> list[str]:
        return [line for line in self.output.splitlines() if text in line]


def collections_path() -> str:
    configured = os.environ.get("ANSIBLE_COLLECTIONS_PATH")
    if configured:
        return configured
    return str(REPO / ".build" / "collections")


def localhost_inventory(extra_vars: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"all": {"hosts": {"localhost": {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        **(extra_vars or {}),
    }}}}


def run_playbook(
    workdir: Path,
    plays: list[dict[str, Any]] | str,
    *,
    label: str,
    inventory: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    args: list[str] | tuple[str, ...] = (),
    dump_name: str | None = "dump.json",
    timeout: float = 600,
    background: bool = False,
    record: bool = True,
) -> PlaybookRun | subprocess.Popen[str]:
    """ansible-playbook over `plays` (YAML text or a list of plays), from a directory of its own.

    Its output, its log file and its dump (a JSON file the play writes to DUMP_PATH, given to the
    play as the variable `dump_path`) are all recorded for the secret search, unless record=False
    (a run that proves a known, reported leak: its own test judges it).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    playbook = workdir / "playbook.yml"
    playbook.write_text(plays if isinstance(plays, str) else yaml.safe_dump(plays, sort_keys=False), encoding="utf-8")
    inventory_file = workdir / "inventory.yml"
    inventory_file.write_text(yaml.safe_dump(inventory or localhost_inventory(), sort_keys=False), encoding="utf-8")
    dump_path = workdir / dump_name if dump_name else None
    if dump_path is not None and dump_path.exists():
        dump_path.unlink()
    log_path = workdir / "ansible.log"
    run_env = {name: value for name, value in os.environ.items() if not name.startswith(("DUCTAPE_", "ANSIBLE_"))}
    run_env.update({
        "ANSIBLE_COLLECTIONS_PATH": collections_path(),
        "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-tmp"),
        "ANSIBLE_HOME": str(workdir / "ansible-home"),
        "ANSIBLE_LOG_PATH": str(log_path),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "false",
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "ANSIBLE_HOST_KEY_CHECKING": "false",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
    })
    run_env.update(env or {})
    command = [str(ANSIBLE_PLAYBOOK), "-i", str(inventory_file), str(playbook), *args]
    if dump_path is not None:
        command += ["-e", f"dump_path={dump_path}"]
    if background:
        return subprocess.Popen(command, cwd=workdir, env=run_env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    completed = subprocess.run(command, cwd=workdir, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    return finish_run(workdir, label, completed.returncode, completed.stdout, command, dump_path, record)


def finish_run(workdir: Path, label: str, rc: int, output: str, command: list[str] | None = None,
               dump_path: Path | None = None, record: bool = True) -> PlaybookRun:
    if dump_path is None:
        dump_path = workdir / "dump.json"
    log_path = workdir / "ansible.log"
    log = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else ""
    dump_text = dump_path.read_text(encoding="utf-8") if dump_path.exists() else ""
    if record:
        record_output(f"{label}: ansible-playbook output", output)
        record_output(f"{label}: ansible log", log)
        if dump_text:
            record_output(f"{label}: registered results", dump_text)
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUTPUT_DIR / (re.sub(r"[^A-Za-z0-9_.-]+", "-", label) + ".log")).write_text(output, encoding="utf-8")
    figure("playbook runs")
    return PlaybookRun(rc=rc, output=output, dump=json.loads(dump_text) if dump_text else None, log=log,
                       args=list(command or []))


def dump_task(expression: str) -> dict[str, Any]:
    """The last task of a play: write what the play registered (a Jinja expression) as JSON for the test."""
    return {
        "name": "Dump what was registered for the test",
        "ansible.builtin.copy": {"content": "{{ (" + expression + ") | to_json }}", "dest": "{{ dump_path }}",
                                 "mode": "0600"},
        "delegate_to": "localhost",
        "run_once": True,
        "check_mode": False,
    }
