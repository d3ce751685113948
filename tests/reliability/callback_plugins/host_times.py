"""A callback for the reliability suite: when each host's task started and ended, as the controller
saw it, one JSON line per event in the file named by RELIABILITY_HOST_TIMES.

A task starts for a host when the controller hands it to a fork, and ends when the fork's result comes
back; test_concurrency.py reads these lines to show how many forks ran at once.
"""
from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: host_times
    type: aggregate
    short_description: when each host's task started and ended
    description: One JSON line per task start and end, in the file named by RELIABILITY_HOST_TIMES.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "host_times"
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, event: str, host: str, task: str) -> None:
        path = os.environ.get("RELIABILITY_HOST_TIMES")
        if path:
            with open(path, "a", encoding="utf-8") as out:
                out.write(json.dumps({"event": event, "host": host, "task": task, "at": time.monotonic()}) + "\n")

    def v2_runner_on_start(self, host, task):
        self._write("start", host.get_name(), task.get_name())

    def _end(self, result, *args, **kwargs):
        self._write("end", result._host.get_name(), result._task.get_name())

    v2_runner_on_ok = v2_runner_on_failed = v2_runner_on_skipped = v2_runner_on_unreachable = _end
