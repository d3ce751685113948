#!/usr/bin/env bash
# The artifact a user installs: build it, prove it holds only the collection, install it into an
# empty collections path, and prove ansible-doc finds the modules and the role there and nowhere
# else. Then prove the execution environment definitions work with that installed artifact.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BIN=${VENV_BIN:-$REPO/.venv/bin}
export PATH="$BIN:$PATH"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ductape-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

fail() { echo "test-build: FAIL: $*" >&2; exit 1; }
step() { echo "test-build: $*"; }

# Only the temporary path may provide collections, so that nothing is found through the checkout.
export ANSIBLE_COLLECTIONS_PATH="$WORK/collections"
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
export ANSIBLE_LOCAL_TEMP="$WORK/ansible-tmp"
export ANSIBLE_NOCOLOR=1

step "building the collection artifact"
ansible-galaxy collection build --output-path "$WORK/dist" "$REPO" >"$WORK/build.log" 2>&1 \
  || { cat "$WORK/build.log" >&2; fail "ansible-galaxy collection build failed"; }
shopt -s nullglob
tarballs=("$WORK"/dist/ductape-webhooks-*.tar.gz)
[[ ${#tarballs[@]} -eq 1 ]] || fail "expected one ductape-webhooks tarball, found: ${tarballs[*]:-none}"
TARBALL=${tarballs[0]}
tar -tzf "$TARBALL" | sed -e 's#^\./##' -e 's#/$##' | sort >"$WORK/contents.txt"

step "checking what the artifact holds"
# Never shipped: the local server, CI, tooling, benchmarks, the molecule scenario, test output, local state.
forbidden='^(server|\.ci|scripts|benchmarks|extensions/molecule|tests/output|\.venv|\.build|\.git|\.ansible|\.pytest_cache|\.hypothesis|\.schemathesis|context)(/|$)|^Makefile$|^requirements-dev\.txt$|(^|/)__pycache__(/|$)|\.pyc$|\.db(-wal|-shm)?$|\.tar\.gz$'
if grep -E "$forbidden" "$WORK/contents.txt" >"$WORK/forbidden.txt"; then
  echo "test-build: these must not be in the artifact (adjust build_ignore in galaxy.yml):" >&2
  sed 's/^/  /' "$WORK/forbidden.txt" >&2
  fail "the artifact holds files a user must not install"
fi
# Always shipped: what ansible-galaxy, ansible-doc, ansible-builder and AWX users read.
for required in MANIFEST.json FILES.json README.md CHANGELOG.rst meta/runtime.yml \
    meta/execution-environment.yml extensions/awx/ductape_credential_type.yml \
    plugins/modules/ductape_webhook.py plugins/modules/ductape_webhook_link.py \
    plugins/modules/ductape_webhook_info.py plugins/modules/ductape_webhook_delivery_info.py \
    plugins/modules/ductape_webhook_test.py plugins/modules/ductape_webhook_replay.py \
    plugins/module_utils/ductape_api.py docs/docsite/extra-docs.yml docs/reference/index.rst \
    changelogs/changelog.yaml \
    plugins/doc_fragments/connection.py roles/register/meta/argument_specs.yml \
    roles/register/tasks/main.yml; do
  grep -qxF "$required" "$WORK/contents.txt" || fail "the artifact lacks $required"
done

step "installing it offline into an empty collections path"
mkdir -p "$ANSIBLE_COLLECTIONS_PATH"
ansible-galaxy collection install --offline --no-deps --collections-path "$ANSIBLE_COLLECTIONS_PATH" \
    "$TARBALL" >"$WORK/install.log" 2>&1 \
  || { cat "$WORK/install.log" >&2; fail "ansible-galaxy collection install failed"; }
INSTALLED="$ANSIBLE_COLLECTIONS_PATH/ansible_collections/ductape/webhooks"
[[ -f "$INSTALLED/MANIFEST.json" ]] || fail "nothing installed at $INSTALLED"

# ansible-doc runs from the temp dir: a working directory inside the checkout must not help it.
cd "$WORK"

# the checkout's modules (register_role among them: it documents the role's one task)
modules=()
for file in "$REPO"/plugins/modules/*.py; do
  name=$(basename "$file" .py)
  [[ $name == __init__ ]] || modules+=("$name")
done
step "ansible-doc -l ductape.webhooks lists the ${#modules[@]} modules of the checkout from the installed copy"
ansible-doc -l ductape.webhooks >"$WORK/doc-list.txt" 2>"$WORK/doc-list.err" \
  || { cat "$WORK/doc-list.err" >&2; fail "ansible-doc -l ductape.webhooks failed"; }
for module in "${modules[@]}"; do
  grep -qE "^ductape\.webhooks\.$module[[:space:]]+[^[:space:]]" "$WORK/doc-list.txt" \
    || { cat "$WORK/doc-list.txt" >&2; fail "ansible-doc -l does not list ductape.webhooks.$module with a description"; }
done
listed=$(grep -cE '^ductape\.webhooks\.' "$WORK/doc-list.txt" || true)
[[ $listed -eq ${#modules[@]} ]] \
  || { cat "$WORK/doc-list.txt" >&2; fail "expected exactly ${#modules[@]} modules, ansible-doc lists $listed"; }
ansible-doc --json -t module ductape.webhooks.ductape_webhook >"$WORK/module.json" \
  || fail "ansible-doc cannot read ductape.webhooks.ductape_webhook"
python - "$WORK/module.json" "$INSTALLED" <<'EOF' || fail "ansible-doc read the module from somewhere else"
import json, sys
doc = json.load(open(sys.argv[1]))["ductape.webhooks.ductape_webhook"]["doc"]
if not doc["filename"].startswith(sys.argv[2] + "/"):
    sys.exit(f"module documented from {doc['filename']}, not from the installed artifact")
EOF

step "ansible-doc -t role ductape.webhooks.register shows the entry point"
ansible-doc -t role ductape.webhooks.register >"$WORK/role.txt" 2>"$WORK/role.err" \
  || { cat "$WORK/role.err" >&2; fail "ansible-doc -t role ductape.webhooks.register failed"; }
grep -qE '^ENTRY POINT: \*?main\*? - [^[:space:]]' "$WORK/role.txt" \
  || { cat "$WORK/role.txt" >&2; fail "the role's documentation shows no main entry point with a description"; }
grep -q 'ductape_product' "$WORK/role.txt" || fail "the role's documentation lacks its options"
# Its examples (meta/argument_specs.yml); ansible-doc prints a role's examples from ansible-core 2.17 on.
grep -q 'EXAMPLES:' "$WORK/role.txt" && grep -qF -- '- role: ductape.webhooks.register' "$WORK/role.txt" \
  || { cat "$WORK/role.txt" >&2; fail "the role's documentation shows no examples"; }
ansible-doc --json -t role ductape.webhooks.register >"$WORK/role.json" || fail "ansible-doc --json -t role failed"
python - "$WORK/role.json" "$INSTALLED" <<'EOF' || fail "ansible-doc read the role from somewhere else"
import json, sys
role = json.load(open(sys.argv[1]))["ductape.webhooks.register"]
if role["path"] != sys.argv[2] and not role["path"].startswith(sys.argv[2] + "/"):
    sys.exit(f"role documented from {role['path']}, not from the installed artifact")
if not role["entry_points"]["main"].get("short_description"):
    sys.exit("the main entry point has no short_description")
if "- role: ductape.webhooks.register" not in (role["entry_points"]["main"].get("examples") or ""):
    sys.exit("the main entry point has no examples")
EOF

step "ansible-builder reads the installed collection's requirements: none (ansible-core and the standard library)"
ansible-builder introspect --sanitize "$ANSIBLE_COLLECTIONS_PATH" >"$WORK/introspect.txt" 2>&1 \
  || { cat "$WORK/introspect.txt" >&2; fail "ansible-builder introspect failed"; }
if grep -qE "from collection ductape\.webhooks" "$WORK/introspect.txt"; then
  cat "$WORK/introspect.txt" >&2
  fail "ansible-builder sees a requirement of ductape.webhooks; its modules need only the standard library"
fi

step "ansible-builder create of the example execution environment"
EXAMPLE_EE="$REPO/docs/execution-environment/execution-environment.yml"
ansible-builder create --file "$EXAMPLE_EE" --context "$WORK/ee-context" --output-filename Containerfile \
    >"$WORK/ee.log" 2>&1 || { cat "$WORK/ee.log" >&2; fail "ansible-builder create failed"; }
[[ -s "$WORK/ee-context/Containerfile" ]] || fail "ansible-builder wrote no Containerfile"
grep -q 'ductape.webhooks' "$WORK/ee-context/_build/requirements.yml" \
  || fail "the EE build context does not install ductape.webhooks"
grep -q 'ansible-galaxy collection install' "$WORK/ee-context/Containerfile" \
  || fail "the Containerfile does not install the collections"

step "ductape-local's wheel builds with no setuptools deprecation warning (server/pyproject.toml)"
# From a copy, so that the build leaves nothing in the checkout; in pip's isolated build environment,
# with the setuptools that server/pyproject.toml requires.
mkdir -p "$WORK/server-src"
(cd "$REPO/server" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$WORK/server-src")
"$BIN/python" -m pip wheel --no-deps --no-cache-dir -w "$WORK/server-dist" "$WORK/server-src" \
    >"$WORK/server-wheel.log" 2>&1 || { cat "$WORK/server-wheel.log" >&2; fail "the ductape-local wheel does not build"; }
if grep -E "DeprecationWarning|BuildBackendWarning|is deprecated" "$WORK/server-wheel.log" >"$WORK/server-warnings.txt"; then
  cat "$WORK/server-warnings.txt" >&2
  fail "building ductape-local prints a deprecation warning (above)"
fi
wheels=("$WORK"/server-dist/ductape_local-*.whl)
[[ ${#wheels[@]} -eq 1 ]] || fail "pip built no ductape-local wheel"

step "OK: $(basename "$TARBALL") ($(wc -l <"$WORK/contents.txt") entries) installs and documents itself"
