#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: sets up .venv (with dev tools), installs Debian's
# chromium + chromium-driver for the browser test when possible, then runs pytest.
# Usage: scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --dev

# The web UI test drives Debian's headless Chromium. Install it when we can (root or sudo);
# otherwise that test skips and says why.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "test: installing chromium and chromium-driver for the browser test" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
      || echo "test: could not install chromium; the browser test will skip" >&2
  else
    echo "test: chromium/chromedriver not installed and not root; the browser test will skip" >&2
  fi
fi

exec .venv/bin/python -m pytest "$@"
