"""What a user does with the collection, on one ansible-core line (scripts/test-matrix.sh runs it with the
python of that line's virtualenv, whose ansible-* commands it uses):

1. `ansible --version` names the core and the Python the line pins;
2. `ansible-doc` lists exactly the modules, filters and roles of the checkout and renders each of them, as
   text and as JSON, with no warning or error;
3. examples/register-webhooks.yml (the role, examples/inventory.yml) against a ductape-local holding the
   example seed: the first run changes and writes, the second changes nothing and sends no write;
4. the same playbook with `--check --diff` and every receiver moved: it reports the changes and their diff
   and sends no write;
5. ad-hoc `ansible localhost -m ductape.webhooks.ductape_webhook_info` with the connection from the
   environment, as AWX injects it, finds what the playbook registered.

The access key appears in no output. Usage: matrix_smoke.py --core 2.16.19 --python 3.11
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import ansible as ansible_package
import yaml
from ansible.release import __version__ as CORE_VERSION
from ductape_local.testing import LocalServer

ROOT = Path(__file__).resolve().parent.parent
# A line of the role's examples (roles/register/meta/argument_specs.yml): `ansible-doc -t role --json`
# carries them on every core, the text form shows them from ansible-core 2.17 on (2.16 prints a role's
# description, options and author only).
ROLE_EXAMPLE = "- role: ductape.webhooks.register"
ROLE_TEXT_EXAMPLES_SINCE = (2, 17)


def connection_modules() -> set[str]:
    """The modules that talk to the API: the action group of meta/runtime.yml (register_role, which
    documents the role's one task, reads the role's variables instead)."""
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text(encoding="utf-8"))
    return set(runtime["action_groups"]["ductape"])


def core_shows_role_examples() -> bool:
    return tuple(int(part) for part in CORE_VERSION.split(".")[:2]) >= ROLE_TEXT_EXAMPLES_SINCE


BIN = Path(sys.executable).parent
COLLECTION = "ductape.webhooks"
INVENTORY = ["-i", "examples/inventory.yml"]
PLAYBOOK = "examples/register-webhooks.yml"
PRODUCT = "my-product"
MOVED_RECEIVERS = "https://moved.example.com"


class SmokeFailure(AssertionError):
    pass


def check(condition: bool, message: str, output: str = "") -> None:
    if not condition:
        raise SmokeFailure(message + (f"\n--- output (last 6000 characters):\n{output[-6000:]}" if output else ""))


class Ansible:
    """Runs this virtualenv's ansible commands on the checkout's collection and nothing else."""

    def __init__(self, workdir: Path, server: LocalServer | None = None):
        self.workdir = workdir
        self.server = server
        self.outputs: list[str] = []

    def env(self) -> dict[str, str]:
        env = {name: value for name, value in os.environ.items()
               if not name.startswith(("DUCTAPE_", "ANSIBLE_", "VIRTUAL_ENV"))}
        env.update({
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "ANSIBLE_COLLECTIONS_PATH": os.environ["ANSIBLE_COLLECTIONS_PATH"],
            "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
            "ANSIBLE_HOME": str(self.workdir / "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": str(self.workdir / "ansible-tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "false",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        })
        if self.server is not None:
            env["DUCTAPE_API_URL"] = self.server.url
            env["DUCTAPE_ACCESS_KEY"] = self.server.access_key
        return env

    def run(self, command: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run([str(BIN / command), *args], cwd=ROOT, env=self.env(), capture_output=True,
                                   text=True, timeout=timeout, check=False)
        self.outputs.append(completed.stdout + completed.stderr)
        return completed


def output_of(completed: subprocess.CompletedProcess[str]) -> str:
    return f"$ {' '.join(map(str, completed.args))}\n{completed.stdout}{completed.stderr}"


def check_version(ansible: Ansible, core: str, python: str) -> None:
    completed = ansible.run("ansible", "--version")
    output = output_of(completed)
    check(completed.returncode == 0, "ansible --version failed", output)
    check(f"[core {core}]" in completed.stdout, f"ansible --version does not name core {core}", output)
    match = re.search(r"^\s*python version = (\d+\.\d+)\.", completed.stdout, re.MULTILINE)
    check(match is not None and match.group(1) == python, f"ansible does not run on Python {python}", output)


def plugin_names() -> dict[str, list[str]]:
    """What the checkout holds, by ansible-doc type: every module and filter file, every role with specs."""
    modules = sorted(f"{COLLECTION}.{path.stem}" for path in (ROOT / "plugins" / "modules").glob("*.py")
                     if path.stem != "__init__")
    # A filter plugin file holds several filters; each one is documented by a YAML file of its name.
    filters = sorted(f"{COLLECTION}.{path.stem}" for path in (ROOT / "plugins" / "filter").glob("*.yml"))
    roles = sorted(f"{COLLECTION}.{path.parent.parent.name}"
                   for path in (ROOT / "roles").glob("*/meta/argument_specs.yml"))
    return {"module": modules, "filter": filters, "role": roles}


def problems(stderr: str) -> list[str]:
    """The warnings and errors in `stderr`, but for those about ansible-core's own files (2.21 warns, when it
    documents a role, that its bundled ansible._protomatter collection has no version)."""
    core_files = str(Path(ansible_package.__file__).parent) + os.sep
    return [line for line in stderr.splitlines()
            if re.search(r"\[(WARNING|ERROR|DEPRECATION WARNING)\]|^ERROR!", line) and core_files not in line]


def check_docs(ansible: Ansible) -> int:
    rendered = 0
    for kind, names in plugin_names().items():
        check(bool(names), f"the checkout holds no {kind}: is this the collection root?")
        listing = ansible.run("ansible-doc", "-t", kind, "-l", COLLECTION, "--json")
        output = output_of(listing)
        check(listing.returncode == 0 and not problems(listing.stderr),
              f"ansible-doc -t {kind} -l reported a problem: {problems(listing.stderr)}", output)
        listed = json.loads(listing.stdout)
        check(sorted(listed) == names, f"ansible-doc -t {kind} -l lists {sorted(listed)}, the checkout has {names}",
              output)
        for form in ([], ["--json"]):
            completed = ansible.run("ansible-doc", "-t", kind, *form, *names)
            output = output_of(completed)
            check(completed.returncode == 0 and not problems(completed.stderr),
                  f"ansible-doc -t {kind} {' '.join(form)} reported a problem: {problems(completed.stderr)}", output)
            if form:
                docs = json.loads(completed.stdout)
                check(sorted(docs) == names, f"ansible-doc -t {kind} --json documented {sorted(docs)}", output)
                for name, doc in docs.items():
                    if kind == "role":
                        entry = doc.get("entry_points", {}).get("main", {})
                        check(bool(entry.get("short_description")) and bool(entry.get("options")),
                              f"{name}: the main entry point has no short_description or options", output)
                        check(ROLE_EXAMPLE in (entry.get("examples") or ""),
                              f"{name}: the main entry point has no examples", output)
                    else:
                        body = doc.get("doc") or {}
                        check(bool(body.get("short_description")) and bool(doc.get("examples")),
                              f"{name}: no short_description or examples", output)
                        if kind == "module" and name.split(".")[-1] in connection_modules():
                            check({"api_url", "access_key"} <= set(body.get("options", {})),
                                  f"{name}: the connection options are not documented", output)
            else:
                for name in names:
                    # "> DUCTAPE.WEBHOOKS.X" on 2.16, "> MODULE ductape.webhooks.x" on 2.19 and later.
                    check(name in completed.stdout.lower(), f"ansible-doc -t {kind} did not render {name}", output)
                if kind == "role" and core_shows_role_examples():
                    check("EXAMPLES:" in completed.stdout and ROLE_EXAMPLE in completed.stdout,
                          f"ansible-doc -t role shows no examples on ansible-core {CORE_VERSION}", output)
        rendered += len(names)
    return rendered


def recap(completed: subprocess.CompletedProcess[str]) -> dict[str, int]:
    match = re.search(r"^localhost\s*:\s*(.*)$", completed.stdout, re.MULTILINE)
    check(match is not None, "no PLAY RECAP line for localhost", output_of(completed))
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", match.group(1))}


def check_playbooks(workdir: Path) -> None:
    with LocalServer() as server:
        ansible = Ansible(workdir, server)

        first = ansible.run("ansible-playbook", *INVENTORY, PLAYBOOK)
        counts, writes = recap(first), server.stats()["writes"]
        check(first.returncode == 0 and counts["failed"] == 0, "the first run failed", output_of(first))
        check(counts["changed"] > 0 and writes > 0,
              f"the first run changed {counts['changed']} tasks with {writes} writes: it registered nothing",
              output_of(first))
        check("links to paste" in first.stdout, "the play's summary is missing", output_of(first))

        server.reset_stats()
        second = ansible.run("ansible-playbook", *INVENTORY, PLAYBOOK)
        counts, writes = recap(second), server.stats()["writes"]
        check(second.returncode == 0 and counts["failed"] == 0, "the second run failed", output_of(second))
        check(counts["changed"] == 0 and writes == 0,
              f"the second run changed {counts['changed']} tasks with {writes} writes: not idempotent",
              output_of(second))

        moved = workdir / "inventory-moved.yml"
        moved.write_text(json.dumps({"all": {"children": {"ductape_environments": {"hosts": {
            env: {"ductape_receiver_base_url": MOVED_RECEIVERS} for env in ("prd", "stg", "dev")}}}}}),
            encoding="utf-8")
        server.reset_stats()
        dry = ansible.run("ansible-playbook", *INVENTORY, "-i", str(moved), PLAYBOOK, "--check", "--diff")
        counts, writes = recap(dry), server.stats()["writes"]
        check(dry.returncode == 0 and counts["failed"] == 0, "the --check --diff run failed", output_of(dry))
        check(counts["changed"] > 0 and writes == 0,
              f"--check --diff with moved receivers changed {counts['changed']} tasks with {writes} writes",
              output_of(dry))
        check(re.search(r"^\+.*" + re.escape(MOVED_RECEIVERS), dry.stdout, re.MULTILINE) is not None,
              f"the diff shows no receiver moved to {MOVED_RECEIVERS}", output_of(dry))

        adhoc = ansible.run("ansible", "localhost", "-i", "localhost,", "-c", "local",
                            "-e", f"ansible_python_interpreter={sys.executable}",
                            "-m", f"{COLLECTION}.ductape_webhook_info",
                            "-a", f"product={PRODUCT} access_tag=stripe-payments")
        output = output_of(adhoc)
        check(adhoc.returncode == 0 and "localhost | SUCCESS =>" in adhoc.stdout, "the ad-hoc info call failed",
              output)
        result = json.JSONDecoder().raw_decode(adhoc.stdout[adhoc.stdout.index("=> {") + 3:])[0]
        tags = {webhook.get("tag") for webhook in result.get("webhooks", [])}
        check({"payment_succeeded", "charge_refunded"} <= tags and result.get("changed") is False,
              f"the ad-hoc info call found the webhooks {sorted(tags)}, changed={result.get('changed')}", output)

        leaked = [text for text in ansible.outputs if server.access_key in text]
        check(not leaked, "the access key appears in an output", leaked[0] if leaked else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--core", required=True, help="the ansible-core version this virtualenv must have")
    parser.add_argument("--python", required=True, help="the Python minor version it must run on, e.g. 3.11")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ductape-matrix-") as temp:
        workdir = Path(temp)
        try:
            check_version(Ansible(workdir), options.core, options.python)
            rendered = check_docs(Ansible(workdir))
            print(f"matrix-smoke: ansible-doc: {rendered} modules, filters and roles listed and rendered "
                  "(text, JSON)", flush=True)
            check_playbooks(workdir)
            print("matrix-smoke: the example playbook twice (idempotent), --check --diff, ad-hoc info: passed")
        except SmokeFailure as failure:
            print(f"matrix-smoke: FAIL on ansible-core {options.core}: {failure}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
