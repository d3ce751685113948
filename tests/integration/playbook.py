"""Run real ansible-playbook / ansible against a ductape-local, many steps per run.

A test builds one play out of named steps. Each step is one task, with the server's request counts
(/_local/stats) read right before and right after it, and optionally the stored registrations read
after it through a separate observer key; the playbook ends by writing every step's result, counts
and state to a JSON file that the test reads back:

    steps = [Step("check", {"ductape.webhooks.ductape_webhook": {...}}, check_mode=True), ...]
    run = run_steps(tmp_path, server, steps, module_defaults={...}, verbosity=3, diff=True)
    run.result("check")["changed"]; run.delta("check")["writes"]; run.state("check")

Reading counts and state goes through the `url` lookup, which runs in the controller: no module, no
request counted (``/_local`` is not counted; state reads happen after the "after" count).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ANSIBLE_PLAYBOOK = BIN / "ansible-playbook"
ANSIBLE = BIN / "ansible"
LOCALHOST_VARS = {
    "ansible_connection": "local",
    "ansible_python_interpreter": "{{ ansible_playbook_python }}",
}


_HELD_SOCKETS: list[socket.socket] = []


def unreachable_url() -> str:
    """A URL on a port held bound (never listening) for the whole test run: connections are refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    _HELD_SOCKETS.append(sock)
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


def core_injects_invocation() -> bool:
    """Whether the running ansible-core adds ``invocation`` to module results: always before 2.21, and
    from 2.21 only with INJECT_INVOCATION (off by default)."""
    from ansible import constants as C  # pylint: disable=import-outside-toplevel
    if "INJECT_INVOCATION" not in C.config.get_configuration_definitions():
        return True
    return bool(C.config.get_config_value("INJECT_INVOCATION"))


def collections_path() -> str:
    configured = os.environ.get("ANSIBLE_COLLECTIONS_PATH")
    if configured:
        return configured
    default = REPO / ".build" / "collections"
    if not (default / "ansible_collections" / "ductape" / "webhooks").exists():
        raise RuntimeError("the collection is not linked into .build/collections: run `make collection` first")
    return str(default)


