# The two commands the README promises: `make demo` and `make test`. Both set everything up
# themselves (virtualenv, packages, collection path) so that a fresh clone needs only Python 3.11+.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# ansible finds the collection through a link whose path ends in ansible_collections/ductape/webhooks.
COLLECTIONS := $(CURDIR)/.build/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/ductape/webhooks

export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_FORCE_COLOR := false
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Every step of `make test` runs through scripts/timed.sh, which prints "timing: <step>: N s, passed (load
# average before/after)"; `make test` collects those lines in $(TIMINGS_FILE) and prints them at the end.
TIMED := scripts/timed.sh
export TIMINGS_FILE := $(CURDIR)/.build/timings.txt
# pytest-xdist for the suites whose tests are independent of each other: each starts its own ductape-local
# (LocalServer: a free port, its own temporary database) and writes only under its own tmp_path, so two
# processes run them at once; --dist loadfile keeps a file's tests (and its module-scoped servers) in one
# process, in their order. PYTEST_WORKERS=0 runs them in one process.
PYTEST_WORKERS ?= 2
XDIST := -n $(PYTEST_WORKERS) --dist loadfile
# The server tests that measure time (back-pressure lag and hold, header/body/delivery timeouts, dedup
# windows, busy timeouts), race threads (test_concurrency) or kill and restart a server (a restart keeps its
# port, which a server of the other process could take in between): run in a second pass, one at a time,
# so that a second process on the other core never stretches a deadline they assert.
SERVER_SERIAL := $(addprefix server/tests/, test_backpressure.py test_limits.py test_ingress_sigkill.py \
  test_delivery_crash.py test_ingress_group_commit.py test_dedup.py test_delivery_dead_letters.py \
  test_delivery_hardening.py test_delivery_worker.py test_local_server.py test_persistence_and_seed.py \
  test_concurrency.py test_lifecycle_migration.py)

.PHONY: help venv collection demo test test-server test-unit test-integration test-role \
        test-sanity test-docs test-lint test-build clean

help:
	@echo "make demo   - start ductape-local, register the example webhooks, show the result"
	@echo "make test   - every check the project has (what CI runs)"

$(STAMP): requirements-dev.txt server/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(TIMED) "venv (pip install)" $(BIN)/python -m pip install -q -r requirements-dev.txt -e ./server
	$(BIN)/python -c "import ansible, requests, ductape_local"
	touch $@

venv: $(STAMP)

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn $(CURDIR) $@

collection: venv $(COLLECTION_LINK)

demo: collection
	$(BIN)/python scripts/demo.py

# In this order, one after the other (test-timings-start first: it empties $(TIMINGS_FILE)).
test: test-timings-start test-server test-dashboard test-unit test-integration test-role test-sanity test-docs \
      test-lint test-build test-bench test-reliability test-matrix
	@cat $(TIMINGS_FILE)
	@echo "make test: every check passed"

.PHONY: test-timings-start
test-timings-start:
	@mkdir -p $(dir $(TIMINGS_FILE)) && rm -f $(TIMINGS_FILE)

# Two passes: the independent tests two at a time, then SERVER_SERIAL one at a time.
test-server: venv
	$(TIMED) "test-server (parallel)" $(BIN)/python -m pytest -q $(XDIST) server/tests \
	  --ignore=server/tests/test_dashboard_browser.py $(addprefix --ignore=,$(SERVER_SERIAL))
	$(TIMED) "test-server (serial)" $(BIN)/python -m pytest -q $(SERVER_SERIAL)

.PHONY: test-dashboard
# The dashboard in headless chromium (Playwright driving Debian's chromium; scripts/setup-browser.sh
# installs what is missing when run as root, as CI does).
test-dashboard: venv
	$(TIMED) "test-dashboard (setup-browser.sh)" scripts/setup-browser.sh
	$(TIMED) test-dashboard $(BIN)/python -m pytest -q server/tests/test_dashboard_browser.py

# The unit tests under plain pytest, then as `ansible-test units` runs them (scripts/test-units.sh).
test-unit: collection
	$(TIMED) "test-unit (pytest)" $(BIN)/python -m pytest -q tests/unit
	$(TIMED) "test-unit (ansible-test units)" scripts/test-units.sh

test-integration: collection
	$(TIMED) test-integration $(BIN)/python -m pytest -q $(XDIST) tests/integration

.PHONY: test-reliability
# Bad inputs, faults, kills, forks, secrets and fuzzing; prints its figures at the end.
test-reliability: collection
	$(TIMED) test-reliability $(BIN)/python -m pytest -q -p no:cacheprovider tests/reliability

.PHONY: test-matrix
# The oldest and the newest ansible-core the collection claims, each in its own virtualenv under
# .build/matrix/ (docs/developing.md, "Every ansible-core the collection claims").
test-matrix: collection
	$(TIMED) test-matrix scripts/test-matrix.sh

test-role: collection
	$(TIMED) test-role scripts/test-role.sh

test-sanity: collection
	$(TIMED) test-sanity scripts/test-sanity.sh

test-docs: collection
	$(TIMED) test-docs scripts/test-docs.sh

test-lint: collection
	$(TIMED) test-lint scripts/test-lint.sh

test-build: collection
	$(TIMED) test-build scripts/test-build.sh

.PHONY: bench test-bench
# The speed figures of benchmarks/README.md (minutes); not part of `make test`.
bench: collection
	$(BIN)/python benchmarks/run.py

# The same benchmark once at a tiny size, so that it keeps working; judges request counts, not time.
test-bench: collection
	$(TIMED) test-bench $(BIN)/python benchmarks/run.py --smoke

clean:
	rm -rf .build tests/output
