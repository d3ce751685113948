"""`make bench`: converge workload W with the role and with a plain uri playbook, then load the relay.

Prints one table per benchmark and whether each goal of issue 6 is met. `--smoke` runs everything
at a tiny size and fails on what does not depend on the machine's speed (request counts, lost
events), so that `make test` keeps the benchmark working without timing anything.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import os
import platform
import sys
import tempfile

from ansible import release as ansible_release

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import converge  # noqa: E402
import relay  # noqa: E402
from workload import Workload  # noqa: E402


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--webhooks", type=int, default=50, help="webhooks in workload W (default 50)")
    parser.add_argument("--envs", type=int, default=5, help="environments in workload W (default 5)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the converge benchmark; the median is shown")
    parser.add_argument("--no-module-path", action="store_true",
                        help="skip the role run that takes the modules' usual (non in-process) path")
    parser.add_argument("--skip-converge", action="store_true")
    parser.add_argument("--skip-relay", action="store_true")
    parser.add_argument("--relay-events", type=int, default=10000, help="events posted in the throughput run")
    parser.add_argument("--relay-connections", type=int, default=32, help="concurrent keep-alive connections")
    parser.add_argument("--relay-time-limit", type=float, default=60.0, help="seconds the loader may post for")
    parser.add_argument("--latency-rate", type=float, default=200.0, help="events per second in the latency run")
    parser.add_argument("--latency-events", type=int, default=3000, help="events per path in the latency run")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, and fail unless the request-count goals hold and no event is lost")
    parser.add_argument("--json", type=pathlib.Path, help="also write the figures to this file")
    arguments = parser.parse_args(argv)
    if arguments.smoke:
        arguments.webhooks, arguments.envs, arguments.repeat = 2, 2, 1
        arguments.relay_events, arguments.relay_connections = 200, 8
        arguments.latency_events, arguments.latency_rate = 100, 100.0
    return arguments


def machine() -> dict:
    memory_kib = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal:"))
    return {
        "cpus": len(os.sched_getaffinity(0)),
        "cpu_model": next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                           if line.startswith("model name")), platform.processor()),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "ansible_core": ansible_release.__version__,
        "kernel": platform.release(),
    }


def ratio(baseline: float, candidate: float) -> str:
    return f"{baseline / candidate:.1f}x" if candidate > 0 else "-"


def converge_table(results: dict, workload: Workload) -> list[str]:
    names = list(results)
    header = f"{'phase':<8}" + "".join(f"{name:>22}" for name in names) + "".join(
        f"  {'uri / ' + name:>24}" for name in names if name != "uri")
    lines = [f"Workload W: {workload.webhooks} webhooks x {workload.envs} envs = {workload.registrations} "
             "registrations; seconds (reads/writes)", header]
    for phase in converge.PHASES:
        cells = "".join(
            f"{results[name][phase].seconds:>10.2f}s ({results[name][phase].reads:>3}/{results[name][phase].writes:>3})"
            for name in names)
        ratios = "".join(f"  {ratio(results['uri'][phase].seconds, results[name][phase].seconds):>24}"
                         for name in names if name != "uri")
        lines.append(f"{phase:<8}{cells}{ratios}")
    return lines


def converge_goals(results: dict, workload: Workload) -> list[tuple[str, bool, bool]]:
    """(goal, met, depends only on counts) for the role."""
    role, uri = results["role"], results["uri"]
    return [
        ("role no-op re-run sends zero writes", role["noop"].writes == 0, True),
        (f"role no-op re-run reads at most once per webhook ({role['noop'].reads} <= {workload.webhooks})",
         role["noop"].reads <= workload.webhooks, True),
        (f"uri baseline writes once per webhook ({uri['first'].writes} == {workload.webhooks})",
         uri["first"].writes == workload.webhooks, True),
        (f"role change phase writes only the changed webhook ({role['change'].writes} == 1)",
         role["change"].writes == 1, True),
        (f"role no-op re-run >= 10x faster than uri's run ({ratio(uri['noop'].seconds, role['noop'].seconds)})",
         uri["noop"].seconds >= 10 * role["noop"].seconds, False),
        (f"role first converge >= 5x faster than uri's ({ratio(uri['first'].seconds, role['first'].seconds)})",
         uri["first"].seconds >= 5 * role["first"].seconds, False),
    ]


def relay_lines(throughput: relay.Throughput, latency: relay.Latency) -> list[str]:
    return [
        f"Relay throughput: {throughput.events} events over {throughput.connections} keep-alive connections",
        f"  accepted durably (202): {throughput.accepted} in {throughput.accept_seconds:.2f}s = "
        f"{throughput.accepted_per_second:,.0f} events/s; rejected {throughput.rejected}"
        + (f" (by status: {throughput.rejections})" if throughput.rejections else ""),
        f"  delivered to the receiver: {throughput.delivered} of {throughput.accepted} "
        f"in {throughput.deliver_seconds:.2f}s = {throughput.delivered_per_second:,.0f} events/s",
        f"Relay latency at {latency.rate:.0f} events/s, {latency.events} events per path (ms from due time "
        "to arrival at the receiver)",
        f"{'':<10}{'p50':>10}{'p99':>10}{'max':>10}",
        *(f"{which:<10}{latency.figure(which, 0.5):>10.2f}{latency.figure(which, 0.99):>10.2f}"
          f"{latency.figure(which, 1.0):>10.2f}" for which in ("direct", "relay")),
        f"{'added':<10}{latency.added(0.5):>10.2f}{latency.added(0.99):>10.2f}",
        f"  lost or failed: {latency.lost}",
    ]


def relay_goals(throughput: relay.Throughput, latency: relay.Latency) -> list[tuple[str, bool, bool]]:
    return [
        ("every accepted event reached the receiver",
         throughput.accepted > 0 and throughput.delivered == throughput.accepted, True),
        ("no event rejected or lost", throughput.rejected == 0 and latency.lost == 0, True),
        (f"relay accepts >= 1,000 events/s durably ({throughput.accepted_per_second:,.0f})",
         throughput.accepted_per_second >= 1000, False),
        (f"relay adds < 10 ms at p99 at {latency.rate:.0f} events/s ({latency.added(0.99):.2f} ms)",
         latency.added(0.99) < 10, False),
    ]


def main(argv: list[str]) -> int:
    arguments = parse_arguments(argv)
    figures: dict = {"machine": machine()}
    goals: list[tuple[str, bool, bool]] = []
    print("Machine: " + ", ".join(f"{key} {value}" for key, value in figures["machine"].items()))

    if not arguments.skip_converge:
        workload = Workload(webhooks=arguments.webhooks, envs=arguments.envs)
        contenders = [converge.URI, converge.ROLE]
        if not arguments.no_module_path:
            contenders.append(converge.ROLE_MODULE_PATH)
        with tempfile.TemporaryDirectory(prefix="ductape-bench-") as workdir:
            results = converge.measure(contenders, workload, pathlib.Path(workdir), arguments.repeat)
        print()
        print("\n".join(converge_table(results, workload)))
        goals += converge_goals(results, workload)
        figures["converge"] = {name: {phase: vars(m) for phase, m in phases.items()} for name, phases in results.items()}

    if not arguments.skip_relay:
        throughput = relay.measure_throughput(arguments.relay_events, arguments.relay_connections,
                                              arguments.relay_time_limit, delivery_wait=120.0)
        latency = relay.measure_latency(arguments.latency_rate, arguments.latency_events,
                                        connections=16, settle=30.0)
        print()
        print("\n".join(relay_lines(throughput, latency)))
        goals += relay_goals(throughput, latency)
        figures["relay"] = {
            "throughput": {**vars(throughput), "accepted_per_second": throughput.accepted_per_second,
                           "delivered_per_second": throughput.delivered_per_second},
            "latency": {"rate": latency.rate, "events": latency.events, "lost": latency.lost,
                        **{f"{which}_{name}_ms": latency.figure(which, fraction)
                           for which in ("direct", "relay") for name, fraction in (("p50", .5), ("p99", .99))}},
        }

    print()
    print("Goals" + (" (timing goals are not judged at smoke size)" if arguments.smoke else ""))
    for goal, met, counts_only in goals:
        judged = counts_only or not arguments.smoke
        print(f"  [{'met ' if met else 'MISS' if judged else ' -- '}] {goal}")
    figures["goals"] = [{"goal": goal, "met": met} for goal, met, _ in goals]
    if arguments.json:
        arguments.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    if arguments.smoke and any(counts_only and not met for _, met, counts_only in goals):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
