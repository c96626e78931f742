#!/usr/bin/env bash
# A long soak in the background, over `llmsoak run` (docs/soak.md).
#
#   scripts/soak.sh start PROFILE [llmsoak run options...]   start in the background once past its
#                                                            start-up checks; prints the run dir
#   scripts/soak.sh status [RUN_DIR]                         where it stands (default: the latest run)
#   scripts/soak.sh stop [RUN_DIR]                           SIGTERM, wait for the clean end and verdict
#   scripts/soak.sh resume RUN_DIR                           continue a run whose orchestrator died
#   scripts/soak.sh report [RUN_DIR]                         (re-)run the analysis, print the report path
#
# Environment: SOAK_RUNS (default runs/) where new run directories go; LLMSOAK (default
# .venv/bin/llmsoak, else llmsoak on PATH); SOAK_READY_TIMEOUT_S (default 300) how long start
# waits for the first segment. Exit codes: those of `llmsoak run` (0 ok, 1 SLO breach or leak,
# 2 bad input/usage, 3 leak inconclusive, 4 target unavailable, 5 I/O): start, the orchestrator's
# when it fails its start-up checks; status, 0 while running, else the run's recorded code; stop,
# the run's recorded code; report, that of `llmsoak analyze` (the run's code if it failed at start).
# END OF USAGE
set -euo pipefail

SOAK_RUNS="${SOAK_RUNS:-runs}"
SOAK_READY_TIMEOUT_S="${SOAK_READY_TIMEOUT_S:-300}"
SOAK_STOP_TIMEOUT_S="${SOAK_STOP_TIMEOUT_S:-600}"
_soak_started_pid=""

# The header above, up to its END OF USAGE line; to stdout and exit 0 for --help, else stderr, exit 2.
soak::usage() {
  local code="${1:-2}"
  if [[ "$code" == 0 ]]; then
    sed -n '2,/^# END OF USAGE/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  else
    sed -n '2,/^# END OF USAGE/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  fi
  exit "$code"
}

soak::die() { echo "soak.sh: $1" >&2; exit "${2:-2}"; }

SOAK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The llmsoak command line as words: $LLMSOAK, else the checkout's .venv, else llmsoak on PATH.
soak::llmsoak_cmd() {
  if [[ -n "${LLMSOAK:-}" ]]; then
    echo "$LLMSOAK"
  elif [[ -x "$SOAK_ROOT/.venv/bin/llmsoak" ]]; then
    echo "$SOAK_ROOT/.venv/bin/llmsoak"
  else
    echo llmsoak
  fi
}

soak::llmsoak() {
  local -a cmd
  read -r -a cmd <<<"$(soak::llmsoak_cmd)"
  "${cmd[@]}" "$@"
}

soak::cleanup() {
  # Only on a failed start: do not leave a half-started orchestrator behind.
  if [[ -n "$_soak_started_pid" ]] && kill -0 "$_soak_started_pid" 2>/dev/null; then
    kill -TERM "$_soak_started_pid" 2>/dev/null || true
    wait "$_soak_started_pid" 2>/dev/null || true
  fi
}

