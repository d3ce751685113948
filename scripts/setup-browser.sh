#!/usr/bin/env bash
# What the dashboard's browser test needs (server/tests/test_dashboard_browser.py): Debian's chromium,
# a font for its text, and the Playwright driver library in .venv (pinned in requirements-dev.txt, so
# `make venv` installs it already). Playwright drives the system chromium through its executable path;
# it never downloads a browser of its own.
#
#   scripts/setup-browser.sh          install what is missing, then print the chromium it found
#
# Missing packages are installed with apt-get when this runs as root (CI: a fresh Debian container);
# otherwise it says which command to run. $DASHBOARD_CHROMIUM names another chromium binary.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV_BIN:-$PWD/.venv/bin}
PACKAGES=(chromium fonts-dejavu-core)

fail() { echo "setup-browser: FAIL: $*" >&2; exit 1; }

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [[ -n "${DASHBOARD_CHROMIUM:-}" ]]; then
  missing=()
fi
if (( ${#missing[@]} )); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "setup-browser: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # The package lists of a fresh container are empty until the first update.
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    fail "missing Debian packages: ${missing[*]} (run: sudo apt-get install --no-install-recommends ${missing[*]})"
  fi
fi

chromium=${DASHBOARD_CHROMIUM:-$(command -v chromium || true)}
[[ -n "$chromium" && -x "$chromium" ]] || fail "no chromium binary found (set DASHBOARD_CHROMIUM)"

# The driver library: requirements-dev.txt pins it; install it here too for a .venv made before the pin.
pin=$(grep -E '^playwright==' requirements-dev.txt) || fail "requirements-dev.txt pins no playwright"
"$BIN/python" -c "import playwright" 2>/dev/null || "$BIN/python" -m pip install -q "$pin"
echo "setup-browser: $("$chromium" --version 2>/dev/null | head -1) at $chromium; $pin"
