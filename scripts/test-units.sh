#!/usr/bin/env bash
# The unit tests as ansible-test runs them (`ansible-test units`), the way a collection's maintainers
# and CI run them: on a copy of the collection (scripts/collection-copy.sh), with .venv's Python 3.11
# (--local: the tests also check the client against ductape-local's code, installed in .venv only).
# ansible-test sorts tests/unit/plugins/{modules,module_utils} into its "modules" run, isolated from
# controller code, and the rest into its "controller" run, so a test placed under the wrong <type>
# fails here and not under plain pytest (`make test-unit`). Afterwards the number of tests ansible-test
# ran must equal the number plain pytest collects: none is left out by either.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BIN=${VENV_BIN:-$REPO/.venv/bin}
# shellcheck source=scripts/collection-copy.sh
source "$REPO/scripts/collection-copy.sh"
export PATH="$BIN:$PATH"
PYTHON_VERSION=3.11
TYPES="action|filter|module_utils|modules|plugin_utils"

fail() { echo "test-units: FAIL: $*" >&2; exit 1; }
step() { echo "test-units: $*"; }

command -v ansible-test >/dev/null || fail "ansible-test is missing from $BIN: run \`make venv\`"
"$BIN/python" -c 'import xdist' 2>/dev/null || fail "pytest-xdist (ansible-test units runs pytest -n) is missing from $BIN: run \`make venv\`"

# Every unit test lives at tests/unit/plugins/<type>/test_<name>.py, the layout ansible-test expects.
misplaced=$(git ls-files --cached --others --exclude-standard 'tests/unit/**test_*.py' 'tests/unit/test_*.py' \
  | grep -vE "^tests/unit/plugins/($TYPES)/test_[^/]+\.py$" || true)
[[ -z $misplaced ]] || fail "unit tests outside tests/unit/plugins/<type>/ ($TYPES):"$'\n'"$misplaced"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ductape-units.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
COPY=$(copy_collection "$REPO" "$WORK")

cd "$COPY"
export ANSIBLE_NOCOLOR=1
step "ansible-test units --local --python $PYTHON_VERSION"
start=$SECONDS
if ! ansible-test units --local --python "$PYTHON_VERSION" --color no "$@" >"$WORK/units.log" 2>&1; then
  cat "$WORK/units.log" >&2
  fail "ansible-test units failed"
fi
grep -E '^(Unit test |=+ .* in [0-9.]+s)' "$WORK/units.log" || true

ran=$("$BIN/python" - tests/output/junit/*.xml <<'PY'
import sys
import xml.etree.ElementTree as ET
total = 0
for path in sys.argv[1:]:
    root = ET.parse(path).getroot()
    for suite in ([root] if root.tag == "testsuite" else root.iter("testsuite")):
        total += int(suite.get("tests", 0))
print(total)
PY
)
cd "$REPO"
collected=$("$BIN/python" -m pytest -q --collect-only -p no:cacheprovider tests/unit | sed -nE 's/^([0-9]+) tests? collected.*/\1/p')
# The unit and integration folders collect in one pytest run (no two test modules with one name).
"$BIN/python" -m pytest -q --collect-only -p no:cacheprovider tests/unit tests/integration >"$WORK/collect.log" 2>&1 \
  || { cat "$WORK/collect.log" >&2; fail "pytest tests/unit tests/integration cannot collect both folders in one run"; }
[[ -n $collected ]] || fail "plain pytest collected nothing from tests/unit"
[[ $ran == "$collected" ]] || fail "ansible-test units ran $ran tests, plain pytest collects $collected from tests/unit"
step "OK: $ran tests in $((SECONDS - start)) s"
