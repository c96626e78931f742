#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: sets up .venv (with dev tools), provisions the real
# serving engines (scripts/engines.sh ensure all: vLLM and llama.cpp venvs in ~/.cache/llmsoak/engines,
# or $LLMSOAK_ENGINES_DIR), installs Debian's chromium + chromium-driver for the browser test when
# possible, then runs pytest.
# The first run on a machine spends about 13 minutes and 3.6 GB on the engines (measured on 2 cores:
# vLLM 165 s, llama.cpp 592 s, mostly compiling llama.cpp; docs/engines.md, "Costs"); later runs
# find them ready at once.
# Usage: scripts/test.sh [pytest args...]
# Without the engines (install failed, or not wanted: pytest -m "not engines") their tests skip,
# unless LLMSOAK_REQUIRE_ENGINES=1 (CI sets it), which makes a missing engine an error.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --dev

if ! scripts/engines.sh ensure all; then
  if [[ "${LLMSOAK_REQUIRE_ENGINES:-}" == 1 ]]; then
    echo "test: the engines could not be installed and LLMSOAK_REQUIRE_ENGINES=1" >&2
    exit 1
  fi
  echo "test: the engines could not be installed; the engine tests will skip" >&2
fi

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
