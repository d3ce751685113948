"""The figures of the reliability suite, printed at the end of the run and kept in tests/output.

The last word is the secret search over everything the session printed and every server log:
a hit fails the run even when each test passed on its own.
"""
from __future__ import annotations

import json

import pytest

import reliability_harness as harness

FIGURE_ORDER = [
    ("bad inputs tried", "bad inputs tried"),
    ("bad inputs refused with field and value", "refused with field and value"),
    ("faults ridden", "faults ridden"),
    ("faults exhausted", "retries exhausted, failed clearly"),
    ("server kills", "server kills survived"),
    ("forks", "forks"),
    ("concurrent writers of one env", "concurrent writers of one env"),
    ("fuzz cases", "fuzz cases"),
    ("secrets planted", "secrets planted"),
    ("playbook runs", "playbook runs"),
]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    hits = harness.secret_hits()
    harness.FIGURES["secrets found"] = len(hits)
    harness.FIGURES["outputs searched"] = len(harness.OUTPUTS)
    harness.FIGURES["bytes searched"] = sum(len(text) for _label, text in harness.OUTPUTS)
    harness.OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    (harness.OUTPUT_DIR / "figures.json").write_text(
        json.dumps({"figures": dict(harness.FIGURES), "details": harness.DETAILS,
                    "secret_hits": [{"output": label, "planted_as": where} for label, where in hits]},
                   indent=2, sort_keys=True),
        encoding="utf-8",
    )
    if hits and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    figures = harness.FIGURES
    hits = harness.secret_hits()
    write = terminalreporter.write_line
    terminalreporter.section("reliability figures")
    for key, label in FIGURE_ORDER:
        if key in figures:
            write(f"{label}: {figures[key]}")
    write(f"outputs searched for secrets: {len(harness.OUTPUTS)} ({sum(len(text) for _label, text in harness.OUTPUTS)} characters)")
    write(f"secrets found: {len(hits)}")
    for label, where in hits:
        write(f"  SECRET LEAK: the secret planted as {where} appears in {label}")
