"""The relay benchmark: events accepted durably per second against the bare HTTP stack, delivery
keeping up, the latency the relay adds, and one tenant's hanging receiver against another's.

Everything runs on loopback and is bounded in count and in time:
  bare stack - the same loader, connections and bodies against uvicorn answering 202 with nothing
               behind it (bare_stack.py): the ceiling of the accept rate, measured in the same run;
  throughput - a closed-loop loader with a fixed number of keep-alive connections posts N events to
               one wrapped link; a 202 answer means the event was committed before it was
               acknowledged (the ingress contract). The local receiver must then see every one.
  sustained  - the same loader for a fixed time; delivered/accepted over that window, the backlog
               (accepted, not yet at the receiver) sampled every second, then a bounded drain;
  latency    - an open-loop loader sends events on a fixed schedule (e.g. 200/s) once straight to the
               receiver and once through the relay; latency is the time from the moment an event is
               due to its first arrival at the receiver, in the same process and clock.
  isolation  - the latency of a healthy receiver (one product) alone, then while another product's
               receiver holds every request open without answering, with N events queued for it.
  verification - the throughput loader against three links of one server, in alternating rounds:
               a webhook without checks, one verifying Stripe signatures (computed by the loader
               beforehand), and one verifying them and deduplicating by the body's id; accepted
               events/s of each, side by side, so the ratio is what verification costs per event.
The server runs as deployed, without --test-mode, with its default delivery options: the relay
needs no request counters.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import pathlib
import socket
import subprocess
import sys
import tempfile
import time

import requests
from ductape_local.testing import LocalServer, free_port

from loopback_http import ConnectionPool, HangingReceiver, Receiver

PRODUCT = "relay-product"
ACCESS_TAG = "relay-provider"
APP = "relay-app"
ENV = "prd"
WEBHOOK = "payment_succeeded"
# Not a real secret: ductape-local in test mode only knows the keys its seed declares.
ACCESS_KEY = "dtl_relay_bench_key"
EVENT_HEADER = "X-Bench-Id"


# The isolation run's other tenant: another product, whose receiver hangs.
OTHER_PRODUCT = "relay-other-product"
BARE_STACK = pathlib.Path(__file__).resolve().parent / "bare_stack.py"
BARE_STACK_PATH = "/webhooks/v1/process/00000000-0000-4000-8000-000000000000"


VERIFIED_WEBHOOK = "verified"
DEDUP_WEBHOOK = "verified_dedup"
STRIPE_HEADER = "Stripe-Signature"
# Not a real secret: the verification run's own Stripe-style signing secret.
SIGNING_SECRET = "whsec_relay_bench_signing_secret"


def relay_seed(secret_file: str | None = None) -> dict:
    webhooks = [{"tag": WEBHOOK, "name": "Payment succeeded"}]
    if secret_file is not None:
        verify = {"strategy": "stripe", "secret_file": secret_file}
        webhooks += [{"tag": VERIFIED_WEBHOOK, "verify": verify},
                     {"tag": DEDUP_WEBHOOK, "verify": verify, "dedup": {"json_path": "id"}}]
    return {
        "access_keys": [{"key": ACCESS_KEY, "products": [PRODUCT, OTHER_PRODUCT]}],
        "products": [
            {"tag": product, "envs": [ENV],
             "connections": [{"access_tag": ACCESS_TAG, "app": APP, "envs": {ENV: "live"}}]}
            for product in (PRODUCT, OTHER_PRODUCT)
        ],
        "apps": [{"tag": APP, "webhooks": webhooks}],
    }


def register_receiver(server_url: str, receiver_url: str, product: str = PRODUCT, webhook: str = WEBHOOK) -> str:
    """Register the receiver as the webhook's target; return the ingress path of its wrapped link."""
    answer = requests.post(
        f"{server_url}/webhooks/v1/register",
        headers={"Authorization": f"Bearer {ACCESS_KEY}"},
        json={"product": product, "access_tag": ACCESS_TAG, "webhook_tag": webhook,
              "envs": [{"slug": ENV, "url": receiver_url, "method": "POST"}]},
        timeout=30,
    )
    answer.raise_for_status()
    link = answer.json()["data"]["envs"][0]["link"]
    return "/webhooks/v1/process/" + link.rstrip("/").rsplit("/", 1)[1]


