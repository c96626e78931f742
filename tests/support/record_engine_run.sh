#!/usr/bin/env bash
# Record one real engine under llmsoak load: start the engine (tests/support/serve_engine.py),
# run `llmsoak run` with tests/support/engine-recording.yaml against it, stop it.
# Usage: tests/support/record_engine_run.sh ENGINE RUN_DIR [serve_engine options...]
#   e.g. tests/support/record_engine_run.sh vllm /tmp/rec/vllm-leak --leak-bytes-per-request 262144
# Prints the run directory; the samples are in RUN_DIR/samples/ (tests/fixtures/recordings/README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."

[[ $# -ge 2 ]] || { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
engine="$1" run_dir="$2"; shift 2
mkdir -p "$(dirname "$run_dir")"
work=$(mktemp -d)
serve_pid=""
cleanup() {
  if [[ -n "$serve_pid" ]] && kill -0 "$serve_pid" 2>/dev/null; then
    kill -TERM "$serve_pid"
    wait "$serve_pid" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

.venv/bin/python tests/support/serve_engine.py "$engine" --log "$run_dir.engine.log" "$@" >"$work/serve.out" 2>&1 &
serve_pid=$!
for _ in $(seq 1 600); do
  grep -q " listening on " "$work/serve.out" && break
  kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.out" >&2; exit 1; }
  sleep 1
done
read -r _name _l _o url _p engine_pid _rest <"$work/serve.out"
echo "record: $engine at $url (pid $engine_pid) $*" >&2
.venv/bin/llmsoak run --profile tests/support/engine-recording.yaml --out "$run_dir" \
  --set "target.url=$url" --set "sampler.pid=$engine_pid" --progress-interval 60s || true
echo "$run_dir"
