"""The relay benchmark: events accepted durably per second, and the latency the relay adds.

Everything runs on loopback and is bounded in count and in time:
  throughput - a closed-loop loader with a fixed number of keep-alive connections posts N events to
               one wrapped link; a 202 answer means the event was committed before it was
               acknowledged (the ingress contract). The local receiver must then see every one.
  latency    - an open-loop loader sends events on a fixed schedule (e.g. 200/s) once straight to the
               receiver and once through the relay; latency is the time from the moment an event is
               due to its first arrival at the receiver, in the same process and clock.
The server runs as deployed, without --test-mode: the relay needs no request counters.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

import requests
from ductape_local.testing import LocalServer

from loopback_http import ConnectionPool, Receiver

PRODUCT = "relay-product"
ACCESS_TAG = "relay-provider"
APP = "relay-app"
ENV = "prd"
WEBHOOK = "payment_succeeded"
# Not a real secret: ductape-local in test mode only knows the keys its seed declares.
ACCESS_KEY = "dtl_relay_bench_key"
EVENT_HEADER = "X-Bench-Id"


def relay_seed() -> dict:
    return {
        "access_keys": [{"key": ACCESS_KEY, "products": [PRODUCT]}],
        "products": [{
            "tag": PRODUCT, "envs": [ENV],
            "connections": [{"access_tag": ACCESS_TAG, "app": APP, "envs": {ENV: "live"}}],
        }],
        "apps": [{"tag": APP, "webhooks": [{"tag": WEBHOOK, "name": "Payment succeeded"}]}],
    }


def register_receiver(server_url: str, receiver_url: str) -> str:
    """Register the receiver as the webhook's target; return the ingress path of its wrapped link."""
    answer = requests.post(
        f"{server_url}/webhooks/v1/register",
        headers={"Authorization": f"Bearer {ACCESS_KEY}"},
        json={"product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": WEBHOOK,
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


@dataclasses.dataclass(frozen=True)
class Latency:
    rate: float
    events: int
    direct_ms: list[float]
    relay_ms: list[float]
    lost: int

    @staticmethod
    def percentile(samples: list[float], fraction: float) -> float:
        if not samples:
            return float("nan")
        ordered = sorted(samples)
        return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]

    def figure(self, which: str, fraction: float) -> float:
        return self.percentile(self.direct_ms if which == "direct" else self.relay_ms, fraction)

    def added(self, fraction: float) -> float:
        return self.figure("relay", fraction) - self.figure("direct", fraction)


async def _throughput(server_url: str, events: int, connections: int, time_limit: float,
                      delivery_wait: float) -> Throughput:
    receiver = Receiver(EVENT_HEADER)
    await receiver.start()
    try:
        ingress_path = await asyncio.to_thread(register_receiver, server_url, receiver.url)
        pool = ConnectionPool(server_url, connections)
        bodies = [event_body(number) for number in range(events)]
        next_event = iter(range(events))
        accepted_ids: list[str] = []
        rejected = 0
        rejections: dict[int, int] = {}
        deadline = time.perf_counter() + time_limit

        async def loader() -> None:
            nonlocal rejected
            for number in next_event:
                if time.perf_counter() > deadline:
                    return
                status, _ = await pool.post(ingress_path, bodies[number],
                                            {"Content-Type": "application/json", EVENT_HEADER: str(number)})
                if status == 202:
                    accepted_ids.append(str(number))
                else:
                    rejected += 1
                    rejections[status] = rejections.get(status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(loader() for _ in range(connections)))
        accept_seconds = time.perf_counter() - started
        await pool.close()
        await receiver.wait_for(accepted_ids, delivery_wait)
        delivered = sum(1 for key in accepted_ids if key in receiver.arrivals)
        last_arrival = max((receiver.arrivals[key] for key in accepted_ids if key in receiver.arrivals),
                           default=started)
        return Throughput(events, len(accepted_ids), rejected, accept_seconds, delivered,
                          last_arrival - started, connections, rejections)
    finally:
        await receiver.stop()


async def _paced(pool: ConnectionPool, path: str, receiver: Receiver, rate: float, events: int,
                 prefix: str, settle: float) -> tuple[list[float], int]:
    """Send `events` at `rate`/s, each at its due time; return latencies in ms and the count lost."""
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
    return latencies, events - len(latencies) + failures


async def _latency(server_url: str, rate: float, events: int, connections: int, settle: float) -> Latency:
    receiver = Receiver(EVENT_HEADER)
    await receiver.start()
    try:
        ingress_path = await asyncio.to_thread(register_receiver, server_url, receiver.url)
        direct_pool = ConnectionPool(f"http://127.0.0.1:{receiver.port}", connections)
        relay_pool = ConnectionPool(server_url, connections)
        direct, direct_lost = await _paced(direct_pool, "/sink", receiver, rate, events, "direct", settle)
        relay, relay_lost = await _paced(relay_pool, ingress_path, receiver, rate, events, "relay", settle)
        await direct_pool.close()
        await relay_pool.close()
        return Latency(rate, events, direct, relay, direct_lost + relay_lost)
    finally:
        await receiver.stop()


def measure_throughput(events: int, connections: int, time_limit: float, delivery_wait: float) -> Throughput:
    with LocalServer(seed=relay_seed(), test_mode=False) as server:
        return asyncio.run(_throughput(server.url, events, connections, time_limit, delivery_wait))


def measure_latency(rate: float, events: int, connections: int, settle: float) -> Latency:
    with LocalServer(seed=relay_seed(), test_mode=False) as server:
        return asyncio.run(_latency(server.url, rate, events, connections, settle))
