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

.PHONY: help venv collection demo test test-server test-unit test-integration test-role \
        test-sanity test-docs test-lint test-build clean

help:
	@echo "make demo   - start ductape-local, register the example webhooks, show the result"
	@echo "make test   - every check the project has (what CI runs)"

$(STAMP): requirements-dev.txt server/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt -e ./server
	$(BIN)/python -c "import ansible, requests, ductape_local"
	touch $@

venv: $(STAMP)

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn $(CURDIR) $@

collection: venv $(COLLECTION_LINK)

demo: collection
	$(BIN)/python scripts/demo.py

test: test-server test-dashboard test-unit test-integration test-role test-sanity test-docs test-lint test-build test-bench \
      test-reliability test-matrix
	@echo "make test: every check passed"

test-server: venv
	$(BIN)/python -m pytest -q server/tests --ignore=server/tests/test_dashboard_browser.py

.PHONY: test-dashboard
# The dashboard in headless chromium (Playwright driving Debian's chromium; scripts/setup-browser.sh
# installs what is missing when run as root, as CI does).
test-dashboard: venv
	scripts/setup-browser.sh
	$(BIN)/python -m pytest -q server/tests/test_dashboard_browser.py

# The unit tests under plain pytest, then as `ansible-test units` runs them (scripts/test-units.sh).
test-unit: collection
	$(BIN)/python -m pytest -q tests/unit
	scripts/test-units.sh

test-integration: collection
	$(BIN)/python -m pytest -q tests/integration

.PHONY: test-reliability
# Bad inputs, faults, kills, forks, secrets and fuzzing; prints its figures at the end.
test-reliability: collection
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/reliability

.PHONY: test-matrix
# The oldest and the newest ansible-core the collection claims, each in its own virtualenv under
# .build/matrix/ (docs/developing.md, "Every ansible-core the collection claims").
test-matrix: collection
	scripts/test-matrix.sh

test-role: collection
	scripts/test-role.sh

test-sanity: collection
	scripts/test-sanity.sh

test-docs: collection
	scripts/test-docs.sh

test-lint: collection
	scripts/test-lint.sh

test-build: collection
	scripts/test-build.sh

.PHONY: bench test-bench
# The speed figures of benchmarks/README.md (minutes); not part of `make test`.
bench: collection
	$(BIN)/python benchmarks/run.py

# The same benchmark once at a tiny size, so that it keeps working; judges request counts, not time.
test-bench: collection
	$(BIN)/python benchmarks/run.py --smoke

clean:
	rm -rf .build tests/output
