"""`make bench`: converge workload W with the role, the floor and a plain uri playbook at two sizes
and two round-trip times, then load the relay against its bare HTTP stack.

Prints one table per benchmark and every goal of issues 11 and 12 as met / MISS beside its figure,
each ratio taken between figures of this same run. `--smoke` runs everything at a tiny size and fails
only on what does not depend on the machine's speed (request counts, zero writes on a no-op, lost
events, the latency proxy really adding its delay), so that `make test` keeps the benchmark working
without timing anything.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import platform
import sys
import tempfile
import time

from ansible import release as ansible_release

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import converge  # noqa: E402
import latency_proxy  # noqa: E402
import relay  # noqa: E402
from workload import Workload  # noqa: E402

# A goal's kind says when it is judged: "count" always (also at smoke size: request counts, lost
# events, none of which depends on the machine's speed), "speed" only at full size (timings and
# ratios), "scale" only at full size (a request count that the issue sets for its workload size).
COUNT, SPEED, SCALE = "count", "speed", "scale"


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--webhooks", type=int, default=50, help="webhooks in the small workload (default 50)")
    parser.add_argument("--large-webhooks", type=int, default=500,
                        help="webhooks in the large workload (default 500; 0 leaves it out)")
    parser.add_argument("--envs", type=int, default=5, help="environments in both workloads (default 5)")
    parser.add_argument("--rtt", type=float, default=50.0,
                        help="round-trip time in ms of the distant cases, through the latency proxy (default 50)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the small cases; the median is shown")
    parser.add_argument("--repeat-large", type=int, default=2, help="rounds of the large cases at most")
    parser.add_argument("--large-budget", type=float, default=120.0,
                        help="seconds after which a large case starts no further round (default 120)")
    parser.add_argument("--no-module-path", action="store_true",
                        help="skip the role run that takes the modules' usual (non in-process) path")
    parser.add_argument("--skip-converge", action="store_true")
    parser.add_argument("--skip-relay", action="store_true")
    parser.add_argument("--relay-events", type=int, default=10000, help="events posted in the throughput run")
    parser.add_argument("--relay-connections", type=int, default=32, help="concurrent keep-alive connections")
    parser.add_argument("--relay-time-limit", type=float, default=60.0, help="seconds the loader may post for")
    parser.add_argument("--verify-events", type=int, default=1000,
                        help="events per leg and round in the verification run (plain, verified, verified+dedup)")
    parser.add_argument("--verify-rounds", type=int, default=8,
                        help="alternating rounds of the verification run (more rounds: less drift on a busy machine)")
    parser.add_argument("--sustain-seconds", type=float, default=30.0, help="length of the sustained run")
    parser.add_argument("--sustain-max-events", type=int, default=200_000,
                        help="events the sustained run posts at most")
    parser.add_argument("--drain-limit", type=float, default=45.0,
                        help="seconds to wait after the sustained run for the backlog to drain")
    parser.add_argument("--latency-rate", type=float, default=200.0, help="events per second in the latency run")
    parser.add_argument("--latency-events", type=int, default=3000, help="events per path in the latency run")
    parser.add_argument("--hang-events", type=int, default=1000,
                        help="events queued for the hanging receiver in the isolation run")
    parser.add_argument("--isolation-rate", type=float, default=50.0,
                        help="events per second to the healthy receiver in the isolation run")
    parser.add_argument("--isolation-events", type=int, default=500, help="events per phase to the healthy receiver")
    parser.add_argument("--isolation-settle", type=float, default=30.0,
                        help="seconds an isolation event may take before it counts as not delivered")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, and fail unless the count goals hold and no event is lost")
    parser.add_argument("--json", type=pathlib.Path, help="also write the figures to this file")
    arguments = parser.parse_args(argv)
    if arguments.smoke:
        arguments.webhooks, arguments.envs, arguments.large_webhooks = 2, 2, 0
        arguments.repeat = arguments.repeat_large = 1
        arguments.no_module_path = True
        arguments.relay_events, arguments.relay_connections = 200, 8
        arguments.verify_events, arguments.verify_rounds = 100, 1
        arguments.sustain_seconds, arguments.sustain_max_events, arguments.drain_limit = 2.0, 400, 30.0
        arguments.latency_events, arguments.latency_rate = 100, 100.0
        arguments.hang_events, arguments.isolation_events, arguments.isolation_rate = 16, 20, 20.0
        arguments.isolation_settle = 3.0
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


def load_average() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def ratio(numerator: float | None, denominator: float | None) -> float:
    if numerator is None or denominator is None or denominator <= 0:
        return float("nan")
    return numerator / denominator


def seconds_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


# --- converge -----------------------------------------------------------------------------------


def converge_cases(arguments: argparse.Namespace) -> dict[str, converge.Case]:
    small = Workload(webhooks=arguments.webhooks, envs=arguments.envs)
    role_rows = (converge.FLOOR, converge.ROLE) + (() if arguments.no_module_path else (converge.ROLE_MODULE_PATH,))
    if arguments.smoke:
        # Each contender once, the floor once: the smoke keeps the code working, it times nothing.
        return {
            "small_local": converge.Case(small, 0.0, role_rows, 1, bracket_floor=False),
            "small_distant": converge.Case(small, arguments.rtt, (converge.ROLE, converge.URI_FIRST), 1),
        }
    cases = {
        "small_local": converge.Case(small, 0.0, role_rows, arguments.repeat),
        "small_distant": converge.Case(small, arguments.rtt, (converge.FLOOR, converge.ROLE, converge.URI_NO_CHANGE),
                                       arguments.repeat),
    }
    if arguments.large_webhooks:
        large = Workload(webhooks=arguments.large_webhooks, envs=arguments.envs)
        for key, rtt in (("large_local", 0.0), ("large_distant", arguments.rtt)):
            cases[key] = converge.Case(large, rtt, (converge.FLOOR, converge.ROLE), arguments.repeat_large,
                                       budget_seconds=arguments.large_budget)
    return cases


def converge_table(results: dict[str, converge.CaseResult]) -> list[str]:
    lines = ["Converge: seconds of ansible-playbook (median of the rounds), (reads/writes) from /_local/stats",
             f"{'case':<18}{'contender':<20}{'runs':>6}" + "".join(f"{phase:>20}" for phase in converge.PHASES)
             + f"{'no-op/floor':>13}"]
    for result in results.values():
        floor = result.seconds("floor", converge.FLOOR_PHASE)
        for contender in result.case.contenders:
            rounds = len(result.rounds[contender.name])
            if contender is converge.FLOOR:
                cells = f"{seconds_text(floor):>20}" + " " * 40 + f"{'(one task, no API)':>13}"
            else:
                cells = ""
                for phase in converge.PHASES:
                    measurement = result.get(contender.name, phase)
                    cells += (f"{'-':>20}" if measurement is None else
                              f"{measurement.seconds:>10.2f}s ({measurement.reads:>3}/{measurement.writes:>3})")
                factor = ratio(result.seconds(contender.name, "noop"), floor)
                cells += f"{'-' if math.isnan(factor) else f'{factor:.1f}x':>13}"
            lines.append(f"{result.case.name:<18}{contender.name:<20}{rounds:>6}{cells}")
    for result in results.values():
        noop = result.get("role", "noop")
        if noop is not None:
            lines.append(f"  {result.case.name}: role no-op requests: {noop.requests} ({noop.route_text})")
    return lines


def growth_lines(results: dict[str, converge.CaseResult]) -> list[str]:
    def noop(key: str) -> float | None:
        return results[key].seconds("role", "noop") if key in results else None

    lines = ["How the role's no-op grows"]
    for rtt_key in ("local", "distant"):
        small, large = noop(f"small_{rtt_key}"), noop(f"large_{rtt_key}")
        if small is not None and large is not None:
            case_small, case_large = results[f"small_{rtt_key}"].case, results[f"large_{rtt_key}"].case
            lines.append(f"  {case_small.workload.webhooks} -> {case_large.workload.webhooks} webhooks at "
                         f"{case_small.rtt_ms:g} ms: {small:.2f}s -> {large:.2f}s (x{ratio(large, small):.2f}, "
                         f"+{(large - small) * 1000 / (case_large.workload.webhooks - case_small.workload.webhooks):.1f}"
                         " ms per added webhook)")
    for size_key in ("small", "large"):
        local, distant = noop(f"{size_key}_local"), noop(f"{size_key}_distant")
        if local is not None and distant is not None:
            case = results[f"{size_key}_distant"].case
            requests = results[f"{size_key}_distant"].get("role", "noop").requests
            lines.append(f"  0 -> {case.rtt_ms:g} ms RTT at {case.workload.webhooks} webhooks: {local:.2f}s -> "
                         f"{distant:.2f}s (x{ratio(distant, local):.2f}, +{distant - local:.2f}s = "
                         f"{(distant - local) * 1000 / case.rtt_ms:.1f} round trips, {requests} requests)")
    return lines


def converge_goals(results: dict[str, converge.CaseResult]) -> list[tuple[str, bool, str]]:
    goals: list[tuple[str, bool, str]] = []
    # The invariants of every case: what any correct engine does, whatever its read strategy.
    for result in results.values():
        case, webhooks = result.case, result.case.workload.webhooks
        role_noop, role_change = result.get("role", "noop"), result.get("role", "change")
        goals.append((f"{case.name}: role no-op sends zero writes ({role_noop.writes})", role_noop.writes == 0, COUNT))
        goals.append((f"{case.name}: role no-op reads at most once per webhook ({role_noop.reads} <= {webhooks})",
                      role_noop.reads <= webhooks, COUNT))
        goals.append((f"{case.name}: role change phase writes only the changed env ({role_change.writes} == 1)",
                      role_change.writes == 1, COUNT))
        uri_first = result.get("uri", "first")
        if uri_first is not None:
            goals.append((f"{case.name}: uri baseline writes once per webhook ({uri_first.writes} == {webhooks})",
                          uri_first.writes == webhooks, COUNT))

    # Issue 11's speed goals.
    if "small_local" in results:
        result = results["small_local"]
        factor = ratio(result.seconds("role", "noop"), result.seconds("floor", converge.FLOOR_PHASE))
        goals.append((f"issue 11: {result.case.name}: role no-op <= 1.5x the floor ({factor:.2f}x: "
                      f"{seconds_text(result.seconds('role', 'noop'))} vs "
                      f"{seconds_text(result.seconds('floor', converge.FLOOR_PHASE))})", factor <= 1.5, SPEED))
    if "large_distant" in results:
        result = results["large_distant"]
        webhooks = result.case.workload.webhooks
        noop, first = result.get("role", "noop"), result.seconds("role", "first")
        factor = ratio(noop.seconds, result.seconds("floor", converge.FLOOR_PHASE))
        pages = converge.listing_pages(webhooks)
        goals.append((f"issue 11: {result.case.name}: role no-op <= 3x the floor ({factor:.2f}x: "
                      f"{noop.seconds:.2f}s vs {seconds_text(result.seconds('floor', converge.FLOOR_PHASE))})",
                      factor <= 3.0, SPEED))
        goals.append((f"issue 11: {result.case.name}: role first converge <= 12 s ({seconds_text(first)})",
                      first is not None and first <= 12.0, SPEED))
        goals.append((f"issue 11: {result.case.name}: requests per no-op <= the pages of one listing "
                      f"(ceil({webhooks}/{converge.LISTING_PAGE}) = {pages}): {noop.requests}",
                      noop.requests <= pages, SCALE))
        goals.append((f"issue 11: {result.case.name}: zero writes per no-op ({noop.writes})", noop.writes == 0, COUNT))
    if "small_distant" in results:
        result = results["small_distant"]
        noop_x = ratio(result.seconds("uri", "noop"), result.seconds("role", "noop"))
        first_x = ratio(result.seconds("uri", "first"), result.seconds("role", "first"))
        goals.append((f"issue 11: {result.case.name}: role no-op >= 15x faster than uri ({noop_x:.1f}x: "
                      f"{seconds_text(result.seconds('role', 'noop'))} vs {seconds_text(result.seconds('uri', 'noop'))})",
                      noop_x >= 15, SPEED))
        goals.append((f"issue 11: {result.case.name}: role first converge >= 8x faster than uri ({first_x:.1f}x: "
                      f"{seconds_text(result.seconds('role', 'first'))} vs "
                      f"{seconds_text(result.seconds('uri', 'first'))})", first_x >= 8, SPEED))
    return goals


def converge_figures(results: dict[str, converge.CaseResult]) -> dict:
    return {
        key: {
            "case": result.case.name, "webhooks": result.case.workload.webhooks, "envs": result.case.workload.envs,
            "rtt_ms": result.case.rtt_ms,
            "median": {name: {phase: {**vars(m), "by_route": dict(m.by_route)} for phase, m in phases.items()}
                       for name, phases in result.medians.items()},
            "rounds_seconds": {name: [{phase: m.seconds for phase, m in run.items()} for run in runs]
                               for name, runs in result.rounds.items()},
        }
        for key, result in results.items()
    }


# --- relay --------------------------------------------------------------------------------------


def ms(value: float) -> str:
    return "never" if math.isinf(value) else f"{value:.2f}"


def relay_lines(bare: relay.BareStack, bare_fastapi: relay.BareStack, throughput: relay.Throughput,
                sustained: relay.Sustained, latency: relay.Latency, isolation: relay.Isolation) -> list[str]:
    return [
        f"Relay throughput: {throughput.events} events of {len(relay.event_body(0))} bytes over "
        f"{throughput.connections} keep-alive connections, the same loader for all three rows",
        f"  bare stack (uvicorn, ASGI app answering 202, nothing stored): {bare.accepted} in {bare.seconds:.2f}s = "
        f"{bare.per_second:,.0f} requests/s",
        f"  bare stack with one FastAPI route (shown, not judged): {bare_fastapi.per_second:,.0f} requests/s",
        f"  relay, accepted durably (202): {throughput.accepted} in {throughput.accept_seconds:.2f}s = "
        f"{throughput.accepted_per_second:,.0f} events/s = {100 * ratio(throughput.accepted_per_second, bare.per_second):.0f}%"
        f" of the bare stack; rejected {throughput.rejected}"
        + (f" (by status: {throughput.rejections})" if throughput.rejections else ""),
        f"  delivered to the receiver: {throughput.delivered} of {throughput.accepted} "
        f"in {throughput.deliver_seconds:.2f}s = {throughput.delivered_per_second:,.0f} events/s",
        f"Relay sustained: {sustained.seconds:.1f}s of closed-loop load over {sustained.connections} connections",
        f"  accepted {sustained.accepted} = {sustained.accepted_per_second:,.0f} events/s; delivered within the window "
        f"{sustained.delivered_in_window} = {sustained.delivered_per_second:,.0f} events/s = "
        f"{sustained.delivered_percent:.0f}% of accepted",
        f"  backlog (accepted, not yet delivered): at 1/3 {sustained.backlog_at(1 / 3)}, at 1/2 "
        f"{sustained.backlog_at(0.5)}, at 2/3 {sustained.backlog_at(2 / 3)}, at the end {sustained.backlog_end}; "
        + (f"drained {sustained.seconds + sustained.drain_seconds:.1f}s after the start" if not sustained.undelivered
           else f"{sustained.undelivered} still undelivered {sustained.drain_seconds:.0f}s after the window"),
        f"Relay latency at {latency.rate:.0f} events/s, {latency.events} events per path (ms from due time "
        "to arrival at the receiver)",
        f"{'':<10}{'p50':>10}{'p99':>10}{'max':>10}",
        *(f"{which:<10}{latency.figure(which, 0.5):>10.2f}{latency.figure(which, 0.99):>10.2f}"
          f"{latency.figure(which, 1.0):>10.2f}" for which in ("direct", "relay")),
        f"{'added':<10}{latency.added(0.5):>10.2f}{latency.added(0.99):>10.2f}",
        f"  lost or failed: {latency.lost}",
        f"Relay isolation: a healthy receiver at {isolation.rate:.0f} events/s, {isolation.events} events, alone and "
        f"while another product's receiver hangs with {isolation.hang_accepted} events queued "
        f"(it held up to {isolation.held_connections} requests open); ms from due time to arrival",
        f"{'':<10}{'p50':>10}{'p99':>10}{'max':>10}{'late':>8}",
        f"{'alone':<10}{ms(isolation.alone(0.5)):>10}{ms(isolation.alone(0.99)):>10}{ms(isolation.alone(1.0)):>10}"
        f"{isolation.alone_missing:>8}",
        f"{'hang':<10}{ms(isolation.with_hang(0.5)):>10}{ms(isolation.with_hang(0.99)):>10}"
        f"{ms(isolation.with_hang(1.0)):>10}{isolation.with_hang_missing:>8}",
        f"  late = not delivered within {isolation.settle:.0f}s (counted as never in the percentiles)",
    ]


def relay_goals(bare: relay.BareStack, throughput: relay.Throughput, sustained: relay.Sustained,
                latency: relay.Latency, isolation: relay.Isolation, smoke: bool) -> list[tuple[str, bool, str]]:
    accepted_percent = 100 * ratio(throughput.accepted_per_second, bare.per_second)
    p99_ratio = isolation.p99_ratio
    return [
        ("every accepted event reached the receiver (throughput run)",
         throughput.accepted > 0 and throughput.delivered == throughput.accepted, COUNT),
        ("no event rejected or lost (throughput, sustained and latency runs)",
         throughput.rejected == 0 and sustained.rejected == 0 and latency.lost == 0, COUNT),
        (f"every event accepted in the sustained run was delivered by the end of the drain "
         f"({sustained.undelivered} undelivered)", sustained.accepted > 0 and sustained.undelivered == 0,
         # At full size the backlog may outlast the bounded drain on a slow machine; at smoke size it may not.
         COUNT if smoke else SPEED),
        (f"the isolation run's events were all accepted ({isolation.hang_accepted} of {isolation.hang_events} "
         f"for the hanging receiver)", isolation.hang_accepted == isolation.hang_events, COUNT),
        (f"issue 12: accepted durably >= 60% of the bare stack ({accepted_percent:.0f}%: "
         f"{throughput.accepted_per_second:,.0f} vs {bare.per_second:,.0f} /s)", accepted_percent >= 60, SPEED),
        (f"issue 12: delivered >= 90% of the accepted rate over {sustained.seconds:.0f}s "
         f"({sustained.delivered_percent:.0f}%: {sustained.delivered_per_second:,.0f} of "
         f"{sustained.accepted_per_second:,.0f} /s)", sustained.delivered_percent >= 90, SPEED),
        (f"issue 12: the backlog does not grow over the sustained run's second half by more than one second "
         f"of accepted events ({sustained.backlog_at(0.5)} -> {sustained.backlog_end})", sustained.backlog_bounded,
         SPEED),
        (f"issue 12: relay adds < 5 ms at p99 at {latency.rate:.0f} events/s ({latency.added(0.99):.2f} ms)",
         latency.added(0.99) < 5, SPEED),
        (f"issue 12: a healthy receiver's p99 while another hangs with {isolation.hang_accepted} queued is within "
         f"2x of its p99 alone ({ms(isolation.with_hang(0.99))} vs {ms(isolation.alone(0.99))} ms"
         + ("" if math.isinf(p99_ratio) else f": {p99_ratio:.2f}x") + ")",
         p99_ratio <= 2.0, SPEED),
    ]


VERIFICATION_LEGS = (("plain", "no verification"), ("verified", "Stripe signature verified"),
                     ("verified_dedup", "verified + dedup by the body's id"))


def verification_lines(verification: relay.Verification) -> list[str]:
    lines = [f"Relay verification: {verification.events} events of {len(relay.event_body(0))} bytes per leg, "
             f"{verification.rounds} alternating round(s), {verification.connections} connections, one server"]
    for leg, label in VERIFICATION_LEGS:
        accepted, seconds = verification.legs[leg]
        line = f"  {label + ':':<38} {accepted} in {seconds:.2f}s = {verification.per_second(leg):,.0f} events/s"
        if leg != "plain":
            line += (f" = {verification.percent_of_plain(leg):.0f}% of no verification "
                     f"({verification.added_us(leg):+.0f} us per event)")
        lines.append(line)
    cost = relay.verify_cpu_us()
    lines.append(f"  CPU per check, in process (median of 5 x 2,000 calls): Stripe {cost['stripe']:.1f} us, "
                 f"GitHub {cost['github']:.1f} us, Paystack {cost['paystack']:.1f} us, dedup id from JSON "
                 f"{cost['dedup_json']:.1f} us; dedup in the group commit {cost['dedup_commit']:+.1f} us per event")
    return lines


def verification_goals(verification: relay.Verification) -> list[tuple[str, bool, str]]:
    expected = verification.events * verification.rounds * len(verification.legs)  # warm-up not counted
    return [(f"every signed event of the verification run was accepted and delivered ({verification.accepted} of "
             f"{expected}; refused: {verification.rejections or 0})",
             verification.accepted == expected and not verification.rejections and verification.undelivered == 0,
             COUNT)]


def relay_figures(bare, bare_fastapi, throughput, sustained, latency, isolation) -> dict:
    return {
        "bare_stack": {**vars(bare), "per_second": bare.per_second},
        "bare_stack_fastapi": {**vars(bare_fastapi), "per_second": bare_fastapi.per_second},
        "throughput": {**vars(throughput), "accepted_per_second": throughput.accepted_per_second,
                       "delivered_per_second": throughput.delivered_per_second},
        "sustained": {"seconds": sustained.seconds, "accepted": sustained.accepted,
                      "accepted_per_second": sustained.accepted_per_second,
                      "delivered_per_second": sustained.delivered_per_second,
                      "delivered_percent": sustained.delivered_percent, "backlog_end": sustained.backlog_end,
                      "undelivered": sustained.undelivered, "samples": sustained.samples},
        "latency": {"rate": latency.rate, "events": latency.events, "lost": latency.lost,
                    **{f"{which}_{name}_ms": latency.figure(which, fraction)
                       for which in ("direct", "relay") for name, fraction in (("p50", .5), ("p99", .99))}},
        "isolation": {"rate": isolation.rate, "events": isolation.events, "hang_accepted": isolation.hang_accepted,
                      "alone_p99_ms": isolation.alone(0.99), "with_hang_p99_ms": isolation.with_hang(0.99),
                      "alone_missing": isolation.alone_missing, "with_hang_missing": isolation.with_hang_missing,
                      "held_connections": isolation.held_connections},
    }


def main(argv: list[str]) -> int:
    arguments = parse_arguments(argv)
    started = time.perf_counter()
    figures: dict = {"machine": machine(), "load_average": {"start": load_average()}}
    goals: list[tuple[str, bool, str]] = []
    print("Machine: " + ", ".join(f"{key} {value}" for key, value in figures["machine"].items()))
    print(f"Load average at the start: {figures['load_average']['start']}")

    checks = latency_proxy.smoke(arguments.rtt)
    goals += [(f"latency proxy: {text}", passed, COUNT) for text, passed in checks]

    if not arguments.skip_converge:
        results: dict[str, converge.CaseResult] = {}
        with tempfile.TemporaryDirectory(prefix="ductape-bench-") as workdir:
            for key, case in converge_cases(arguments).items():
                results[key] = converge.measure_case(case, pathlib.Path(workdir))
        figures["load_average"]["after_converge"] = load_average()
        print()
        print("\n".join(converge_table(results)))
        print()
        print("\n".join(growth_lines(results)))
        goals += converge_goals(results)
        figures["converge"] = converge_figures(results)

    if not arguments.skip_relay:
        bare = relay.measure_bare_stack("asgi", arguments.relay_events, arguments.relay_connections,
                                        arguments.relay_time_limit)
        bare_fastapi = relay.measure_bare_stack("fastapi", arguments.relay_events, arguments.relay_connections,
                                                arguments.relay_time_limit)
        throughput = relay.measure_throughput(arguments.relay_events, arguments.relay_connections,
                                              arguments.relay_time_limit, delivery_wait=120.0)
        verification = relay.measure_verification(arguments.verify_events, arguments.verify_rounds,
                                                  arguments.relay_connections, arguments.relay_time_limit)
        sustained = relay.measure_sustained(arguments.sustain_seconds, arguments.relay_connections,
                                            arguments.drain_limit, arguments.sustain_max_events)
        latency = relay.measure_latency(arguments.latency_rate, arguments.latency_events,
                                        connections=16, settle=30.0)
        isolation = relay.measure_isolation(arguments.isolation_rate, arguments.isolation_events,
                                            arguments.hang_events, connections=16, settle=arguments.isolation_settle)
        figures["load_average"]["after_relay"] = load_average()
        print()
        print("\n".join(relay_lines(bare, bare_fastapi, throughput, sustained, latency, isolation)))
        print("\n".join(verification_lines(verification)))
        goals += relay_goals(bare, throughput, sustained, latency, isolation, arguments.smoke)
        goals += verification_goals(verification)
        figures["relay"] = relay_figures(bare, bare_fastapi, throughput, sustained, latency, isolation)
        figures["relay"]["verification"] = {
            **vars(verification), **{f"{leg}_per_second": verification.per_second(leg) for leg in verification.legs}}

    print()
    print(f"Load average at the end: {load_average()}; {time.perf_counter() - started:.0f}s in all")
    print("Goals" + (" (at smoke size only the count goals are judged)" if arguments.smoke else ""))
    for goal, met, kind in goals:
        judged = kind == COUNT or not arguments.smoke
        print(f"  [{'met ' if met else 'MISS' if judged else ' -- '}] {goal}")
    figures["goals"] = [{"goal": goal, "met": met, "kind": kind} for goal, met, kind in goals]
    if arguments.json:
        arguments.json.write_text(json.dumps(figures, indent=2, default=str) + "\n", encoding="utf-8")
    import plot  # the scale and RTT curves as a picture (benchmarks/curves.svg)
    print(plot.write_curves(figures, smoke=arguments.smoke))
    if arguments.smoke and any(kind == COUNT and not met for _, met, kind in goals):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