def event_body(number: int) -> bytes:
    # The size of a typical provider event (a Stripe payment_intent is 1-3 KiB).
    return json.dumps({
        "id": f"evt_{number:08d}", "type": "payment_intent.succeeded",
        "data": {"object": {"id": f"pi_{number:08d}", "amount": 4200, "currency": "eur",
                            "metadata": {"order": f"order-{number}", "padding": "x" * 1200}}},
    }).encode()


@dataclasses.dataclass(frozen=True)
class Throughput:
    events: int
    accepted: int
    rejected: int
    accept_seconds: float
    delivered: int
    deliver_seconds: float
    connections: int
    rejections: dict[int, int]

    @property
    def accepted_per_second(self) -> float:
        return self.accepted / self.accept_seconds if self.accept_seconds else 0.0

    @property
    def delivered_per_second(self) -> float:
        return self.delivered / self.deliver_seconds if self.deliver_seconds else 0.0


def percentile(samples: list[float], fraction: float, missing: int = 0) -> float:
    """Nearest-rank percentile; `missing` samples (never arrived) count as infinitely late."""
    ordered = sorted(samples) + [float("inf")] * missing
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


@dataclasses.dataclass(frozen=True)
class BareStack:
    app: str
    events: int
    accepted: int
    seconds: float
    connections: int

    @property
    def per_second(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0


@dataclasses.dataclass(frozen=True)
class Sustained:
    seconds: float
    connections: int
    accepted: int
    rejected: int
    delivered_in_window: int
    delivered_total: int
    drain_seconds: float
    # (seconds since the start, accepted so far, delivered so far), about once a second
    samples: tuple[tuple[float, int, int], ...]

    @property
    def accepted_per_second(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    @property
    def delivered_per_second(self) -> float:
        return self.delivered_in_window / self.seconds if self.seconds else 0.0

    @property
    def delivered_percent(self) -> float:
        return 100.0 * self.delivered_in_window / self.accepted if self.accepted else 0.0

    def backlog_at(self, fraction: float) -> int:
        """Accepted but not yet delivered at that fraction of the window (the nearest sample)."""
        if not self.samples:
            return 0
        target = fraction * self.seconds
        moment, accepted, delivered = min(self.samples, key=lambda sample: abs(sample[0] - target))
        return accepted - delivered

    @property
    def backlog_end(self) -> int:
        return self.accepted - self.delivered_in_window

    @property
    def backlog_bounded(self) -> bool:
        """The backlog grew by less than one second of accepted events over the window's second half."""
        return self.backlog_end - self.backlog_at(0.5) <= max(1.0, self.accepted_per_second)

    @property
    def undelivered(self) -> int:
        return self.accepted - self.delivered_total


@dataclasses.dataclass(frozen=True)
class Isolation:
    rate: float
    events: int
    hang_events: int
    hang_accepted: int
    alone_ms: list[float]
    alone_missing: int
    with_hang_ms: list[float]
    with_hang_missing: int
    held_connections: int
    settle: float

    def alone(self, fraction: float) -> float:
        return percentile(self.alone_ms, fraction, self.alone_missing)

    def with_hang(self, fraction: float) -> float:
        return percentile(self.with_hang_ms, fraction, self.with_hang_missing)

    @property
    def p99_ratio(self) -> float:
        alone = self.alone(0.99)
        return self.with_hang(0.99) / alone if alone > 0 else float("inf")


@dataclasses.dataclass(frozen=True)
class Latency:
    rate: float
    events: int
    direct_ms: list[float]
    relay_ms: list[float]
    lost: int

    def figure(self, which: str, fraction: float) -> float:
        return percentile(self.direct_ms if which == "direct" else self.relay_ms, fraction)

    def added(self, fraction: float) -> float:
        return self.figure("relay", fraction) - self.figure("direct", fraction)


class _Loader:
    """Closed loop: `connections` keep-alive connections post events back to back to one path, until
    `events` are sent or `time_limit` seconds have passed; counts 202 answers and the others by status."""

    def __init__(self, base_url: str, path: str, connections: int):
        self.pool = ConnectionPool(base_url, connections)
        self.path = path
        self.connections = connections
        self.accepted_ids: list[str] = []
        self.rejections: dict[int, int] = {}

    @property
    def rejected(self) -> int:
        return sum(self.rejections.values())

    async def run(self, events: int, time_limit: float, prefix: str = "", bodies: list[bytes] | None = None,
                  headers: list[dict[str, str]] | None = None) -> float:
        """Post; return the seconds it took."""
        next_event = iter(range(events))
        deadline = time.perf_counter() + time_limit

        async def one_connection() -> None:
            for number in next_event:
                if time.perf_counter() > deadline:
                    return
                key = f"{prefix}{number}"
                body = bodies[number] if bodies is not None else event_body(number)
                extra = headers[number] if headers is not None else {}
                status, _ = await self.pool.post(self.path, body, {"Content-Type": "application/json",
                                                                   EVENT_HEADER: key, **extra})
                if status == 202:
                    self.accepted_ids.append(key)
                else:
                    self.rejections[status] = self.rejections.get(status, 0) + 1

        started = time.perf_counter()
        try:
            await asyncio.gather(*(one_connection() for _ in range(self.connections)))
        finally:
            await self.pool.close()
        return time.perf_counter() - started


async def _throughput(server_url: str, events: int, connections: int, time_limit: float,
                      delivery_wait: float) -> Throughput:
    receiver = Receiver(EVENT_HEADER)
    await receiver.start()
    try:
        ingress_path = await asyncio.to_thread(register_receiver, server_url, receiver.url)
        loader = _Loader(server_url, ingress_path, connections)
        bodies = [event_body(number) for number in range(events)]
        started = time.perf_counter()
        accept_seconds = await loader.run(events, time_limit, bodies=bodies)
        accepted_ids = loader.accepted_ids
        await receiver.wait_for(accepted_ids, delivery_wait)
        delivered = sum(1 for key in accepted_ids if key in receiver.arrivals)
        last_arrival = max((receiver.arrivals[key] for key in accepted_ids if key in receiver.arrivals),
                           default=started)
        return Throughput(events, len(accepted_ids), loader.rejected, accept_seconds, delivered,
                          last_arrival - started, connections, loader.rejections)
    finally:
        await receiver.stop()


async def _bare_stack(url: str, app: str, events: int, connections: int, time_limit: float) -> BareStack:
    loader = _Loader(url, BARE_STACK_PATH, connections)
    bodies = [event_body(number) for number in range(events)]
    seconds = await loader.run(events, time_limit, bodies=bodies)
    if loader.rejected:
        raise RuntimeError(f"the bare stack ({app}) answered other than 202: {loader.rejections}")
    return BareStack(app, events, len(loader.accepted_ids), seconds, connections)


def _wait_listening(port: int, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bare_stack.py exited with {process.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"bare_stack.py did not listen on port {port} within {timeout:.0f}s")


def measure_bare_stack(app: str, events: int, connections: int, time_limit: float) -> BareStack:
    """uvicorn answering 202 with nothing behind it, in its own process as the relay is."""
    port = free_port()
    process = subprocess.Popen([sys.executable, str(BARE_STACK), "--port", str(port), "--app", app],
                               stdin=subprocess.DEVNULL)
    try:
        _wait_listening(port, process, 30.0)
        return asyncio.run(_bare_stack(f"http://127.0.0.1:{port}", app, events, connections, time_limit))
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _sustained(server_url: str, seconds: float, connections: int, drain_limit: float,
                     max_events: int) -> Sustained:
    receiver = Receiver(EVENT_HEADER)
    await receiver.start()
    try:
        ingress_path = await asyncio.to_thread(register_receiver, server_url, receiver.url)
        loader = _Loader(server_url, ingress_path, connections)
        samples: list[tuple[float, int, int]] = []
        started = time.perf_counter()

        async def sample() -> None:
            while True:
                await asyncio.sleep(1.0)
                samples.append((time.perf_counter() - started, len(loader.accepted_ids), len(receiver.arrivals)))

        sampler = asyncio.create_task(sample())
        try:
            window = await loader.run(max_events, seconds, prefix="s")
        finally:
            sampler.cancel()
        accepted = len(loader.accepted_ids)
        delivered_in_window = len(receiver.arrivals)
        samples.append((window, accepted, delivered_in_window))
        drain_started = time.perf_counter()
        # Only accepted events ever reach the receiver, each counted once: waiting on the count suffices.
        while len(receiver.arrivals) < accepted and time.perf_counter() - drain_started < drain_limit:
            await asyncio.sleep(0.1)
        return Sustained(window, connections, accepted, loader.rejected, delivered_in_window,
                         sum(1 for key in loader.accepted_ids if key in receiver.arrivals),
                         time.perf_counter() - drain_started, tuple(samples))
    finally:
        await receiver.stop()


async def _paced(pool: ConnectionPool, path: str, receiver: Receiver, rate: float, events: int,
                 prefix: str, settle: float) -> tuple[list[float], int, int]:
    """Send `events` at `rate`/s, each at its due time; return latencies in ms, the count that never
    arrived within `settle` seconds and the count answered other than 2xx."""
    due_times: dict[str, float] = {}
    failures = 0

    async def send(key: str, body: bytes) -> None:
        nonlocal failures
        status, _ = await pool.post(path, body, {"Content-Type": "application/json", EVENT_HEADER: key})
        if status >= 300:
            failures += 1

    tasks = []
    start = time.perf_counter() + 0.05
    for number in range(events):
        due = start + number / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        key = f"{prefix}-{number}"
        due_times[key] = due
        tasks.append(asyncio.create_task(send(key, event_body(number))))
    await asyncio.gather(*tasks)
    await receiver.wait_for(list(due_times), settle)
    latencies = [(receiver.arrivals[key] - due) * 1000.0 for key, due in due_times.items() if key in receiver.arrivals]
    return latencies, events - len(latencies), failures


async def _latency(server_url: str, rate: float, events: int, connections: int, settle: float) -> Latency:
    receiver = Receiver(EVENT_HEADER)
    await receiver.start()
    try:
        ingress_path = await asyncio.to_thread(register_receiver, server_url, receiver.url)
        direct_pool = ConnectionPool(f"http://127.0.0.1:{receiver.port}", connections)
        relay_pool = ConnectionPool(server_url, connections)
        direct, direct_missing, direct_failed = await _paced(direct_pool, "/sink", receiver, rate, events, "direct",
                                                             settle)
        relay, relay_missing, relay_failed = await _paced(relay_pool, ingress_path, receiver, rate, events, "relay",
                                                          settle)
        await direct_pool.close()
        await relay_pool.close()
        return Latency(rate, events, direct, relay, direct_missing + direct_failed + relay_missing + relay_failed)
    finally:
        await receiver.stop()


async def _isolation(server_url: str, rate: float, events: int, hang_events: int, connections: int,
                     settle: float) -> Isolation:
    receiver = Receiver(EVENT_HEADER)
    hanging = HangingReceiver(max_held=max(64, 2 * hang_events))
    await receiver.start()
    await hanging.start()
    try:
        healthy_path = await asyncio.to_thread(register_receiver, server_url, receiver.url)
        hanging_path = await asyncio.to_thread(register_receiver, server_url, hanging.url, OTHER_PRODUCT)
        pool = ConnectionPool(server_url, connections)
        alone, alone_missing, alone_failed = await _paced(pool, healthy_path, receiver, rate, events, "alone", settle)
        loader = _Loader(server_url, hanging_path, connections)
        await loader.run(hang_events, 60.0, prefix="hang-")
        # Give the delivery workers a moment to pick the queued events up (and hang on them).
        await asyncio.sleep(1.0)
        with_hang, with_missing, with_failed = await _paced(pool, healthy_path, receiver, rate, events, "with", settle)
        await pool.close()
        return Isolation(rate, events, hang_events, len(loader.accepted_ids), alone, alone_missing + alone_failed,
                         with_hang, with_missing + with_failed, hanging.most_held, settle)
    finally:
        # The hanging receiver goes first: its held requests fail, and the server can stop.
        await hanging.stop()
        await receiver.stop()


def measure_throughput(events: int, connections: int, time_limit: float, delivery_wait: float) -> Throughput:
    with LocalServer(seed=relay_seed(), test_mode=False) as server:
        return asyncio.run(_throughput(server.url, events, connections, time_limit, delivery_wait))


@dataclasses.dataclass(frozen=True)
class Verification:
    events: int  # per leg and round
    rounds: int
    connections: int
    # leg -> (accepted, seconds), summed over the rounds; legs: plain, verified, verified_dedup
    legs: dict[str, tuple[int, float]]
    rejections: dict[int, int]
    undelivered: int

    def per_second(self, leg: str) -> float:
        accepted, seconds = self.legs[leg]
        return accepted / seconds if seconds else 0.0

    def percent_of_plain(self, leg: str) -> float:
        plain = self.per_second("plain")
        return 100.0 * self.per_second(leg) / plain if plain else 0.0

    def added_us(self, leg: str) -> float:
        """Microseconds each event costs more than on the plain link (from the rates)."""
        plain, other = self.per_second("plain"), self.per_second(leg)
        return (1e6 / other - 1e6 / plain) if plain and other else float("nan")

    @property
    def accepted(self) -> int:
        return sum(accepted for accepted, _ in self.legs.values())


def stripe_signature(body: bytes, at: int) -> str:
    """Stripe's scheme: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">."""
    digest = hmac.new(SIGNING_SECRET.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


async def _verification(server_url: str, events: int, rounds: int, connections: int,
                        time_limit: float) -> Verification:
    receiver = Receiver(EVENT_HEADER)
    await receiver.start()
    try:
        paths = {}
        for leg, webhook in (("plain", WEBHOOK), ("verified", VERIFIED_WEBHOOK), ("verified_dedup", DEDUP_WEBHOOK)):
            paths[leg] = await asyncio.to_thread(register_receiver, server_url, receiver.url, PRODUCT, webhook)
        names = list(paths)
        legs = {leg: (0, 0.0) for leg in paths}
        rejections: dict[int, int] = {}
        accepted_ids: list[str] = []
        serial = iter(range(10**9))  # event numbers (and so dedup ids) unique across legs and rounds

        async def leg_run(leg: str, count: int, label: str) -> tuple[int, float]:
            bodies = [event_body(next(serial)) for _ in range(count)]
            now = int(time.time())
            headers = [{STRIPE_HEADER: stripe_signature(body, now)} for body in bodies] if leg != "plain" else None
            loader = _Loader(server_url, paths[leg], connections)
            seconds = await loader.run(count, time_limit, prefix=f"{leg}-{label}-", bodies=bodies, headers=headers)
            for status, found in loader.rejections.items():
                rejections[status] = rejections.get(status, 0) + found
            accepted_ids.extend(loader.accepted_ids)
            # the next leg starts with no delivery backlog from this one
            await receiver.wait_for(loader.accepted_ids, 60.0)
            return len(loader.accepted_ids), seconds

        for leg in names:  # warm-up, not counted: first connections, first code paths, a cold cache
            await leg_run(leg, max(1, events // 4), "warm")
        for number in range(rounds):
            # each round starts with the next leg, so that no leg always runs first or last
            for leg in names[number % len(names):] + names[:number % len(names)]:
                accepted, seconds = await leg_run(leg, events, str(number))
                legs[leg] = (legs[leg][0] + accepted, legs[leg][1] + seconds)
        undelivered = sum(1 for key in accepted_ids if key not in receiver.arrivals)
        return Verification(events, rounds, connections, legs, rejections, undelivered)
    finally:
        await receiver.stop()


def verify_cpu_us() -> dict[str, float]:
    """The CPU time of one signature check (and of reading a dedup id) on this run's event body, in
    process: what verification adds to the accept path's per-event work, free of the HTTP noise."""
    import statistics
    import timeit

    from ductape_local.catalog import DedupConfig, SecretRef, VerifyConfig
    from ductape_local.dedup import provider_event_id
    from ductape_local.verification import Verifier

    body, now = event_body(1), int(time.time())
    secret = SIGNING_SECRET.encode()
    ref = SecretRef("secret_env", "UNUSED", "bench")
    cases = {
        "stripe": (Verifier(VerifyConfig("stripe", ref, header=STRIPE_HEADER), secret),
                   [(STRIPE_HEADER, stripe_signature(body, now))]),
        "github": (Verifier(VerifyConfig("github", ref, header="X-Hub-Signature-256", prefix="sha256="), secret),
                   [("X-Hub-Signature-256", "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest())]),
        "paystack": (Verifier(VerifyConfig("paystack", ref, header="x-paystack-signature", algorithm="sha512"),
                              secret),
                     [("x-paystack-signature", hmac.new(secret, body, hashlib.sha512).hexdigest())]),
    }
    results = {}
    for name, (verifier, headers) in cases.items():
        assert verifier.problem(headers, body, now) is None, name
        results[name] = 1e6 * statistics.median(
            timeit.repeat(lambda: verifier.problem(headers, body, now), number=2000, repeat=5)) / 2000
    config = DedupConfig(json_path=("id",))
    results["dedup_json"] = 1e6 * statistics.median(
        timeit.repeat(lambda: provider_event_id(config, [], body), number=2000, repeat=5)) / 2000
    results["dedup_commit"] = _dedup_commit_cpu_us()
    return results


def _dedup_commit_cpu_us(batches: int = 60, size: int = 32) -> float:
    """The group commit's CPU time per event with a dedup id minus without (median of alternating
    rounds of `batches` commits of `size` events each, into a scratch database)."""
    import statistics

    from ductape_local.events import EventStore, ReceivedEvent, Target

    with tempfile.TemporaryDirectory(prefix="ductape-bench-commit-") as workdir:
        store = EventStore(str(pathlib.Path(workdir) / "events.db"))
        target = Target("bench", PRODUCT, ACCESS_TAG, WEBHOOK, ENV, "http://127.0.0.1:9/", "POST")
        serial = iter(range(10**9))
        costs: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(5):
            for dedup in (False, True):
                work = []
                for _ in range(batches):
                    numbers = [next(serial) for _ in range(size)]
                    work.append([(target, ReceivedEvent("POST", "/", "", [], event_body(n)),
                                  (f"evt_{n:08d}", 86400.0) if dedup else None) for n in numbers])
                started = time.process_time()
                for batch in work:
                    store.commit_ingress(batch)
                costs[dedup].append(1e6 * (time.process_time() - started) / (batches * size))
        store.close_thread_connection()
    return statistics.median(costs[True]) - statistics.median(costs[False])


def measure_verification(events: int, rounds: int, connections: int, time_limit: float) -> Verification:
    with tempfile.TemporaryDirectory(prefix="ductape-bench-secret-") as workdir:
        secret_file = pathlib.Path(workdir) / "stripe-signing-secret"
        secret_file.write_text(SIGNING_SECRET, encoding="utf-8")
        with LocalServer(seed=relay_seed(str(secret_file)), test_mode=False) as server:
            return asyncio.run(_verification(server.url, events, rounds, connections, time_limit))


def measure_sustained(seconds: float, connections: int, drain_limit: float, max_events: int) -> Sustained:
    with LocalServer(seed=relay_seed(), test_mode=False) as server:
        return asyncio.run(_sustained(server.url, seconds, connections, drain_limit, max_events))


def measure_latency(rate: float, events: int, connections: int, settle: float) -> Latency:
    with LocalServer(seed=relay_seed(), test_mode=False) as server:
        return asyncio.run(_latency(server.url, rate, events, connections, settle))


def measure_isolation(rate: float, events: int, hang_events: int, connections: int, settle: float) -> Isolation:
    with LocalServer(seed=relay_seed(), test_mode=False) as server:
        return asyncio.run(_isolation(server.url, rate, events, hang_events, connections, settle))
