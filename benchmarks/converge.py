"""Converge workload W with each contender and measure wall clock and requests per phase.

Phases, each started from a zeroed request counter:
  first   - the first converge, on a fresh ductape-local --test-mode database;
  noop    - the same run again, nothing to change;
  change  - one env of one webhook moved to a new receiver URL.
Every contender gets its own fresh server, so no contender sees another one's registrations. A case
is one workload size at one round-trip time: with an RTT, the playbooks reach the API through a
latency proxy (latency_proxy.py); the harness's own reads (stats, the check of the end state) do not.
The floor (one do-nothing task on the same inventory and variables) runs at the start and at the end of
every round of every case.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import pathlib
import statistics
import subprocess
import sys
import time

import requests
from ductape_local.testing import LocalServer

from latency_proxy import LatencyProxy
from workload import ACCESS_KEY, ACCESS_TAG, PRODUCT, Workload, write_yaml

PLAYBOOKS = pathlib.Path(__file__).resolve().parent / "playbooks"
REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
PHASES = ("first", "noop", "change")
FLOOR_PHASE = "run"
# The most webhooks one page of `GET /webhooks/v1/webhooks` holds (the contract's largest `limit`).
LISTING_PAGE = 250
# A proxy stops by itself after this long, whatever happens to the harness.
PROXY_LIFETIME = 1800.0


@dataclasses.dataclass(frozen=True)
class Contender:
    name: str
    playbook: str
    uses_role: bool
    extra_vars: tuple[tuple[str, object], ...] = ()
    phases: tuple[str, ...] = PHASES
    needs_server: bool = True
    # Takes part in the first `max_rounds` rounds of a case only (None: in every round).
    max_rounds: int | None = None


URI = Contender("uri", "uri_register.yml", uses_role=False)
# The slowest contender by far (a new Python per webhook, each with a new connection): two rounds, and
# no change phase, which costs it what its no-op does (it sends everything every run).
URI_NO_CHANGE = Contender("uri", "uri_register.yml", uses_role=False, phases=("first", "noop"), max_rounds=2)
# The smoke's uri: the first converge shows that it writes once per webhook, which is all it checks.
URI_FIRST = Contender("uri", "uri_register.yml", uses_role=False, phases=("first",))
ROLE = Contender("role", "role_register.yml", uses_role=True)
# The role with the action plugins told to run the modules the usual way (AnsiballZ in a child
# Python per task): shows what the in-process execution is worth on its own. Where the controller
# path is gone, the variable is ignored and both rows measure the same thing.
ROLE_MODULE_PATH = Contender(
    "role (module path)", "role_register.yml", uses_role=True,
    extra_vars=(("ductape_run_on_controller", False),),
)
FLOOR = Contender("floor", "floor.yml", uses_role=True, phases=(FLOOR_PHASE,), needs_server=False)


@dataclasses.dataclass(frozen=True)
class Case:
    """One workload size at one round-trip time, with the contenders that run in it."""
    workload: Workload
    rtt_ms: float
    contenders: tuple[Contender, ...]
    rounds: int
    # A round after the first starts only while the case has taken less than this many seconds.
    budget_seconds: float | None = None
    # Run the floor again at the end of each round (when it is one of the contenders).
    bracket_floor: bool = True

    @property
    def name(self) -> str:
        return f"{self.workload.webhooks}x{self.workload.envs} @ {self.rtt_ms:g} ms"


@dataclasses.dataclass(frozen=True)
class Measurement:
    seconds: float
    reads: int
    writes: int
    requests: int = 0
    by_route: tuple[tuple[str, int], ...] = ()

    @property
    def route_text(self) -> str:
        return ", ".join(f"{route} {count}" for route, count in self.by_route) or "none"


@dataclasses.dataclass(frozen=True)
class CaseResult:
    case: Case
    medians: dict[str, dict[str, Measurement]]
    rounds: dict[str, list[dict[str, Measurement]]]

    def get(self, contender: str, phase: str) -> Measurement | None:
        return self.medians.get(contender, {}).get(phase)

    def seconds(self, contender: str, phase: str) -> float | None:
        measurement = self.get(contender, phase)
        return measurement.seconds if measurement else None


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


def measure_floor(contender: Contender, workload: Workload, workdir: pathlib.Path) -> dict[str, Measurement]:
    """The floor needs no server: its variables name an API that nothing calls."""
    workdir.mkdir(parents=True, exist_ok=True)
    inventory = write_yaml(workdir / "inventory.yml", workload.inventory())
    variables = write_yaml(workdir / "vars.yml", workload.role_vars("http://127.0.0.1:9"))
    seconds = run_playbook(PLAYBOOKS / contender.playbook, inventory, variables, dict(contender.extra_vars))
    return {FLOOR_PHASE: Measurement(seconds, 0, 0)}


def measure_contender(contender: Contender, workload: Workload, workdir: pathlib.Path,
                      rtt_ms: float = 0.0) -> dict[str, Measurement]:
    if not contender.needs_server:
        return measure_floor(contender, workload, workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    inventory = write_yaml(workdir / "inventory.yml", workload.inventory())
    playbook = PLAYBOOKS / contender.playbook
    extra_vars = dict(contender.extra_vars)
    results: dict[str, Measurement] = {}
    with LocalServer(seed=workload.seed()) as server, contextlib.ExitStack() as stack:
        api_url = server.url
        if rtt_ms > 0:
            proxy = stack.enter_context(LatencyProxy("127.0.0.1", server.port, rtt_ms, lifetime=PROXY_LIFETIME))
            api_url = proxy.url
        if contender.uses_role:
            initial, changed = workload.role_vars(api_url), workload.role_vars_after_change(api_url)
        else:
            initial, changed = workload.uri_vars(api_url), workload.uri_vars_after_change(api_url)
        initial_vars = write_yaml(workdir / "vars.yml", initial)
        changed_vars = write_yaml(workdir / "vars-changed.yml", changed)

        for phase, vars_file in (("first", initial_vars), ("noop", initial_vars), ("change", changed_vars)):
            if phase not in contender.phases:
                continue
            server.reset_stats()
            seconds = run_playbook(playbook, inventory, vars_file, extra_vars)
            stats = server.stats()
            by_route = tuple(sorted((route, count) for route, count in stats["requests"].items() if count))
            results[phase] = Measurement(seconds, stats["reads"], stats["writes"],
                                         sum(count for _, count in by_route), by_route)
            verify_registrations(server.url, workload, changed=phase == "change", contender=contender)
    return results


def median_measurements(runs: list[dict[str, Measurement]]) -> dict[str, Measurement]:
    """Median seconds per phase over rounds; the request counts of a phase are the same in every round
    (the first round's are kept)."""
    return {
        phase: dataclasses.replace(runs[0][phase], seconds=statistics.median(run[phase].seconds for run in runs))
        for phase in runs[0]
    }


def measure_case(case: Case, workdir: pathlib.Path) -> CaseResult:
    runs: dict[str, list[dict[str, Measurement]]] = {contender.name: [] for contender in case.contenders}
    started = time.perf_counter()
    for round_number in range(case.rounds):
        if round_number and case.budget_seconds is not None and time.perf_counter() - started > case.budget_seconds:
            print(f"  {case.name}: {round_number} round(s) only, the case's budget of "
                  f"{case.budget_seconds:.0f}s is spent", file=sys.stderr, flush=True)
            break
        # Contenders alternate within each round so that a slow spell of the machine hits all of them;
        # the floor (first in a case's contenders) runs again at the end of the round, so that its
        # median brackets the others' load.
        order = case.contenders + ((FLOOR,) if FLOOR in case.contenders and case.bracket_floor else ())
        for contender in order:
            if contender.max_rounds is not None and round_number >= contender.max_rounds:
                continue
            slug = contender.name.replace(" ", "-").replace("(", "").replace(")", "")
            folder = workdir / f"{case.workload.webhooks}x{case.workload.envs}-{case.rtt_ms:g}ms-{slug}-{round_number}"
            runs[contender.name].append(measure_contender(contender, case.workload, folder, case.rtt_ms))
            print(f"  {case.name} round {round_number + 1}/{case.rounds} {contender.name}: "
                  + ", ".join(f"{phase} {measurement.seconds:.2f}s"
                              for phase, measurement in runs[contender.name][-1].items()),
                  file=sys.stderr, flush=True)
    return CaseResult(case, {name: median_measurements(rounds) for name, rounds in runs.items()}, runs)


def listing_pages(webhooks: int, apps: int = 1) -> int:
    """Requests that reading every webhook of `apps` apps takes with the paged listing."""
    return apps * max(1, math.ceil(webhooks / LISTING_PAGE))
