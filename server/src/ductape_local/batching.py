"""One thread that hands every item waiting in its queue to one call: under load one call (one
transaction) serves many items; alone, an item waits for nobody.

The ingress group commit and the delivery recorder are both built on it.
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable

log = logging.getLogger(__name__)

_STOP = object()


class BatchingThread:
    """Takes items from any thread (`put`) and calls `handle(batch)` in its own thread with every item
    waiting, at most `max_batch` at a time, in the order they were put.

    The thread starts with the first item. `handle` deals with its own failures; anything it still
    raises is logged (its type only, since an item may hold request data) and the thread goes on.
    `on_exit` runs in the thread when it ends (for its thread-local database connection).
    """

    def __init__(self, name: str, handle: Callable[[list], None], max_batch: int,
                 on_exit: Callable[[], None] = lambda: None):
        self._name = name
        self._handle = handle
        self._max_batch = max_batch
        self._on_exit = on_exit
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, item: Any) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                    self._thread.start()
        self._queue.put(item)

    def stop(self, wait_s: float) -> None:
        """Handles what is queued already, then ends the thread (waiting for it at most `wait_s`)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(wait_s)

    def _run(self) -> None:
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch, stopping = [first], False
                while len(batch) < self._max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stopping = True
                        break
                    batch.append(item)
                try:
                    self._handle(batch)
                except Exception as error:  # pylint: disable=broad-except  # the thread must go on
                    log.error("%s: a batch of %d failed: %s", self._name, len(batch), type(error).__name__)
                if stopping:
                    return
        finally:
            self._on_exit()
