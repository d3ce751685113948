"""Converge workload W with each contender and measure wall clock and requests per phase.

Phases, each started from a zeroed request counter:
  first   - the first converge, on a fresh ductape-local --test-mode database;
  noop    - the same run again, nothing to change;
  change  - one env of one webhook moved to a new receiver URL.
Every contender gets its own fresh server, so no contender sees another one's registrations.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import statistics
import subprocess
import sys
import time

import requests
from ductape_local.testing import LocalServer

from workload import ACCESS_KEY, ACCESS_TAG, PRODUCT, Workload, write_yaml

PLAYBOOKS = pathlib.Path(__file__).resolve().parent / "playbooks"
REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
PHASES = ("first", "noop", "change")


@dataclasses.dataclass(frozen=True)
class Contender:
    name: str
    playbook: str
    uses_role: bool
    extra_vars: tuple[tuple[str, object], ...] = ()


URI = Contender("uri", "uri_register.yml", uses_role=False)
ROLE = Contender("role", "role_register.yml", uses_role=True)
# The role with the action plugins told to run the modules the usual way (AnsiballZ in a child
# Python per task): shows what the in-process execution is worth on its own.
ROLE_MODULE_PATH = Contender(
    "role (module path)", "role_register.yml", uses_role=True,
    extra_vars=(("ductape_run_on_controller", False),),
)


@dataclasses.dataclass(frozen=True)
class Measurement:
    seconds: float
    reads: int
    writes: int


def ansible_environment() -> dict[str, str]:
    environment = dict(os.environ)
    environment.update(
        ANSIBLE_COLLECTIONS_PATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH") or str(REPOSITORY / ".build" / "collections"),
        ANSIBLE_FORCE_COLOR="false",
        ANSIBLE_NOCOLOR="true",
        ANSIBLE_RETRY_FILES_ENABLED="false",
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
    )
    return environment


def run_playbook(playbook: pathlib.Path, inventory: pathlib.Path, vars_file: pathlib.Path,
                 extra_vars: dict) -> float:
    """Run one ansible-playbook process; return its wall-clock seconds, failing loudly."""
    command = [str(pathlib.Path(sys.executable).with_name("ansible-playbook")),
               "-i", str(inventory), "-e", f"@{vars_file}", str(playbook)]
    for name, value in extra_vars.items():
        command += ["-e", f"{name}={'true' if value is True else 'false' if value is False else value}"]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, env=ansible_environment(), check=False)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        tail = "\n".join((completed.stdout + completed.stderr).splitlines()[-40:])
        raise RuntimeError(f"{playbook.name} failed with exit code {completed.returncode}:\n{tail}")
    return elapsed


def registered_urls(server_url: str) -> dict[tuple[str, str], str]:
    """(webhook_tag, env) -> url of every registration, read page by page."""
    urls: dict[tuple[str, str], str] = {}
    cursor = None
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {ACCESS_KEY}"
    while True:
        params = {"product": PRODUCT, "access_tag": ACCESS_TAG, "limit": 250}
        if cursor:
            params["cursor"] = cursor
        answer = session.get(f"{server_url}/webhooks/v1/webhooks", params=params, timeout=30)
        answer.raise_for_status()
        envelope = answer.json()
        for webhook in envelope["data"]:
            for registration in webhook["config"]:
                urls[(webhook["tag"], registration["productEnv"])] = registration["url"]
        cursor = envelope.get("meta", {}).get("next_cursor")
        if not cursor:
            return urls


def expected_urls(workload: Workload, changed: bool) -> dict[tuple[str, str], str]:
    urls = {
        (tag, slug): workload.receiver_base_url(slug) + f"/hooks/{tag}"
        for tag in workload.webhook_tags
        for slug in workload.env_slugs
    }
    if changed:
        urls[(workload.changed_webhook, workload.changed_env)] = workload.changed_url()
    return urls


def verify_registrations(server_url: str, workload: Workload, changed: bool, contender: Contender) -> None:
    """A benchmark of a run that did not do the work would be worthless: check the end state."""
    actual = registered_urls(server_url)
    expected = expected_urls(workload, changed)
    if actual != expected:
        missing = sorted(set(expected) - set(actual))[:5]
        wrong = sorted(key for key in expected if key in actual and actual[key] != expected[key])[:5]
        raise RuntimeError(
            f"{contender.name}: registrations differ from workload W after the "
            f"{'change' if changed else 'converge'}: {len(actual)} present of {len(expected)}, "
            f"missing e.g. {missing}, wrong url e.g. {wrong}"
        )


def measure_contender(contender: Contender, workload: Workload, workdir: pathlib.Path) -> dict[str, Measurement]:
    workdir.mkdir(parents=True, exist_ok=True)
    inventory = write_yaml(workdir / "inventory.yml", workload.inventory())
    playbook = PLAYBOOKS / contender.playbook
    extra_vars = dict(contender.extra_vars)
    results: dict[str, Measurement] = {}
    with LocalServer(seed=workload.seed()) as server:
        if contender.uses_role:
            initial, changed = workload.role_vars(server.url), workload.role_vars_after_change(server.url)
        else:
            initial, changed = workload.uri_vars(server.url), workload.uri_vars_after_change(server.url)
        initial_vars = write_yaml(workdir / "vars.yml", initial)
        changed_vars = write_yaml(workdir / "vars-changed.yml", changed)

        for phase, vars_file in (("first", initial_vars), ("noop", initial_vars), ("change", changed_vars)):
            server.reset_stats()
            seconds = run_playbook(playbook, inventory, vars_file, extra_vars)
            stats = server.stats()
            results[phase] = Measurement(seconds, stats["reads"], stats["writes"])
            verify_registrations(server.url, workload, changed=phase == "change", contender=contender)
    return results


def median_measurements(runs: list[dict[str, Measurement]]) -> dict[str, Measurement]:
    """Median per phase over repeats; request counts are deterministic, so the median is exact."""
    return {
        phase: Measurement(
            statistics.median(run[phase].seconds for run in runs),
            int(statistics.median(run[phase].reads for run in runs)),
            int(statistics.median(run[phase].writes for run in runs)),
        )
        for phase in PHASES
    }


def measure(contenders: list[Contender], workload: Workload, workdir: pathlib.Path,
            repeat: int) -> dict[str, dict[str, Measurement]]:
    runs: dict[str, list[dict[str, Measurement]]] = {contender.name: [] for contender in contenders}
    for round_number in range(repeat):
        # Contenders alternate within each round so that a slow spell of the machine hits both.
        for contender in contenders:
            folder = workdir / f"{contender.name.replace(' ', '-').strip('()')}-{round_number}"
            runs[contender.name].append(measure_contender(contender, workload, folder))
            print(f"  round {round_number + 1}/{repeat} {contender.name}: "
                  + ", ".join(f"{phase} {runs[contender.name][-1][phase].seconds:.2f}s" for phase in PHASES),
                  file=sys.stderr, flush=True)
    return {name: median_measurements(contender_runs) for name, contender_runs in runs.items()}
