#!/usr/bin/env bash
# The full demo on a fresh clone: set up .venv, then soak the reference target twice — healthy,
# and with an injected leak — with all four user patterns, time-compressed (about 4 minutes each,
# both at once), and print where both reports are: the leaky one flagged, the healthy one not.
#
# Usage: scripts/demo.sh [--sequential] [--duration SPAN]
#   --sequential   one soak after the other (slower; for a 1-core machine)
#   --duration     soak length of each target (default: the profiles' 4m)
# Environment: DEMO_RUNS (default runs/) where the two run directories go.
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO_RUNS="${DEMO_RUNS:-runs}"
sequential=0
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sequential) sequential=1; shift ;;
    --duration) [[ $# -ge 2 ]] || { echo "demo: --duration needs a value" >&2; exit 2; }
                extra+=(--duration "$2"); shift 2 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

declare -a demo_pids=()
demo::cleanup() {
  # Interrupted: stop both soaks cleanly (they stop their own Locust, samplers and targets).
  local pid
  for pid in "${demo_pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${demo_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
trap demo::cleanup EXIT
trap 'exit 130' INT TERM

demo::soak() {  # demo::soak KIND DIR → the run in DIR, its log (progress every 20 s) in DIR.log
  local kind="$1" dir="$2"
  # exec: the background job is llmsoak itself, so $! is its pid and cleanup signals reach it
  exec .venv/bin/llmsoak run --profile "profiles/demo-$kind.yaml" --out "$dir" \
    --progress-interval 20s "${extra[@]}" >"$dir.log" 2>&1
}

demo::follow() {  # demo::follow LABEL LOG PID: show the soak's log on the terminal until PID ends
  tail --pid="$3" -n +1 -F "$2" 2>/dev/null | sed -u "s/^/[$1] /" &
}

demo::verdict_line() {  # demo::verdict_line LABEL RUN_DIR EXIT_CODE
  .venv/bin/python - "$@" <<'PY'
import json, sys
from llmsoak.analysis.wording import projection_note
from llmsoak.formatting import format_bytes, format_bytes_per_hour
label, run_dir, code = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    verdict = json.load(open(f"{run_dir}/analysis/verdict.json"))
except (OSError, ValueError):
    print(f"{label:<16}no verdict (exit {code}); log: {run_dir}.log")
    sys.exit(0)
rss = verdict.get("metrics", {}).get("rss_bytes", {})
word = {"leak": "LEAK", "ok": "ok"}.get(verdict.get("verdict"), verdict.get("verdict"))
detail = ""
if verdict.get("verdict") == "leak" and rss.get("slope_per_hour") is not None:
    projection = (format_bytes(rss["projected_7d"]) if rss.get("projected_7d") is not None
                  else projection_note(rss))  # none from minutes of data: says so
    detail = f" ({format_bytes_per_hour(rss['slope_per_hour'])}, 7-day projection: {projection})"
print(f"{label:<16}verdict {word}{detail}  report: {run_dir}/analysis/report.html")
PY
}

start_s=$SECONDS
echo "demo: setting up .venv (scripts/setup.sh)" >&2
scripts/setup.sh
mkdir -p "$DEMO_RUNS"
stamp=$(date +%Y%m%d-%H%M%S)
healthy="$DEMO_RUNS/demo-$stamp-healthy"
leaky="$DEMO_RUNS/demo-$stamp-leak"
echo "demo: soaking the reference target twice (healthy and leaking), all four patterns, 4 minutes;" \
     "logs in $healthy.log and $leaky.log" >&2

codes=()
if (( sequential )); then
  demo::soak healthy "$healthy" & demo_pids=($!); demo::follow healthy "$healthy.log" $!
  wait "${demo_pids[0]}" && codes+=(0) || codes+=($?)
  demo::soak leak "$leaky" & demo_pids=($!); demo::follow "leak   " "$leaky.log" $!
  wait "${demo_pids[0]}" && codes+=(0) || codes+=($?)
else
  demo::soak healthy "$healthy" & demo_pids+=($!); demo::follow healthy "$healthy.log" $!
  demo::soak leak "$leaky" & demo_pids+=($!); demo::follow "leak   " "$leaky.log" $!
  for pid in "${demo_pids[@]}"; do
    wait "$pid" && codes+=(0) || codes+=($?)
  done
fi
demo_pids=()
sleep 1  # let the log followers print the last lines

echo
echo "demo finished in $(( (SECONDS - start_s) / 60 ))m$(( (SECONDS - start_s) % 60 ))s"
demo::verdict_line "healthy target:" "$healthy" "${codes[0]}"
demo::verdict_line "leaky target:" "$leaky" "${codes[1]}"
# Success = the leak was found (exit 1) and the healthy target passed its SLO gate (exit 0).
[[ "${codes[0]}" == 0 && "${codes[1]}" == 1 ]]
