"""The delivery worker: takes due deliveries from the event store and sends them to the receivers.

A few threads, each with its own SQLite connection and its own kept-alive HTTP connections (one per
destination it talked to), claim one due delivery at a time, send it, and record the attempt. The
ingress route wakes them after each insert; otherwise they sleep until the next retry is due.

Promises kept here:

- Every attempt ends in a recorded outcome, whatever fails inside it (an unusable url, a header that
  cannot be sent, an unreadable answer, an exception nobody foresaw): an attempt without an answer is
  retried on the schedule like a timeout. If even recording fails, the delivery is made due again.
- The delivery timeout bounds the whole attempt: connecting, sending, and reading the answer's status
  and headers. A receiver that sends its answer one byte at a time is cut when the time is up.
- A destination (the receiver's scheme, host and port, in any spelling) holds at most
  ``destination_share(workers)`` of the worker threads, so receivers that hang cannot stop deliveries
  to the others: deliveries to a destination at its share wait in the store while others are claimed.
- Every delivery carries ``X-Ductape-Event-Id``, the same on every retry and replay (delivery is
  at-least-once; receivers deduplicate by it), and ``X-Ductape-Hops``, how many relays have delivered
  it; the ingress refuses an event that has come back too often (``loop_refusal``), which ends loops.
- Before each attempt the url is checked again (destinations.destination_refusal: this relay's own
  links, and the private-destination policy), after DNS resolution; a refusal is a failed attempt
  that is not retried.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import heapq
import http.client
import itertools
import logging
import math
import re
import select
import socket
import ssl
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterable
from urllib.parse import unquote, urlsplit

from .auth_digest import mask_url
from .batching import BatchingThread
from .config import DEFAULT_DELIVERY_TIMEOUT, DEFAULT_DELIVERY_WORKERS, DEFAULT_RETRY_SCHEDULE
from .destinations import destination_refusal
from .events import DELIVERED, FAILED, PENDING, AttemptOutcome, ClaimedDelivery, EventStore

log = logging.getLogger("ductape_local.delivery")

# A receiver asking for more than a day is treated as asking for a day.
MAX_RETRY_AFTER = 86400.0
# Idle threads look at the store at least this often, in case a wake-up was missed.
IDLE_RECHECK_S = 1.0
# The answer's body is not kept; up to this much is read so that the connection can be reused.
DRAIN_BYTES = 65536
# Kept-alive connections per worker thread (least recently used ones are closed beyond that).
MAX_IDLE_CONNECTIONS = 32
# How often attempts past their deadline are looked for.
DEADLINE_TICK_S = 0.1
# Most deliveries to one receiver url a thread claims at once (one statement), sent one after the other.
CLAIM_BATCH = 16
# Most attempts written in one transaction by the recorder thread.
RECORD_BATCH = 512
# The interpreter's GIL switch interval while the worker runs (see DeliveryWorker.start).
GIL_SWITCH_INTERVAL_S = 0.0005
# An event that has been delivered by relays this many times is refused when it comes back.
MAX_HOPS = 5

RETRYABLE_STATUSES = frozenset({408, 425, 429})
# 508 Loop Detected is what a Ductape relay answers to an event that came back too often: retrying
# would only loop again.
NOT_RETRYABLE_SERVER_STATUSES = frozenset({508})
HOP_BY_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Host names the middleware, not the receiver; Content-Length is computed from the body.
NOT_FORWARDED_HEADERS = HOP_BY_HOP_HEADERS | {"host", "content-length"}
EVENT_ID_HEADER = "X-Ductape-Event-Id"
WEBHOOK_TAG_HEADER = "X-Ductape-Webhook-Tag"
ENV_HEADER = "X-Ductape-Env"
HOPS_HEADER = "X-Ductape-Hops"
# sent as "true" on a registration's test event only (a provider's copy of it is never forwarded)
TEST_HEADER = "X-Ductape-Test"
_OWN_HEADERS = frozenset(
    h.lower() for h in (EVENT_ID_HEADER, WEBHOOK_TAG_HEADER, ENV_HEADER, HOPS_HEADER, TEST_HEADER)
)
USER_AGENT = "ductape-local"
_DELTA_SECONDS = re.compile(r"[0-9]{1,12}")


def destination_share(workers: int) -> int:
    """The most worker threads one destination may hold at once: a quarter of them, at least one."""
    return max(1, workers // 4)


@functools.lru_cache(maxsize=4096)
def destination_key(url: str) -> str:
    """The destination a url is delivered to: scheme, host and port, in one spelling (lowercase host,
    no trailing dot, the default port written out). A url that cannot be read is its own destination."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").rstrip(".")
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return "unreadable:" + url.split("/", 3)[2].lower() if url.count("/") >= 2 else "unreadable:" + url
    return f"{scheme}://{host}:{port}"


