#!/usr/bin/env bash
# The collection on the oldest ansible-core line that meta/runtime.yml admits and on the newest release,
# each in its own virtualenv under .build/matrix/<core>: what a user does (scripts/matrix_smoke.py: the
# version, ansible-doc of every module, filter and role, the example playbook twice, --check --diff,
# ad-hoc) and the integration suite's core (INTEGRATION below). .venv's ansible-core (requirements-dev.txt)
# runs everything else in `make test`.
#
#   scripts/test-matrix.sh            every line of MATRIX
#   scripts/test-matrix.sh 2.21.5     only that one
#
# A line's Python is found as $MATRIX_PYTHON_<X>_<Y> (e.g. MATRIX_PYTHON_3_13=/usr/bin/python3.13), else
# pyenv's newest <X.Y>.* under $PYENV_ROOT (default ~/.pyenv), else python<X.Y> on PATH; none is a failure.
# A virtualenv is built once and rebuilt when what it installs changes (pip's cache is reused).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

# Each line: the ansible-core release tested and the Python minor version it runs on. The first one's
# major.minor is meta/runtime.yml's requires_ansible floor; docs/developing.md names every release here.
MATRIX=(
  "2.16.19 3.11"
  "2.21.5 3.13"
)

# The integration suite's core: one file per module (check mode, apply, apply again, diff, errors, -vvv
# without a secret, ad-hoc) and the controller path. Left to .venv's core alone: the batch form of
# ductape_webhook (the same module and engine as test_ductape_webhook.py) and the AWX credential
# injection (environment variables, which no core changes).
INTEGRATION=(
  tests/integration/test_ductape_webhook.py
  tests/integration/test_ductape_webhook_link.py
  tests/integration/test_ductape_webhook_info.py
  tests/integration/test_delivery_info.py
  tests/integration/test_action_plugin.py
  tests/integration/test_engine_bugs.py
)

