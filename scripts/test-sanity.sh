#!/usr/bin/env bash
# ansible-test sanity, every test that applies to a collection, on Python 3.11 in ansible-test's own
# virtual environments, on a copy of the collection (scripts/collection-copy.sh says why and what).
# The only ignore file allowed is tests/sanity/ignore-X.Y.txt where every line says why.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BIN=${VENV_BIN:-$REPO/.venv/bin}
# shellcheck source=scripts/collection-copy.sh
source "$REPO/scripts/collection-copy.sh"
export PATH="$BIN:$PATH"
PYTHON_VERSION=3.11

fail() { echo "test-sanity: FAIL: $*" >&2; exit 1; }
step() { echo "test-sanity: $*"; }

command -v ansible-test >/dev/null || fail "ansible-test is missing from $BIN: run \`make venv\`"
command -v "python$PYTHON_VERSION" >/dev/null || fail "ansible-test needs python$PYTHON_VERSION on PATH"

# An ignore file may exist only if each of its lines says why: `path test  # reason` (ansible-test
# itself refuses blank and comment-only lines there).
shopt -s nullglob
for ignore in tests/sanity/ignore-*.txt; do
  if grep -nvE '^[^[:space:]#]+ [^[:space:]#]+ +# *[^[:space:]]' "$ignore" >&2; then
    fail "$ignore: the lines above do not say why they are ignored (\`path test  # reason\`)"
  fi
done
shopt -u nullglob

# ansible-test bootstraps pip in each of its virtual environments with a get-pip script that it
# downloads from a host this machine (and CI) cannot reach, unless the script is already in its cache.
# This stand-in installs the requested pip from the package index pip is configured with.
ANSIBLE_TEST_DIR=$("$BIN/python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')
PIP_VERSION=$(sed -nE "s/^[[:space:]]*pip='([0-9][0-9.]*)',?$/\1/p" "$ANSIBLE_TEST_DIR/_internal/python_requirements.py" | head -n1)
[[ -n $PIP_VERSION ]] || fail "cannot find the pip version ansible-test bootstraps in $ANSIBLE_TEST_DIR/_internal/python_requirements.py"
GET_PIP="$HOME/.ansible/test/cache/get_pip_${PIP_VERSION//./_}.py"
MARKER="# ductape.webhooks scripts/test-sanity.sh: get-pip stand-in"
if [[ ! -e $GET_PIP ]] || grep -qxF "$MARKER" "$GET_PIP"; then
  mkdir -p "$(dirname "$GET_PIP")"
  cat >"$GET_PIP.tmp" <<EOF
$MARKER
# ansible-test runs this as "get-pip.py [pip options] pip==$PIP_VERSION --no-setuptools --no-wheel"
# inside a virtual environment created without pip: ensurepip gives it the pip Python ships,
# which then installs the requested one from the configured index.
import ensurepip
import os
import subprocess
import sys

# ensurepip removes every PIP_* variable and points PIP_CONFIG_FILE at /dev/null: the pip install
# below must see the configuration (index, certificates) the machine has.
environment = dict(os.environ)
ensurepip.bootstrap(upgrade=True)
for bundle in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"):
    if os.path.exists(bundle):
        environment.setdefault("PIP_CERT", bundle)
        break
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args], env=environment))
EOF
  mv "$GET_PIP.tmp" "$GET_PIP"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ductape-sanity.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
step "copying the collection to $WORK"
COPY=$(copy_collection "$REPO" "$WORK")

cd "$COPY"
export ANSIBLE_NOCOLOR=1
step "ansible-test sanity --venv --python $PYTHON_VERSION"
start=$SECONDS
# ansible-test keeps its virtual environments in ~/.ansible/test/venv, shared by every run on the
# machine: two runs building one at the same time break it, so runs take turns.
exec 9>"$HOME/.ansible/test/ductape-sanity.lock"
flock -n 9 || { step "waiting for another ansible-test sanity run on this machine"; flock 9; }
if ! ansible-test sanity --venv --python "$PYTHON_VERSION" --color no "$@" >"$WORK/sanity.log" 2>&1; then
  cat "$WORK/sanity.log" >&2
  fail "ansible-test sanity found problems (tests/output of the copy is gone; rerun with -v for more)"
fi
grep -E '^(Running sanity test|WARNING)' "$WORK/sanity.log" || true
step "OK in $((SECONDS - start)) s"
