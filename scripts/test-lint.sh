#!/usr/bin/env bash
# ansible-lint, production profile, offline: the role, the examples, the molecule scenario, the test
# playbooks and the collection metadata (galaxy.yml, meta/, the example execution environment).
# What is linted and what is excluded lives in .ansible-lint.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BIN=${VENV_BIN:-$REPO/.venv/bin}
export PATH="$BIN:$PATH"

fail() { echo "test-lint: FAIL: $*" >&2; exit 1; }

# The playbooks name ductape.webhooks.* by FQCN, so ansible-lint must find the collection itself.
LINK="$REPO/.build/collections/ansible_collections/ductape/webhooks"
[[ -e "$LINK" ]] || fail "$LINK is missing: run \`make collection\` (make test-lint does)"
export ANSIBLE_COLLECTIONS_PATH="$REPO/.build/collections"
export ANSIBLE_NOCOLOR=1

for required in roles/register examples; do
  [[ -e "$required" ]] || fail "$required is missing, so it cannot be linted"
done
grep -qE '^profile: production$' .ansible-lint || fail ".ansible-lint must require the production profile"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ductape-lint.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export ANSIBLE_LOCAL_TEMP="$WORK/ansible-tmp"

ansible-lint --offline --nocolor --profile production -f pep8 >"$WORK/lint.txt" 2>&1 || {
  cat "$WORK/lint.txt" >&2
  fail "ansible-lint (production profile) found problems"
}
grep -E '^(Passed|Failed)' "$WORK/lint.txt" || true
echo "test-lint: OK"