def hops_of(headers: list[tuple[str, str]] | Any) -> int:
    """How many relays have delivered an event already, from its X-Ductape-Hops header (0 without one
    or when it is not a plain number)."""
    for name, value in headers:
        if name.lower() == HOPS_HEADER.lower():
            value = value.strip()
            return int(value) if _DELTA_SECONDS.fullmatch(value) else 0
    return 0


def loop_refusal(headers: list[tuple[str, str]]) -> str | None:
    """Why the ingress must refuse an event (508): it has come back to a relay MAX_HOPS times already."""
    hops = hops_of(headers)
    if hops < MAX_HOPS:
        return None
    return (
        f"{HOPS_HEADER}: this event has already been relayed {hops} times (the limit is {MAX_HOPS}); "
        "a receiver url leads back to a Ductape link, so the event is refused to end the loop"
    )


def parse_retry_schedule(text: str) -> tuple[float, ...]:
    """``"1,5,30"`` -> (1.0, 5.0, 30.0); ValueError naming the bad part. An empty text means no retries."""
    if not text.strip():
        return ()
    delays = []
    for part in text.split(","):
        try:
            delay = float(part)
        except ValueError:
            raise ValueError(
                f"retry schedule: {part.strip()!r} is not a number of seconds "
                f"(expected comma-separated seconds such as 1,5,30,120,600)"
            ) from None
        if not delay >= 0 or delay == float("inf"):
            raise ValueError(f"retry schedule: {part.strip()!r} must be a finite number >= 0")
        delays.append(delay)
    return tuple(delays)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent or
    unreadable. Never raises, whatever the receiver sent."""
    if not value:
        return None
    value = value.strip()
    # ASCII digits only: str.isdigit() also accepts "²" or "٣", which float() refuses
    if _DELTA_SECONDS.fullmatch(value):
        return min(float(value), MAX_RETRY_AFTER)
    if value.isdigit():
        return MAX_RETRY_AFTER if value.isascii() else None
    try:
        moment = email.utils.parsedate_to_datetime(value)
        seconds = moment.timestamp() - now
    except (TypeError, ValueError, OverflowError, AttributeError, IndexError):
        return None
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def forwarded_headers(claimed: ClaimedDelivery) -> dict[str, str]:
    """The provider's headers less hop-by-hop ones, Host and Content-Length, plus Ductape's own."""
    named_by_connection = {
        token.strip().lower()
        for name, value in claimed.headers
        if name.lower() == "connection"
        for token in value.split(",")
    }
    dropped = NOT_FORWARDED_HEADERS | named_by_connection | _OWN_HEADERS
    headers: dict[str, str] = {}
    for name, value in claimed.headers:
        key = name.lower()
        if key in dropped:
            continue
        # repeated headers are folded into one field, as RFC 9110 allows
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    headers.setdefault("user-agent", USER_AGENT)
    headers[EVENT_ID_HEADER] = claimed.event_id
    headers[WEBHOOK_TAG_HEADER] = claimed.webhook_tag
    headers[ENV_HEADER] = claimed.env
    headers[HOPS_HEADER] = str(hops_of(claimed.headers) + 1)
    if claimed.test:
        headers[TEST_HEADER] = "true"
    return headers


def delivery_url(claimed: ClaimedDelivery) -> str:
    """The receiver's url with the provider's query string appended, so query-borne events survive."""
    if not claimed.query:
        return claimed.url
    base, _, fragment = claimed.url.partition("#")
    joiner = "&" if "?" in base else "?"
    if base.endswith(("?", "&")):
        joiner = ""
    return base + joiner + claimed.query + (f"#{fragment}" if fragment else "")


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    error: str | None
    retry_after: float | None
    latency_ms: float
    # False for a failure that would fail again the same way (a refused destination)
    retryable: bool = True


def _retryable_status(code: int) -> bool:
    if code in NOT_RETRYABLE_SERVER_STATUSES:
        return False
    return code in RETRYABLE_STATUSES or code >= 500


def decide(
    result: SendResult, round_attempt_number: int, schedule: tuple[float, ...], now: float
) -> tuple[str, float | None]:
    """What an attempt leads to: (DELIVERED | FAILED | PENDING, when the next attempt is due)."""
    code = result.status_code
    if code is not None and 200 <= code < 300:
        return DELIVERED, None
    retryable = result.retryable and (code is None or _retryable_status(code))
    if not retryable or round_attempt_number > len(schedule):
        return FAILED, None
    delay = schedule[round_attempt_number - 1]
    if result.retry_after is not None:
        delay = max(delay, result.retry_after)
    return PENDING, now + delay


def attempt_error(result: SendResult) -> str | None:
    if result.error is not None:
        return result.error
    code = result.status_code
    if code == 508:
        return (
            "receiver answered HTTP 508 Loop Detected: the event came back to a Ductape relay "
            f"{MAX_HOPS} times; the receiver url leads back to a wrapped link"
        )
    if code is not None and not 200 <= code < 300:
        return f"receiver answered HTTP {code}"
    return None


def dead_letter_reason(result: SendResult, attempt_count: int, round_attempt_number: int,
                       schedule: tuple[float, ...]) -> str:
    """Why a delivery that ended FAILED is a dead letter: its retries ran out, or it was not retried."""
    error = attempt_error(result) or "failed"
    code = result.status_code
    retryable = result.retryable and (code is None or _retryable_status(code))
    if retryable and round_attempt_number > len(schedule):
        return f"retries exhausted after {attempt_count} attempts; the last: {error}"
    return f"not retried: {error}"


def _valid_timeout(timeout: Any) -> float:
    try:
        value = float(timeout)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"delivery timeout: must be a finite number of seconds > 0 (got {timeout!r})")
    return value


def _valid_schedule(schedule: Any) -> tuple[float, ...]:
    delays = tuple(float(delay) for delay in schedule)
    for delay in delays:
        if not (math.isfinite(delay) and delay >= 0):
            raise ValueError(f"retry schedule: {delay!r} must be a finite number >= 0")
    return delays


class _Watch:
    """One attempt's deadline: once it passes, the attempt's socket is shut down by the Deadlines thread."""

    __slots__ = ("deadline", "connection", "expired", "done")

    def __init__(self, deadline: float, connection: "_Connection"):
        self.deadline = deadline
        self.connection = connection
        self.expired = False
        self.done = False


class Deadlines:
    """One thread that ends attempts running past their deadline, by shutting their socket down.

    Socket timeouts bound each read, not an answer that trickles in one byte at a time; this bounds
    the whole attempt. A blocked read then returns at once and the attempt reports the timeout. The
    thread looks every DEADLINE_TICK_S (so an attempt may run that much past its deadline) and is
    never woken by a new attempt, which would cost every delivery a thread switch.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._counter = itertools.count()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def watch(self, deadline: float, connection: "_Connection") -> _Watch:
        watch = _Watch(deadline, connection)
        with self._lock:
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="ductape-delivery-deadlines", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (deadline, next(self._counter), watch))
        return watch

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join(2.0)

    def _run(self) -> None:
        while not self._stop.wait(DEADLINE_TICK_S):
            now = time.monotonic()
            expired = []
            with self._lock:
                while self._heap and (self._heap[0][2].done or self._heap[0][0] <= now):
                    _, _, watch = heapq.heappop(self._heap)
                    if not watch.done:
                        watch.expired = True
                        expired.append(watch.connection.sock)
            for sock in expired:
                if sock is not None:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass


class _Connection:
    """One kept-alive connection to a destination; requests are written whole, in one send."""

    __slots__ = ("scheme", "host", "port", "sock", "last_used", "_tls")

    def __init__(self, scheme: str, host: str, port: int, tls: ssl.SSLContext):
        self.scheme, self.host, self.port, self._tls = scheme, host, port, tls
        self.sock: socket.socket | None = None
        self.last_used = 0.0

    def open(self, timeout: float) -> None:
        sock = socket.create_connection((self.host, self.port), timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.scheme == "https":
                sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()


class _Connections:
    """One worker thread's kept-alive connections, one per destination, least recently used closed first."""

    def __init__(self, tls: ssl.SSLContext):
        self._tls = tls
        self._idle: OrderedDict[str, _Connection] = OrderedDict()
        self.opened = 0

    def take(self, key: str, scheme: str, host: str, port: int) -> tuple[_Connection, bool]:
        """A connection to the destination and whether it was used before (it is opened on first use)."""
        conn = self._idle.pop(key, None)
        if conn is not None and conn.sock is not None:
            # a connection used within the last second is taken as alive; an older one is checked
            if time.monotonic() - conn.last_used < 1.0 or _usable(conn.sock):
                return conn, True
            conn.close()
        return self.new(scheme, host, port), False

    def new(self, scheme: str, host: str, port: int) -> _Connection:
        self.opened += 1
        return _Connection(scheme, host, port, self._tls)

    def keep(self, key: str, conn: _Connection) -> None:
        conn.last_used = time.monotonic()
        self._idle[key] = conn
        while len(self._idle) > MAX_IDLE_CONNECTIONS:
            _, oldest = self._idle.popitem(last=False)
            oldest.close()

    def close(self) -> None:
        for conn in self._idle.values():
            conn.close()
        self._idle.clear()


def _usable(sock: socket.socket) -> bool:
    """An idle kept-alive socket is usable when nothing is waiting on it (the peer did not close it)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


class Recorder:
    """One thread that writes the outcomes of all worker threads, every outcome waiting in one
    transaction: under load one commit serves many attempts, alone an outcome waits for nobody."""

    def __init__(self, write: Callable[[list], None], store: EventStore):
        self._writer = BatchingThread("ductape-delivery-recorder", write, RECORD_BATCH,
                                      on_exit=store.close_thread_connection)

    def put(self, claimed: ClaimedDelivery, outcome: AttemptOutcome) -> None:
        self._writer.put((claimed, outcome))

    def stop(self, wait_s: float) -> None:
        self._writer.stop(wait_s)


class _Refused(Exception):
    """The url must not be delivered to; not retried."""


class DeliveryWorker:
    def __init__(
        self,
        store: EventStore,
        *,
        retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE,
        timeout: float = DEFAULT_DELIVERY_TIMEOUT,
        workers: int = DEFAULT_DELIVERY_WORKERS,
        on_delivered: Callable[[str], None] | None = None,
        destination_config: Any = None,
    ):
        self._store = store
        self._schedule = _valid_schedule(retry_schedule)
        self._timeout = _valid_timeout(timeout)
        self._worker_count = max(1, int(workers))
        self._share = destination_share(self._worker_count)
        self._on_delivered = on_delivered
        # a ServerConfig (listen_addresses, block_private_destinations); None checks nothing
        self._destination_config = destination_config
        self._known_active: set[str] = set()
        self._wakeup = threading.Condition()
        # bumped on every wake(): a thread that saw no work sleeps only if nothing arrived since it looked
        self._generation = 0
        self._stopping = False
        self._threads: list[threading.Thread] = []
        # claims are made one at a time, so that the count per destination is never exceeded
        self._claim_lock = threading.Lock()
        # threads per destination, and per receiver url, holding a claim
        self._busy: dict[str, int] = {}
        self._urls: dict[str, int] = {}
        # receiver url -> whether its last attempt got an answer (then its deliveries are claimed in batches)
        self._answering: dict[str, bool] = {}
        # deliveries whose outcome could not be written, nor their claim released: released later
        self._unreleased: list[ClaimedDelivery] = []
        # The last look past saturated destinations that found nothing to claim: (what it skipped, the
        # wake-up generation it saw, until when it holds, the next due time it found). See _claim.
        self._nothing_past: tuple[tuple[str, ...], int, float, float | None] | None = None
        self._deadlines = Deadlines()
        self._recorder = Recorder(self._write_outcomes, self._store)

    @classmethod
    def for_config(cls, store: EventStore, config: Any, **options: Any) -> "DeliveryWorker":
        """The worker a ServerConfig asks for, checking its receivers against that config's policy."""
        return cls(
            store,
            retry_schedule=config.retry_schedule,
            timeout=config.delivery_timeout,
            workers=config.delivery_workers,
            destination_config=config,
            **options,
        )

    @property
    def retry_schedule(self) -> tuple[float, ...]:
        return self._schedule

    def start(self) -> None:
        # A thread that waited on a socket (a receiver's answer) must take the GIL back before it can
        # go on, and under load the thread holding it (the event loop accepting events) lets go only
        # every switch interval (5 ms by default): each delivery waits for it at least twice (send,
        # answer), so delivery fell far behind acceptance. A shorter interval hands the GIL over sooner.
        if sys.getswitchinterval() > GIL_SWITCH_INTERVAL_S:
            sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        recovered = self._store.recover_in_flight()
        if recovered:
            log.info("%d deliveries left in flight by an earlier process are due again", recovered)
        self._stopping = False
        for index in range(self._worker_count):
            thread = threading.Thread(
                target=self._run, name=f"ductape-delivery-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, wait_s: float | None = None) -> None:
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify_all()
        deadline = time.monotonic() + (self._timeout + 1.0 if wait_s is None else wait_s)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        self._deadlines.stop()
        # what was sent is written before the process ends
        self._recorder.stop(max(1.0, deadline - time.monotonic()))

    def wake(self, urls: Iterable[str] | None = None) -> None:
        """Wakes one sleeping thread: new deliveries are due, to these receiver urls (None: any).

        When every one of ``urls`` goes to a destination already at its share, nobody is woken: a
        sleeping thread could not claim them, only look through the whole backlog to find that out,
        and each thread holding that destination claims again as soon as its batch is done."""
        if urls is not None:
            share, busy = self._share, self._busy
            if all(busy.get(destination_key(url), 0) >= share for url in urls):
                return
        with self._wakeup:
            self._generation += 1
            self._wakeup.notify()

    # --- the loop of each thread ---------------------------------------------------------------

    def _run(self) -> None:
        connections = _Connections(ssl.create_default_context())
        try:
            while not self._stopping:
                with self._wakeup:
                    seen_generation = self._generation
                next_due = None
                try:
                    self._release_unreleased()
                    batch = self._claim()
                    if batch:
                        self._deliver_batch(connections, batch)
                        continue
                    next_due = self._next_due()
                except Exception:  # keep the thread alive: the store may be busy or briefly unreadable
                    log.exception("delivery worker iteration failed")
                wait_s = IDLE_RECHECK_S
                if next_due is not None:
                    wait_s = min(wait_s, max(0.0, next_due - time.time()))
                with self._wakeup:
                    if self._generation == seen_generation and not self._stopping:
                        self._wakeup.wait(wait_s)
        finally:
            connections.close()
            self._store.close_thread_connection()

    def _saturated(self) -> list[str]:
        """What the next claim skips: the destinations at their share, and the urls in flight to them."""
        keys = [key for key, count in self._busy.items() if count >= self._share]
        if not keys:
            return []
        full = set(keys)
        return [f"url:{url}" for url in self._urls if destination_key(url) in full] + keys

    def _claim(self) -> list[ClaimedDelivery]:
        """Claims due deliveries to one receiver url, counting this thread against its destination.

        Looking past saturated destinations reads every delivery waiting for them (a backlog behind a
        busy or hanging receiver), so a look that found nothing is not repeated by the other threads
        until something may have changed: a wake-up, another destination saturated or freed, the next
        due time it found, or IDLE_RECHECK_S (for events another process committed)."""
        with self._claim_lock:
            exclude = tuple(self._saturated())
            if exclude and self._nothing_still(exclude):
                return []
            generation = self._generation
            batch = self._store.claim_due_batch(exclude=exclude, limit=self._batch_size)
            if not batch and exclude:
                next_due = self._store.next_due_at(exclude=exclude)
                until = time.time() + IDLE_RECHECK_S
                self._nothing_past = (exclude, generation, until if next_due is None else min(until, next_due),
                                      next_due)
            if batch:
                url = batch[0].url
                key = destination_key(url)
                self._busy[key] = self._busy.get(key, 0) + 1
                self._urls[url] = self._urls.get(url, 0) + 1
            return batch

    def _nothing_still(self, exclude: tuple[str, ...]) -> bool:
        last = self._nothing_past
        return (last is not None and last[0] == exclude and last[1] == self._generation
                and time.time() < last[2])

    def _next_due(self) -> float | None:
        """When the next delivery this thread could claim is due (None: none waiting)."""
        exclude = tuple(self._saturated())
        with self._claim_lock:
            if exclude and self._nothing_still(exclude):
                return self._nothing_past[3]
        return self._store.next_due_at(exclude=exclude)

    def _batch_size(self, url: str) -> int:
        """Deliveries to one url claimed together: a batch only while the url's last attempt was
        answered, so that a receiver that stopped answering holds one claimed delivery per thread."""
        return CLAIM_BATCH if self._answering.get(url, False) else 1

    def _done(self, claimed: ClaimedDelivery) -> None:
        key = destination_key(claimed.url)
        with self._claim_lock:
            for counts, name in ((self._busy, key), (self._urls, claimed.url)):
                left = counts.get(name, 1) - 1
                if left > 0:
                    counts[name] = left
                else:
                    counts.pop(name, None)
        # no wake-up needed: this thread claims next, deliveries to this destination included

    def _deliver_batch(self, connections: _Connections, batch: list[ClaimedDelivery]) -> None:
        try:
            for index, claimed in enumerate(batch):
                result = self._deliver(connections, claimed)
                rest = batch[index + 1:]
                if rest and (self._stopping or result.status_code is None):
                    # the receiver did not answer (or the server stops): the rest of the batch is not
                    # held behind it; it is due again at once, without an attempt counted
                    now = time.time()
                    for unsent in rest:
                        self._release(unsent, now, delay=0.0)
                    return
        finally:
            self._done(batch[0])

    def _deliver(self, connections: _Connections, claimed: ClaimedDelivery) -> SendResult:
        try:
            result = self._attempt(connections, claimed)
        except Exception as exc:  # whatever failed, it is an attempt without an answer
            log.warning("delivery attempt %s failed unexpectedly: %s", claimed.event_id, type(exc).__name__)
            try:
                error = _unexpected_error(exc, claimed.url)
            except Exception:  # pylint: disable=broad-except
                error = f"attempt failed ({type(exc).__name__})"
            result = SendResult(None, error, None, 0.0)
        self._record(claimed, result)
        return result

    def _record(self, claimed: ClaimedDelivery, result: SendResult) -> None:
        now = time.time()
        try:
            schedule = self._schedule
            if claimed.max_attempts is not None:  # a test event's own bound on its attempts
                schedule = schedule[:max(0, claimed.max_attempts - 1)]
            state, next_at = decide(result, claimed.round_attempt_number, schedule, now)
            reason = None
            if state == FAILED:
                reason = dead_letter_reason(result, claimed.attempt_number, claimed.round_attempt_number,
                                            schedule)
            if state == DELIVERED:
                # before the outcome is written, so that a delivery read as delivered implies an active registration
                self._mark_active(claimed.registration_uuid)
            outcome = AttemptOutcome(
                at=now - result.latency_ms / 1000.0,
                status_code=result.status_code,
                latency_ms=result.latency_ms,
                error=attempt_error(result),
                state=state,
                next_attempt_at=next_at,
                dead_letter_reason=reason,
            )
        except Exception:
            log.exception("could not decide the outcome of %s; it is due again", claimed.event_id)
            self._release(claimed, now)
            return
        self._answering[claimed.url] = result.status_code is not None
        if len(self._answering) > MAX_IDLE_CONNECTIONS * 32:
            self._answering.clear()
        self._recorder.put(claimed, outcome)

    def _release(self, claimed: ClaimedDelivery, now: float, delay: float | None = None) -> None:
        if delay is None:
            delay = self._schedule[0] if self._schedule else IDLE_RECHECK_S
        try:
            self._store.release(claimed.event_id, now + delay)
        except Exception:
            log.exception("could not release %s; trying again later", claimed.event_id)
            with self._claim_lock:
                self._unreleased.append(claimed)

    def _release_unreleased(self) -> None:
        if not self._unreleased:
            return
        with self._claim_lock:
            waiting, self._unreleased = self._unreleased, []
        for claimed in waiting:
            self._release(claimed, time.time())

    def _write_outcomes(self, outcomes: list[tuple[ClaimedDelivery, AttemptOutcome]]) -> None:
        """The recorder thread's writer: one transaction for every outcome waiting; if it fails, each
        delivery is given back, due again, so none stays in flight."""
        try:
            self._store.record_attempts(outcomes)
        except Exception:
            log.exception("could not record %d attempts; they are due again", len(outcomes))
            now = time.time()
            for claimed, _ in outcomes:
                self._release(claimed, now)
            return
        if any(outcome.state == PENDING for _, outcome in outcomes):
            self.wake()  # a retry may be due sooner than the sleeping threads think

    # --- one attempt ---------------------------------------------------------------------------

    def _attempt(self, connections: _Connections, claimed: ClaimedDelivery) -> SendResult:
        started = time.monotonic()
        deadline = started + self._timeout
        url = delivery_url(claimed)
        try:
            scheme, host, port, target = _request_parts(url)
            refusal = self._refusal(url)
            if refusal is not None:
                raise _Refused(refusal)
        except _Refused as refused:
            return SendResult(None, str(refused), None, _elapsed_ms(started), retryable=False)
        except (ValueError, UnicodeError) as exc:
            return SendResult(None, f"receiver url {mask_url(claimed.url)} cannot be used: {_text(exc, url)}",
                              None, _elapsed_ms(started))
        headers = forwarded_headers(claimed)
        credentials = _basic_credentials(url)
        if credentials is not None:
            # credentials inside the receiver url are sent as HTTP Basic auth, as HTTP clients do
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            headers["Authorization"] = credentials
        body = claimed.body
        if body or claimed.method not in ("GET", "HEAD"):
            headers["Content-Length"] = str(len(body))
        request = _request_bytes(claimed.method, target, _host_header(scheme, host, port), headers, body)
        key = destination_key(url)
        conn, reused = connections.take(key, scheme, host, port)
        watch = self._deadlines.watch(deadline, conn)
        try:
            try:
                response = _exchange(conn, claimed.method, request, deadline)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if not reused or watch.expired:
                    raise
                # the receiver closed the kept-alive connection meanwhile: once more on a new one
                conn.close()
                watch.done = True
                conn = connections.new(scheme, host, port)
                watch = self._deadlines.watch(deadline, conn)
                response = _exchange(conn, claimed.method, request, deadline)
            status = response.status
            retry_after = parse_retry_after(response.getheader("Retry-After"), time.time())
            try:
                response.read(DRAIN_BYTES)
            except (OSError, http.client.HTTPException):  # the status already decides the outcome
                pass
            finished = response.isclosed()
            response.close()
            if finished and not response.will_close and not watch.expired:
                connections.keep(key, conn)
            else:
                conn.close()
            return SendResult(status, None, retry_after, _elapsed_ms(started))
        except Exception as exc:
            conn.close()
            if watch.expired or isinstance(exc, (socket.timeout, TimeoutError)):
                error = f"no answer within the delivery timeout of {self._timeout:g}s"
            elif isinstance(exc, http.client.HTTPException):
                error = f"unreadable answer ({type(exc).__name__}): {_text(exc, url)}"
            elif isinstance(exc, OSError):
                error = f"connection error ({type(exc).__name__}): {_text(exc, url)}"
            else:
                raise
            return SendResult(None, error, None, _elapsed_ms(started))
        finally:
            watch.done = True

    def _refusal(self, url: str) -> str | None:
        if self._destination_config is None:
            return None
        return destination_refusal(url, self._destination_config)

    def _mark_active(self, registration_uuid: str) -> None:
        if self._on_delivered is None or registration_uuid in self._known_active:
            return
        try:
            self._on_delivered(registration_uuid)
            self._known_active.add(registration_uuid)
        except Exception:  # the delivery itself succeeded; the flag is retried on the next one
            log.exception("could not mark registration %s active", registration_uuid)


def _request_parts(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, request target) of a receiver url; ValueError/UnicodeError when unusable."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"scheme {scheme!r} is not http or https")
    host = parts.hostname
    if not host:
        raise ValueError("it has no host")
    port = parts.port or (443 if scheme == "https" else 80)
    if ":" not in host:
        host.encode("idna")  # a label over 63 characters, or an empty one, raises here
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in target):
        raise ValueError("its path or query holds a control character or space")
    return scheme, host, port, target


def _basic_credentials(url: str) -> str | None:
    """The Authorization value for the userinfo of a url (``user:password@``), or None without one."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return None
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    return "Basic " + base64.b64encode(pair.encode("latin-1", "replace")).decode("ascii")


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")


def _host_header(scheme: str, host: str, port: int) -> str:
    name = f"[{host}]" if ":" in host else (host if host.isascii() else host.encode("idna").decode("ascii"))
    default = 443 if scheme == "https" else 80
    return name if port == default else f"{name}:{port}"


def _request_bytes(method: str, target: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    """The whole request, head and body; ValueError for a method, header name or value that HTTP
    cannot carry (so that nothing a provider sent can inject a header)."""
    if not _TOKEN.fullmatch(method):
        raise ValueError(f"method {method!r} is not an HTTP token")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"header name {name!r} is not an HTTP token")
        if _BAD_VALUE.search(value):
            raise ValueError(f"header {name} holds a line break or NUL")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _exchange(conn: _Connection, method: str, request: bytes, deadline: float) -> http.client.HTTPResponse:
    """Sends the request in one write and reads the answer's status line and headers."""
    remaining = max(0.001, deadline - time.monotonic())
    if conn.sock is None:
        conn.open(remaining)
    else:
        conn.sock.settimeout(remaining)
    conn.sock.sendall(request)
    response = http.client.HTTPResponse(conn.sock, method=method)
    try:
        response.begin()
    except BaseException:
        response.close()
        raise
    return response


def _elapsed_ms(started: float) -> float:
    return (time.monotonic() - started) * 1000.0


def _text(exc: BaseException, url: str) -> str:
    """An exception's text, with the url's credentials masked should it quote them."""
    text = str(exc) or type(exc).__name__
    authority = url.partition("://")[2].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    userinfo = authority.rpartition("@")[0]
    text = text.replace(url, mask_url(url))
    if userinfo:
        for secret in {userinfo, *userinfo.split(":", 1)}:
            if secret:
                text = text.replace(secret, "********")
    return text


def _unexpected_error(exc: BaseException, url: str) -> str:
    return f"attempt failed ({type(exc).__name__}): {_text(exc, url)}"


def retry_schedule_argument(text: str) -> tuple[float, ...]:
    """parse_retry_schedule for argparse, whose usage error then carries the reason."""
    import argparse

    try:
        return parse_retry_schedule(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