def ansible_env(workdir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any DUCTAPE_* variable, plus what ansible needs here."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("DUCTAPE_")}
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": collections_path(),
        "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "ANSIBLE_DEPRECATION_WARNINGS": "false",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    })
    env.update(extra or {})
    return env


@dataclass
class Step:
    """One task of the sequence. `task` is the module call, e.g. {"ductape.webhooks.ductape_webhook": {...}}."""

    name: str
    task: dict[str, Any]
    check_mode: bool | None = None
    diff: bool | None = None
    expect_failure: bool = False
    read_state: bool = True
    # Test-mode faults to arm right before the step: [{"route": "GET /webhooks/v1/webhooks", "status": 503, ...}]
    faults: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    data: dict[str, Any]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def step(self, name: str) -> dict[str, Any]:
        if name not in self.data:
            raise AssertionError(f"step {name!r} has no recorded result; the playbook stopped early?\n"
                                 f"{self.output[-6000:]}")
        return self.data[name]

    def result(self, name: str) -> dict[str, Any]:
        return self.step(name)["result"]

    def delta(self, name: str) -> dict[str, Any]:
        """Request counts of this step alone: {"reads": n, "writes": n, "requests": {"POST /...": n}}."""
        before, after = self.step(name)["before"], self.step(name)["after"]
        routes = set(before["requests"]) | set(after["requests"])
        requests = {route: after["requests"].get(route, 0) - before["requests"].get(route, 0) for route in routes}
        return {
            "reads": after["reads"] - before["reads"],
            "writes": after["writes"] - before["writes"],
            "requests": {route: count for route, count in requests.items() if count},
        }

    def state(self, name: str) -> list[dict[str, Any]]:
        """The webhooks as the server listed them (observer key) right after the step."""
        return self.step(name)["state"]

    def describe(self, name: str) -> str:
        """A step's result and counts, for an assertion message."""
        step = self.step(name)
        return (f"step {name!r}: result={json.dumps(step['result'], indent=1, sort_keys=True)[:4000]}\n"
                f"requests={json.dumps(self.delta(name))}")


def _lookup_json(url_expression: str, headers_expression: str | None = None) -> str:
    headers = f", headers={headers_expression}" if headers_expression else ""
    return (f"{{{{ lookup('ansible.builtin.url', {url_expression}, split_lines=false, use_proxy=false{headers})"
            f" | from_json }}}}")


def steps_playbook(steps: list[Step], *, module_defaults: dict[str, Any] | None = None,
                   state_query: dict[str, str] | None = None) -> str:
    """The YAML of one play running `steps` with counts (and state) recorded around each.

    Expects extra vars: server_url, observer_key, results_path.
    """
    names = [step.name for step in steps]
    if len(set(names)) != len(names):
        raise ValueError(f"step names must be unique: {names}")
    stats = _lookup_json("server_url ~ '/_local/stats'")
    tasks: list[dict[str, Any]] = []
    for step in steps:
        var = f"step_{step.name}"
        for index, fault in enumerate(step.faults):
            tasks.append({
                "name": f"{step.name}: arm fault {index}",
                "ansible.builtin.uri": {"url": "{{ server_url }}/_local/faults", "method": "POST",
                                        "body_format": "json", "body": fault, "use_proxy": False,
                                        "headers": {"Authorization": "Bearer {{ observer_key }}"}},
                "no_log": True,  # faults take an access key
            })
        tasks.append({"name": f"{step.name}: counts before",
                      "ansible.builtin.set_fact": {f"{var}_before": stats}})
        task: dict[str, Any] = {"name": step.name, **step.task, "register": var}
        if step.check_mode is not None:
            task["check_mode"] = step.check_mode
        if step.diff is not None:
            task["diff"] = step.diff
        if step.expect_failure:
            task["ignore_errors"] = True
        tasks.append(task)
        tasks.append({"name": f"{step.name}: counts after",
                      "ansible.builtin.set_fact": {f"{var}_after": stats}})
        if step.read_state and state_query:
            query = "&".join(f"{key}={value}" for key, value in state_query.items())
            listing = _lookup_json(f"server_url ~ '/webhooks/v1/webhooks?{query}&limit=250'",
                                   "{'Authorization': 'Bearer ' ~ observer_key}")
            tasks.append({"name": f"{step.name}: state after",
                          "ansible.builtin.set_fact": {f"{var}_state": listing}})
    collected = ", ".join(
        f"'{step.name}': {{'result': step_{step.name}, 'before': step_{step.name}_before.data, "
        f"'after': step_{step.name}_after.data, "
        f"'state': {('step_' + step.name + '_state.data') if step.read_state and state_query else 'none'}}}"
        for step in steps
    )
    tasks.append({
        "name": "Hand every step to the test",
        "ansible.builtin.copy": {"content": "{{ {" + collected + "} | to_json }}", "dest": "{{ results_path }}",
                                 "mode": "0600"},
        "diff": False,
    })
    play: dict[str, Any] = {
        "name": "Steps under test",
        "hosts": "localhost",
        "gather_facts": False,
        "vars": dict(LOCALHOST_VARS),
        "tasks": tasks,
    }
    if module_defaults:
        play["module_defaults"] = module_defaults
    return yaml.safe_dump([play], sort_keys=False, allow_unicode=True, width=1000)


def run_playbook(workdir: Path, playbook: str, extra_vars: dict[str, Any] | None = None, *, verbosity: int = 0,
                 diff: bool = False, env: dict[str, str] | None = None, timeout: int = 300,
                 name: str = "playbook") -> subprocess.CompletedProcess[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"{name}.yml"
    path.write_text(playbook, encoding="utf-8")
    command = [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", str(path)]
    if verbosity:
        command.append("-" + "v" * verbosity)
    if diff:
        command.append("--diff")
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    return subprocess.run(command, cwd=workdir, env=ansible_env(workdir, env), capture_output=True, text=True,
                          timeout=timeout, check=False)


def run_steps(workdir: Path, server, observer_key: str, steps: list[Step], *, module_defaults=None,
              state_query: dict[str, str] | None = None, extra_vars: dict[str, Any] | None = None,
              verbosity: int = 0, diff: bool = False, env: dict[str, str] | None = None) -> Run:
    """Run `steps` in one ansible-playbook against `server`; every failed step must say expect_failure."""
    results_path = workdir / "results.json"
    playbook = steps_playbook(steps, module_defaults=module_defaults, state_query=state_query)
    variables = {"server_url": server.url, "observer_key": observer_key, "results_path": str(results_path),
                 **(extra_vars or {})}
    completed = run_playbook(workdir, playbook, variables, verbosity=verbosity, diff=diff, env=env)
    data = json.loads(results_path.read_text(encoding="utf-8")) if results_path.exists() else {}
    run = Run(completed.returncode, completed.stdout, completed.stderr, data)
    if completed.returncode != 0:
        raise AssertionError(f"ansible-playbook exited with {completed.returncode}:\n{run.output[-8000:]}")
    for step in steps:
        failed = bool(run.result(step.name).get("failed"))
        if failed != step.expect_failure:
            raise AssertionError(f"step {step.name!r} {'failed' if failed else 'succeeded'} unexpectedly:\n"
                                 f"{run.describe(step.name)}")
    return run


def run_adhoc(workdir: Path, module: str, args: str, *, env: dict[str, str] | None = None, verbosity: int = 0,
              check: bool = False, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    """`ansible localhost -m <module> -a '<args>'` on the local connection."""
    workdir.mkdir(parents=True, exist_ok=True)
    command = [str(ANSIBLE), "localhost", "-i", "localhost,", "-c", "local",
               "-e", "ansible_python_interpreter=" + sys.executable, "-m", module, "-a", args]
    if verbosity:
        command.append("-" + "v" * verbosity)
    if check:
        command.append("--check")
    return subprocess.run(command, cwd=workdir, env=ansible_env(workdir, env), capture_output=True, text=True,
                          timeout=timeout, check=False)


def adhoc_result(completed: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON that `ansible localhost -m ...` prints after 'localhost | SUCCESS =>'."""
    text = completed.stdout
    marker = text.find("=> {")
    if marker < 0:
        raise AssertionError(f"no result in the ad-hoc output:\n{completed.stdout}\n{completed.stderr}")
    decoder = json.JSONDecoder()
    return decoder.raw_decode(text[marker + 3:])[0]
