"""Back-pressure: a receiver that falls behind slows the senders of its events, instead of letting its
backlog grow without bound.

The rule, per receiver url: when its oldest pending delivery (due, not yet taken by a delivery thread)
has waited more than ``--backpressure-lag`` seconds past its due time, each new event for that url is
held before it is stored, until the lag is back under the limit or ``--backpressure-hold`` seconds have
passed; then it is stored and answered 202 as usual. An event is never refused for back-pressure: the
provider only sees a slower answer (a few seconds at most, well within the timeouts providers give a
webhook answer), so a provider that does not retry (or retries only hours later) loses nothing, and one
that sends on a fixed number of connections sends at about the rate the receiver takes.

Only the lagging url is held: other receivers' events (other tenants) are answered as fast as ever.
Deliveries waiting for a later retry are not due, so a receiver that fails some events does not hold
the others; a receiver that hangs does, once its due deliveries wait past the lag (its share of the
delivery threads is taken, so its backlog waits).

One thread looks every REFRESH_S at the urls that got events since its last look or still have pending
deliveries (one index lookup each); the accept path only tests whether its url is in the set it found.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Iterable

from .auth_digest import mask_url
from .events import EventStore

log = logging.getLogger("ductape_local.backpressure")

# How often the lagging urls are looked up, and how often a held event looks whether it may go on.
REFRESH_S = 0.1
HOLD_POLL_S = 0.05
# A url that starts lagging is logged at most once in this many seconds (a paced sender goes in and out).
LOG_EVERY_S = 60.0


class Backpressure:
    def __init__(self, events: EventStore, lag: float, hold: float):
        self._events = events
        self.lag = float(lag)
        self.hold = float(hold)
        self._lagging: frozenset[str] = frozenset()
        # urls that got events since the last look (the group commit adds them), and the urls to look at
        self._fresh: set[str] = set()
        self._watched: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._logged: dict[str, float] = {}  # url -> when its lag was last logged
        # events held, and of those accepted when their hold ran out (for the log and the tests)
        self.held = 0
        self.held_out = 0

    @property
    def enabled(self) -> bool:
        return self.lag > 0

    def note(self, urls: Iterable[str]) -> None:
        """Events for these receiver urls were just stored (called by the group commit)."""
        if self.enabled:
            with self._lock:
                self._fresh.update(urls)

    def lagging(self, url: str | None) -> bool:
        return url is not None and url in self._lagging

    async def admit(self, url: str | None) -> None:
        """Returns at once unless deliveries to `url` lag; then once they no longer do, or after the hold."""
        if url is None or url not in self._lagging:
            return
        self.held += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.hold
        while url in self._lagging:
            remaining = deadline - loop.time()
            if remaining <= 0:
                self.held_out += 1
                return
            await asyncio.sleep(min(HOLD_POLL_S, remaining))

    def start(self) -> None:
        if not self.enabled or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ductape-backpressure", daemon=True)
        self._thread.start()

    def stop(self, wait_s: float = 2.0) -> None:
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join(wait_s)
        self._lagging = frozenset()

    def _run(self) -> None:
        try:
            while not self._stop.wait(REFRESH_S):
                try:
                    self._look()
                except Exception as error:  # pylint: disable=broad-except  # the store may be busy: next look
                    log.warning("back-pressure: could not read the delivery backlog: %s", type(error).__name__)
        finally:
            self._events.close_thread_connection()

    def _look(self) -> None:
        with self._lock:
            fresh, self._fresh = self._fresh, set()
        oldest = self._events.oldest_pending(self._watched | fresh)
        self._watched = set(oldest)
        behind = time.time() - self.lag
        lagging = frozenset(url for url, due in oldest.items() if due <= behind)
        now = time.monotonic()
        for url in lagging - self._lagging:
            if now - self._logged.get(url, -LOG_EVERY_S) >= LOG_EVERY_S:
                self._logged[url] = now
                log.info("back-pressure: deliveries to %s wait more than %gs; its new events are held (at most "
                         "%gs each; %d held so far, %d of them accepted when their hold ran out)",
                         mask_url(url), self.lag, self.hold, self.held, self.held_out)
        if len(self._logged) > 4096:
            self._logged.clear()
        self._lagging = lagging
