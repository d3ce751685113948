#!/usr/bin/env bash
# The role's molecule scenario (extensions/molecule/register): converge against a real
# ductape-local --test-mode, idempotence, verify. No containers, no Galaxy, no state outside a temp dir.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

bin="$root/.venv/bin"
if [[ ! -x "$bin/molecule" ]]; then
    echo "test-role: $bin/molecule is missing; run 'make venv' first" >&2
    exit 2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/ductape-test-role.XXXXXX")"
daemon="$root/extensions/molecule/register/ductape_local_daemon.py"
cleanup() {
    # destroy normally stops the server; this covers a molecule that died before reaching it.
    "$bin/python" "$daemon" stop "$work/ephemeral" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

export PATH="$bin:$PATH"
export VIRTUAL_ENV="$root/.venv"
export ANSIBLE_COLLECTIONS_PATH="$root/.build/collections"
export MOLECULE_EPHEMERAL_DIRECTORY="$work/ephemeral"
export ANSIBLE_LOCAL_TEMP="$work/ansible-local"
export ANSIBLE_HOME="$work/ansible-home"
export ANSIBLE_FORCE_COLOR=false
export MOLECULE_NO_LOG=false
export NO_COLOR=1

molecule test --scenario-name register
