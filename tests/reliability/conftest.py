"""The figures of the reliability suite, printed at the end of the run, kept in tests/output, and
compared with the block docs/reliability.md shows.

The last word is the secret search over everything the session printed and every server log:
a hit fails the run even when each test passed on its own.

The figures block of docs/reliability.md (between FIGURES_BEGIN and FIGURES_END) is what a whole run
of the suite measures: when every test of tests/reliability was selected and passed, a block that
differs from the run's fails it (RELIABILITY_UPDATE_DOCS=1 rewrites the block instead). A run of some
of the tests (a path, -k, a failure) compares nothing: its figures count only what it ran; the whole
suite in reverse order (--reliability-reverse) measures the same figures and is compared too. Every
figure in the block is one that a run repeats exactly (the characters searched, which grow with
every line any tool prints, are printed below the block but not written into it).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import reliability_harness as harness

HERE = Path(__file__).resolve().parent
FIGURES_BEGIN = "<!-- reliability-figures:begin (written by tests/reliability/conftest.py) -->"
FIGURES_END = "<!-- reliability-figures:end -->"

FIGURE_ORDER = [
    ("bad inputs tried", "bad inputs tried"),
    ("bad inputs refused with field and value", "refused with field and value"),
    ("faults ridden", "faults ridden"),
    ("faults exhausted", "retries exhausted, failed clearly"),
    ("server kills", "server kills survived"),
    ("forks", "forks that ran at once"),
    ("concurrent writers of one env", "writers of one env at the server at once"),
    ("fuzz cases", "fuzz cases"),
    ("fuzz operations", "fuzz operations"),
    ("fuzz operations answering other than 404", "fuzz operations answering other than 404"),
    ("secrets planted", "secrets planted"),
    ("playbook runs", "playbook runs"),
    ("outputs searched", "outputs searched for secrets"),
    ("secrets found", "secrets found"),
]

_DESELECTED: list[str] = []
_DOCS: dict[str, str] = {}


def figures_block(figures: dict[str, int]) -> str:
    lines = [f"{label}: {figures[key]}" for key, label in FIGURE_ORDER if key in figures]
    return "```text\n" + "\n".join(lines) + "\n```"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--reliability-reverse", action="store_true", default=False,
                     help="run the reliability tests in the reverse of their usual order: each test must pass "
                          "whatever ran before it (and alone: pytest PATH::TEST)")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    if config.getoption("--reliability-reverse"):
        items.reverse()


def pytest_deselected(items) -> None:
    _DESELECTED.extend(item.nodeid for item in items)


def _whole_suite(session: pytest.Session) -> bool:
    """Whether this session selected every test of tests/reliability and every one passed."""
    paths = {Path(arg.split("::", 1)[0]).resolve() for arg in session.config.args}
    return (paths == {HERE} and not _DESELECTED and session.testscollected > 0
            and session.testsfailed == 0 and not session.shouldfail and not session.shouldstop)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    hits = harness.secret_hits()
    harness.FIGURES["secrets found"] = len(hits)
    harness.FIGURES["outputs searched"] = len(harness.OUTPUTS)
    harness.FIGURES["bytes searched"] = sum(len(text) for _label, text in harness.OUTPUTS)
    harness.OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    block = figures_block(harness.FIGURES)
    (harness.OUTPUT_DIR / "figures.md").write_text(block + "\n", encoding="utf-8")
    (harness.OUTPUT_DIR / "figures.json").write_text(
        json.dumps({"figures": dict(harness.FIGURES), "details": harness.DETAILS,
                    "secret_hits": [{"output": label, "planted_as": where} for label, where in hits]},
                   indent=2, sort_keys=True),
        encoding="utf-8",
    )
    if hits and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if not _whole_suite(session):
        _DOCS["verdict"] = "not compared with docs/reliability.md (not every test of tests/reliability ran and passed)"
        return
    documented = harness.documented_block(FIGURES_BEGIN, FIGURES_END, block)
    doc = harness.DOC.relative_to(harness.REPO)
    if documented is None:
        _DOCS["verdict"] = f"FAIL: {doc} has no figures block markers ({FIGURES_BEGIN} ... {FIGURES_END})"
    elif documented != block:
        _DOCS["verdict"] = (f"FAIL: the figures block of {doc} differs from this run's "
                            f"({(harness.OUTPUT_DIR / 'figures.md').relative_to(harness.REPO)}); "
                            f"rewrite it with {harness.UPDATE_DOCS}=1 make test-reliability")
        _DOCS["documented"] = documented
    else:
        _DOCS["verdict"] = f"the figures block of {doc} is this run's"
        return
    if session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    figures = harness.FIGURES
    hits = harness.secret_hits()
    write = terminalreporter.write_line
    terminalreporter.section("reliability figures")
    for line in figures_block(figures).splitlines()[1:-1]:
        write(line)
    write(f"characters searched for secrets: {figures['bytes searched']}")
    for label, where in hits:
        write(f"  SECRET LEAK: the secret planted as {where} appears in {label}")
    if "verdict" in _DOCS:
        write(_DOCS["verdict"])
    if "documented" in _DOCS:
        write("documented:")
        for line in _DOCS["documented"].splitlines():
            write("  " + line)