fail() { echo "test-matrix: FAIL: $*" >&2; exit 1; }
step() { echo "test-matrix: $*"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

LINK="$REPO/.build/collections/ansible_collections/ductape/webhooks"
[[ -e "$LINK" ]] || fail "$LINK is missing: run \`make collection\` (make test-matrix does)"

# What the collection claims must be what is tested.
oldest=${MATRIX[0]%% *}
floor=$(sed -nE 's/^requires_ansible: *"?>= *([0-9]+\.[0-9]+)(\.[0-9]+)?"? *$/\1/p' meta/runtime.yml)
[[ -n "$floor" ]] || fail "meta/runtime.yml has no requires_ansible of the form \">=X.Y.Z\""
[[ "$floor" == "${oldest%.*}" ]] \
  || fail "meta/runtime.yml requires ansible-core >= $floor but the oldest line tested here is $oldest"
for line in "${MATRIX[@]}"; do
  core=${line%% *}
  grep -qF "ansible-core $core" docs/developing.md \
    || fail "docs/developing.md does not name ansible-core $core, which this script tests"
done
for path in "${INTEGRATION[@]}"; do
  [[ -f "$path" ]] || fail "$path (in INTEGRATION) does not exist"
done

pytest_pin=$(grep -E '^pytest==' requirements-dev.txt) || fail "requirements-dev.txt pins no pytest"

find_python() {  # $1 = X.Y; prints the interpreter's path
  local minor=$1 override="MATRIX_PYTHON_${1//./_}" candidate
  local -a candidates=()
  if [[ -n "${!override:-}" ]]; then
    candidates=("${!override}")
  else
    local root=${PYENV_ROOT:-$HOME/.pyenv}
    while IFS= read -r candidate; do candidates+=("$candidate"); done \
      < <(ls -d "$root"/versions/"$minor".*/bin/python"$minor" 2>/dev/null | sort -rV)
    candidate=$(command -v "python$minor" 2>/dev/null) && candidates+=("$candidate")
  fi
  for candidate in "${candidates[@]}"; do
    if [[ $("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) == "$minor" ]]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

# Builds .build/matrix/<core> unless it already holds exactly what this would install.
ensure_venv() {  # $1 = core, $2 = Python interpreter
  local core=$1 python=$2 venv="$REPO/.build/matrix/$1"
  local -a install=("ansible-core==$core" "$pytest_pin" -e "$REPO/server")
  local want
  want="$("$python" -VV | head -1) | ${install[*]} | $(sha256sum server/pyproject.toml | cut -d' ' -f1)"
  if [[ -f "$venv/.installed" && "$(cat "$venv/.installed")" == "$want" ]]; then
    return 0
  fi
  step "$core: building $venv with $("$python" -V)"
  # Called from an `if`, where set -e does not apply: every step says how it fails.
  rm -rf "$venv" && mkdir -p "$(dirname "$venv")" && "$python" -m venv "$venv" || return 1
  "$venv/bin/python" -m pip install -q --root-user-action=ignore "${install[@]}" >"$venv/pip.log" 2>&1 || {
    cat "$venv/pip.log" >&2
    return 1
  }
  "$venv/bin/python" -c "import ansible, pytest, requests, yaml, ductape_local" || return 1
  echo "$want" >"$venv/.installed"
}

run_line() {  # $1 = core, $2 = X.Y
  local core=$1 minor=$2 python venv="$REPO/.build/matrix/$1"
  python=$(find_python "$minor") || {
    echo "test-matrix: no Python $minor for ansible-core $core (set MATRIX_PYTHON_${minor//./_}, or install it" \
         "with pyenv)" >&2
    return 1
  }
  local begun=$SECONDS
  ensure_venv "$core" "$python" || { echo "test-matrix: $core: installing its virtualenv failed" >&2; return 1; }
  step "$core: virtualenv ready after $((SECONDS - begun)) s (load average $(load))"
  begun=$SECONDS
  # This line's commands first on PATH: the smoke and the integration tests run ansible-* from its bin.
  local status=0
  PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv" ANSIBLE_COLLECTIONS_PATH="$REPO/.build/collections" \
    "$venv/bin/python" scripts/matrix_smoke.py --core "$core" --python "$minor" || status=1
  step "$core: matrix_smoke.py took $((SECONDS - begun)) s (load average $(load))"
  begun=$SECONDS
  PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv" ANSIBLE_COLLECTIONS_PATH="$REPO/.build/collections" \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider "${INTEGRATION[@]}" || status=1
  step "$core: the integration core took $((SECONDS - begun)) s (load average $(load))"
  return $status
}

# The lines run at once, each in its own processes (its virtualenv, its ductape-local servers on free ports,
# its pytest temp directory), so that the two cores are both busy: each line's output goes to
# .build/matrix/<core>.log and is printed whole, line by line in MATRIX order, once that line has ended.
# MATRIX_SERIAL=1 runs them one after the other instead, printing as they go.
selected=("$@")
failed=()
summary=()
declare -A pids=() logs=() started=()
mkdir -p "$REPO/.build/matrix"
for line in "${MATRIX[@]}"; do
  read -r core minor <<<"$line"
  if [[ ${#selected[@]} -gt 0 && ! " ${selected[*]} " == *" $core "* ]]; then
    continue
  fi
  step "ansible-core $core on Python $minor (load average $(load))"
  started[$core]=$SECONDS
  if [[ -n "${MATRIX_SERIAL:-}" ]]; then
    if run_line "$core" "$minor"; then result=passed; else result=FAILED; failed+=("$core"); fi
    summary+=("ansible-core $core (Python $minor): $result in $((SECONDS - started[$core])) s, load average after $(load)")
  else
    logs[$core]="$REPO/.build/matrix/$core.log"
    (
      begun=$(date +%s)
      status=0
      run_line "$core" "$minor" || status=1
      echo "$(( $(date +%s) - begun )) s, load average after $(load)" >"${logs[$core]}.took"
      exit $status
    ) >"${logs[$core]}" 2>&1 &
    pids[$core]=$!
  fi
done
for line in "${MATRIX[@]}"; do
  read -r core minor <<<"$line"
  [[ -n "${pids[$core]:-}" ]] || continue
  if wait "${pids[$core]}"; then result=passed; else result=FAILED; failed+=("$core"); fi
  summary+=("ansible-core $core (Python $minor): $result in $(cat "${logs[$core]}.took" 2>/dev/null || echo "? s")")
  echo "test-matrix: ---- ansible-core $core: ${logs[$core]#"$REPO"/} ----"
  sed "s/^/[$core] /" "${logs[$core]}"
done
[[ ${#summary[@]} -gt 0 ]] || fail "no line of the matrix matches: $* (the lines: ${MATRIX[*]})"
printf 'test-matrix: %s\n' "${summary[@]}"
[[ ${#failed[@]} -eq 0 ]] || fail "ansible-core ${failed[*]}"
echo "test-matrix: OK"
