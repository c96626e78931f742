#!/usr/bin/env bash
# A long soak in the background, over `llmsoak run` (docs/soak.md).
#
#   scripts/soak.sh start PROFILE [llmsoak run options...]   start in the background; prints the run dir
#   scripts/soak.sh status [RUN_DIR]                         where it stands (default: the latest run)
#   scripts/soak.sh stop [RUN_DIR]                           SIGTERM, wait for the clean end and verdict
#   scripts/soak.sh resume RUN_DIR                           continue a run whose orchestrator died
#   scripts/soak.sh report [RUN_DIR]                         (re-)run the analysis, print the report path
#
# Environment: SOAK_RUNS (default runs/) where new run directories go; LLMSOAK (default
# .venv/bin/llmsoak, else llmsoak on PATH). Exit codes: those of `llmsoak run`/`llmsoak analyze`;
# 2 usage, 4 when the orchestrator did not come up.
set -euo pipefail

SOAK_RUNS="${SOAK_RUNS:-runs}"
SOAK_READY_TIMEOUT_S="${SOAK_READY_TIMEOUT_S:-60}"
SOAK_STOP_TIMEOUT_S="${SOAK_STOP_TIMEOUT_S:-600}"
_soak_started_pid=""

soak::usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
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

soak::latest() {
  local latest
  latest=$(ls -1dt "$SOAK_RUNS"/*/ 2>/dev/null | head -n 1 || true)
  [[ -n "$latest" ]] || soak::die "no run directory under $SOAK_RUNS/ (give RUN_DIR)"
  echo "${latest%/}"
}

soak::run_dir() {
  local dir="${1:-}"
  [[ -n "$dir" ]] || dir=$(soak::latest)
  [[ -f "$dir/run.json" ]] || soak::die "$dir: not a run directory (no run.json)"
  echo "$dir"
}

soak::pid() { [[ -f "$1/orchestrator.pid" ]] && cat "$1/orchestrator.pid" || true; }

# Start `llmsoak run ARGS --out DIR` detached; wait until it wrote its pid file and manifest.
soak::launch() {
  local dir="$1"; shift
  local before_pid
  before_pid=$(soak::pid "$dir")
  nohup setsid "$0" _exec "$@" >>"$dir/orchestrator.log" 2>&1 </dev/null &
  _soak_started_pid=$!
  local waited=0 pid
  while (( waited < SOAK_READY_TIMEOUT_S * 10 )); do
    pid=$(soak::pid "$dir")
    if [[ -n "$pid" && "$pid" != "$before_pid" && -f "$dir/run.json" ]] && kill -0 "$pid" 2>/dev/null; then
      _soak_started_pid=""
      echo "$dir"
      return 0
    fi
    if ! kill -0 "$_soak_started_pid" 2>/dev/null; then
      wait "$_soak_started_pid" && rc=0 || rc=$?
      _soak_started_pid=""
      tail -n 5 "$dir/orchestrator.log" >&2 || true
      soak::die "llmsoak run ended at once (exit $rc); log: $dir/orchestrator.log" "$rc"
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  soak::die "llmsoak run did not come up within ${SOAK_READY_TIMEOUT_S}s; log: $dir/orchestrator.log" 4
}

soak::start() {
  [[ $# -ge 1 ]] || soak::usage
  local profile="$1"; shift
  [[ -f "$profile" ]] || soak::die "$profile: no such profile file"
  local name dir
  name=$(basename "$profile" .yaml)
  dir="$SOAK_RUNS/$(date +%Y%m%d-%H%M%S)-$name"
  [[ ! -e "$dir" ]] || dir="$dir-$$"
  mkdir -p "$dir"
  soak::launch "$dir" run --profile "$profile" --out "$dir" --quiet "$@"
}

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
    soak::llmsoak run --status "$dir"
    return 0
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
  local dir rc=0
  dir=$(soak::run_dir "${1:-}")
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
    -h|--help|help) soak::usage ;;
    *) echo "soak.sh: unknown command '$cmd'" >&2; soak::usage ;;
  esac
  trap soak::cleanup EXIT
  "soak::$cmd" "$@"
}

main "$@"
