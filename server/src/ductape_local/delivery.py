"""The delivery worker: takes due deliveries from the event store and sends them to the receivers.

A few threads, each with its own requests.Session (sessions are not thread-safe) and its own SQLite
connection, claim one due delivery at a time, send it, and record the attempt. The ingress route
wakes them after each insert; otherwise they sleep until the next retry is due.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

import requests

from .events import DELIVERED, FAILED, PENDING, AttemptOutcome, ClaimedDelivery, EventStore

log = logging.getLogger("ductape_local.delivery")

DEFAULT_RETRY_SCHEDULE = (1.0, 5.0, 30.0, 120.0, 600.0)
DEFAULT_DELIVERY_TIMEOUT = 10.0
DEFAULT_WORKERS = 8
# A receiver asking for more than a day is treated as asking for a day.
MAX_RETRY_AFTER = 86400.0
# Idle threads look at the store at least this often, in case a wake-up was missed.
IDLE_RECHECK_S = 1.0

RETRYABLE_STATUSES = frozenset({408, 425, 429})
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
# Host names the middleware, not the receiver; the client recomputes Content-Length.
NOT_FORWARDED_HEADERS = HOP_BY_HOP_HEADERS | {"host", "content-length"}
EVENT_ID_HEADER = "X-Ductape-Event-Id"
WEBHOOK_TAG_HEADER = "X-Ductape-Webhook-Tag"
ENV_HEADER = "X-Ductape-Env"
_OWN_HEADERS = frozenset(h.lower() for h in (EVENT_ID_HEADER, WEBHOOK_TAG_HEADER, ENV_HEADER))


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
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment is None:
        return None
    return min(max(moment.timestamp() - now, 0.0), MAX_RETRY_AFTER)


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
    headers[EVENT_ID_HEADER] = claimed.event_id
    headers[WEBHOOK_TAG_HEADER] = claimed.webhook_tag
    headers[ENV_HEADER] = claimed.env
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


def decide(
    result: SendResult, round_attempt_number: int, schedule: tuple[float, ...], now: float
) -> tuple[str, float | None]:
    """What an attempt leads to: (DELIVERED | FAILED | PENDING, when the next attempt is due)."""
    code = result.status_code
    if code is not None and 200 <= code < 300:
        return DELIVERED, None
    retryable = code is None or code in RETRYABLE_STATUSES or code >= 500
    if not retryable or round_attempt_number > len(schedule):
        return FAILED, None
    delay = schedule[round_attempt_number - 1]
    if result.retry_after is not None:
        delay = max(delay, result.retry_after)
    return PENDING, now + delay


def attempt_error(result: SendResult) -> str | None:
    if result.error is not None:
        return result.error
    if result.status_code is not None and not 200 <= result.status_code < 300:
        return f"receiver answered HTTP {result.status_code}"
    return None


class DeliveryWorker:
    def __init__(
        self,
        store: EventStore,
        *,
        retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE,
        timeout: float = DEFAULT_DELIVERY_TIMEOUT,
        workers: int = DEFAULT_WORKERS,
        on_delivered: Callable[[str], None] | None = None,
    ):
        self._store = store
        self._schedule = tuple(retry_schedule)
        self._timeout = timeout
        self._worker_count = max(1, workers)
        self._on_delivered = on_delivered
        self._known_active: set[str] = set()
        self._wakeup = threading.Condition()
        # bumped on every wake(): a thread that saw no work sleeps only if nothing arrived since it looked
        self._generation = 0
        self._stopping = False
        self._threads: list[threading.Thread] = []

    @property
    def retry_schedule(self) -> tuple[float, ...]:
        return self._schedule

    def start(self) -> None:
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

    def wake(self) -> None:
        with self._wakeup:
            self._generation += 1
            self._wakeup.notify()

    def _run(self) -> None:
        session = requests.Session()
        # The worker talks to receivers directly: no proxy variables, no .netrc credentials.
        session.trust_env = False
        session.headers.clear()
        session.headers["User-Agent"] = "ductape-local"
        try:
            while not self._stopping:
                with self._wakeup:
                    seen_generation = self._generation
                try:
                    claimed = self._store.claim_due()
                    if claimed is not None:
                        self._deliver(session, claimed)
                        continue
                    next_due = self._store.next_due_at()
                except Exception:  # keep the thread alive: the store may be busy or briefly unreadable
                    log.exception("delivery worker iteration failed")
                    next_due = None
                wait_s = IDLE_RECHECK_S
                if next_due is not None:
                    wait_s = min(wait_s, max(0.0, next_due - time.time()))
                with self._wakeup:
                    if self._generation == seen_generation and not self._stopping:
                        self._wakeup.wait(wait_s)
        finally:
            session.close()
            self._store.close_thread_connection()

    def _deliver(self, session: requests.Session, claimed: ClaimedDelivery) -> None:
        result = self._send(session, claimed)
        now = time.time()
        state, next_at = decide(result, claimed.round_attempt_number, self._schedule, now)
        if state == DELIVERED:
            # before the outcome is written, so that a delivery read as delivered implies an active registration
            self._mark_active(claimed.registration_uuid)
        self._store.record_attempt(
            claimed,
            AttemptOutcome(
                at=now - result.latency_ms / 1000.0,
                status_code=result.status_code,
                latency_ms=result.latency_ms,
                error=attempt_error(result),
                state=state,
                next_attempt_at=next_at,
            ),
        )

    def _send(self, session: requests.Session, claimed: ClaimedDelivery) -> SendResult:
        started = time.monotonic()
        try:
            response = session.request(
                claimed.method,
                delivery_url(claimed),
                data=claimed.body,
                headers=forwarded_headers(claimed),
                timeout=self._timeout,
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout:
            error = f"no answer within the delivery timeout of {self._timeout:g}s"
            return SendResult(None, error, None, _elapsed_ms(started))
        except requests.RequestException as exc:
            return SendResult(None, _connection_error(exc), None, _elapsed_ms(started))
        try:
            # The answer's body is not kept; reading a little lets the connection be reused.
            response.raw.read(65536, decode_content=False)
        except Exception:  # the status already decides the outcome
            pass
        finally:
            response.close()
        retry_after = parse_retry_after(response.headers.get("Retry-After"), time.time())
        return SendResult(response.status_code, None, retry_after, _elapsed_ms(started))

    def _mark_active(self, registration_uuid: str) -> None:
        if self._on_delivered is None or registration_uuid in self._known_active:
            return
        try:
            self._on_delivered(registration_uuid)
            self._known_active.add(registration_uuid)
        except Exception:  # the delivery itself succeeded; the flag is retried on the next one
            log.exception("could not mark registration %s active", registration_uuid)


def _elapsed_ms(started: float) -> float:
    return (time.monotonic() - started) * 1000.0


def _connection_error(exc: requests.RequestException) -> str:
    kind = type(exc).__name__
    reason = exc.args[0] if exc.args else exc
    # urllib3 wraps the root cause several levels deep; its innermost text is the useful part
    while getattr(reason, "reason", None) is not None:
        reason = reason.reason
    return f"connection error ({kind}): {reason}"


def retry_schedule_argument(text: str) -> tuple[float, ...]:
    """parse_retry_schedule for argparse, whose usage error then carries the reason."""
    import argparse

    try:
        return parse_retry_schedule(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