# The newest directory under $SOAK_RUNS that holds a run.json (others are not runs).
soak::latest() {
  local dir
  while IFS= read -r dir; do
    if [[ -f "${dir%/}/run.json" ]]; then
      echo "${dir%/}"
      return 0
    fi
  done < <(ls -1dt "$SOAK_RUNS"/*/ 2>/dev/null || true)
  soak::die "no run directory under $SOAK_RUNS/ (give RUN_DIR)"
}

# One field of DIR/run.json (a dotted path: result.exit_code), empty when absent.
soak::field() {
  local py
  py="$SOAK_ROOT/.venv/bin/python"
  [[ -x "$py" ]] || py=python3
  "$py" - "$1/run.json" "$2" <<'PY' 2>/dev/null || true
import json, sys
try:
    value = json.load(open(sys.argv[1], encoding="utf-8"))
    for key in sys.argv[2].split("."):
        value = value.get(key) if isinstance(value, dict) else None
except (OSError, ValueError):
    value = None
print("" if value is None else value)
PY
}

soak::run_dir() {
  local dir="${1:-}"
  [[ -n "$dir" ]] || dir=$(soak::latest)
  [[ -f "$dir/run.json" ]] || soak::die "$dir: not a run directory (no run.json)"
  echo "$dir"
}

soak::pid() { [[ -f "$1/orchestrator.pid" ]] && cat "$1/orchestrator.pid" || true; }

# Start `llmsoak run ARGS --out DIR` detached; wait until it is past its start-up checks (the
# target answers, a segment of load started: its "segment N started" log line) or has exited.
soak::launch() {
  local dir="$1"; shift
  local log="$dir/orchestrator.log" offset=0
  [[ -f "$log" ]] && offset=$(wc -c <"$log")
  nohup setsid "$0" _exec "$@" >>"$log" 2>&1 </dev/null &
  _soak_started_pid=$!
  local waited=0 rc error
  while (( waited < SOAK_READY_TIMEOUT_S * 10 )); do
    if tail -c +"$((offset + 1))" "$log" 2>/dev/null | grep -q 'llmsoak run: segment [0-9]* started'; then
      _soak_started_pid=""
      echo "$dir"
      return 0
    fi
    if ! kill -0 "$_soak_started_pid" 2>/dev/null; then
      wait "$_soak_started_pid" && rc=0 || rc=$?
      _soak_started_pid=""
      # Its one-line error: recorded in run.json, else the log's last line.
      error=$(soak::field "$dir" result.error)
      [[ -n "$error" ]] || error=$(tail -c +"$((offset + 1))" "$log" | grep -v '^[[:space:]]*$' | tail -n 1 || true)
      if [[ ! -f "$dir/run.json" ]]; then
        rm -f "$log" && rmdir "$dir" 2>/dev/null || true  # nothing was recorded: leave no half a run
      else
        error="$error (run dir $dir)"
      fi
      echo "soak.sh: llmsoak run exited (code $rc): $error" >&2
      exit "$rc"
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  # Still in its start-up checks (a slow target.command, e.g. a model loading): leave it running.
  _soak_started_pid=""
  echo "soak.sh: still starting after ${SOAK_READY_TIMEOUT_S}s (target not ready yet); follow it with: $0 status $dir" >&2
  echo "$dir"
}

soak::start() {
  [[ $# -ge 1 ]] || soak::usage
  local profile="$1"; shift
  [[ -f "$profile" ]] || soak::die "$profile: no such profile file"
  # Validate profile and options before any run directory exists.
  local check_err rc=0
  check_err=$(soak::llmsoak run --check --profile "$profile" "$@" 2>&1 >/dev/null) || rc=$?
  if (( rc != 0 )); then
    echo "$check_err" >&2
    exit "$rc"
  fi
  local name dir
  name=$(basename "$profile" .yaml)
  dir="$SOAK_RUNS/$(date +%Y%m%d-%H%M%S)-$name"
  [[ ! -e "$dir" ]] || dir="$dir-$$"
  mkdir -p "$dir"
  soak::launch "$dir" run --profile "$profile" --out "$dir" --quiet "$@"
}

# Exit 0 while the run is running, else the exit code it ended with (`llmsoak run --status`).
soak::status() {
  local dir
  dir=$(soak::run_dir "${1:-}")
  soak::llmsoak run --status "$dir"
}

soak::stop() {
  local dir pid waited=0
  dir=$(soak::run_dir "${1:-}")
  pid=$(soak::pid "$dir")
  if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
    echo "soak.sh: $dir is not running" >&2
    local rc=0
    soak::llmsoak run --status "$dir" || rc=$?  # the run's recorded exit code
    return "$rc"
  fi
  echo "soak.sh: stopping $dir (pid $pid): Locust, samplers and target stop, then the analysis runs" >&2
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do
    (( waited < SOAK_STOP_TIMEOUT_S * 10 )) || soak::die "pid $pid still running after ${SOAK_STOP_TIMEOUT_S}s" 5
    sleep 0.1
    waited=$((waited + 1))
  done
  soak::llmsoak run --status "$dir"
}

soak::resume() {
  [[ $# -ge 1 ]] || soak::usage
  local dir
  dir=$(soak::run_dir "$1")
  soak::launch "$dir" run --resume "$dir" --quiet
}

soak::report() {
  local dir rc=0 code
  dir=$(soak::run_dir "${1:-}")
  if [[ "$(soak::field "$dir" status)" == failed && ! -s "$dir/samples/target.csv" ]]; then
    code=$(soak::field "$dir" result.exit_code)
    echo "soak.sh: $dir: run failed before any load: $(soak::field "$dir" result.error)" >&2
    exit "${code:-1}"
  fi
  soak::llmsoak analyze "$dir" || rc=$?
  if [[ -f "$dir/analysis/report.html" ]]; then
    echo "report: $dir/analysis/report.html"
  fi
  return "$rc"
}

main() {
  [[ $# -ge 1 ]] || soak::usage
  local cmd="$1"; shift
  case "$cmd" in
    start|status|stop|resume|report) ;;
    _exec) local -a cmd; read -r -a cmd <<<"$(soak::llmsoak_cmd)"; exec "${cmd[@]}" "$@" ;;
    -h|--help|help) soak::usage 0 ;;
    *) echo "soak.sh: unknown command '$cmd'" >&2; soak::usage ;;
  esac
  trap soak::cleanup EXIT
  "soak::$cmd" "$@"
}

main "$@"
