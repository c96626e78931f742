#!/usr/bin/env bash
# Create (or reuse) .venv and install llmsoak with its pinned dependencies.
# Usage: scripts/setup.sh [--dev]     (--dev adds test, benchmark and lint tools)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
req=requirements.txt
[[ "${1:-}" == "--dev" ]] && req=requirements-dev.txt

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "setup: Python 3.10+ is needed ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
  exit 2
fi
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $("$PYTHON" --version)" >&2
  "$PYTHON" -m venv .venv
fi
# Re-install only when the requirements changed since the last successful install.
stamp=".venv/.llmsoak-$(cat requirements.txt requirements-dev.txt pyproject.toml | cksum | cut -d' ' -f1)-$(basename "$req")"
if [[ ! -f "$stamp" ]]; then
  echo "setup: installing $req into .venv (first run takes a minute or two)" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$req"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
  touch "$stamp"
fi
echo "setup: ready (.venv)" >&2
