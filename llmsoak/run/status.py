"""``llmsoak run --status RUN_DIR``: where a run stands (``scripts/soak.sh status`` prints this)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from llmsoak.errors import CommandError
from llmsoak.formatting import format_bytes, format_bytes_per_hour, format_duration, format_fixed
from llmsoak.run import remote_workers
from llmsoak.run.manifest import read_json
from llmsoak.run.snapshot import snapshot
from llmsoak.rundir import RunDir


def load_run(path) -> tuple[RunDir, dict]:
    """The run directory and its manifest; CommandError (exit 2) when it is not a run directory."""
    run = RunDir(Path(path).resolve())
    if not run.root.is_dir():
        raise CommandError(f"{path}: no such run directory")
    manifest = read_json(run.manifest)
    if manifest is None:
        raise CommandError(f"{run.manifest}: missing or unreadable (not a run directory of llmsoak run?)")
    return run, manifest


def format_status(snap: dict) -> str:
    """Human-readable status, one fact per line."""
    def num(key: str, decimals: int, missing: str = "-") -> str:
        return format_fixed(snap.get(key), decimals, missing)

    slope = snap.get("slope_per_hour")
    slope_text = "-" if slope is None else format_bytes_per_hour(slope)
    cp_at = snap.get("checkpoint_at")
    lines = [
        f"run:        {snap.get('id')}  (profile {snap.get('profile')})",
        f"status:     {snap.get('status')}",
        f"elapsed:    {format_duration(snap['elapsed_s'])} of {format_duration(snap['duration_s'])}"
        f"  (remaining {format_duration(snap['remaining_s'])}, segment {snap.get('segments')})",
        f"load:       users {num('users', 0)}  req/s {num('rps', 1)}  "
        f"failures {num('fail_per_s', 1)}/s, {num('failures_total', 0, '0')} of "
        f"{num('requests_total', 0, '0')} requests",
        (f"memory now: {format_bytes(snap.get('memory_now_bytes'))} (target RSS)" if snap.get("running")
         else f"memory:     {format_bytes(snap.get('memory_now_bytes'))} (target RSS, last sample)"),
        f"trend:      slope {slope_text}, 7-day projection {format_bytes(snap.get('projected_7d'))}"
        f"{'' if snap.get('verdict') in ('leak', 'ok', None) else ' (not a trend yet)'}, "
        f"interim verdict {snap.get('verdict') or '-'}"
        + (f" (checkpoint {format_duration(time.time() - cp_at)} ago)" if cp_at else ""),
    ]
    restarts = {k: v for k, v in (snap.get("restarts") or {}).items() if v}
    if restarts:
        lines.append("restarts:   " + ", ".join(f"{k} {v}" for k, v in sorted(restarts.items())))
    workers = snap.get("remote_workers")
    if workers:
        now = (f"{workers.get('connected')} of {workers.get('expected')} connected now; "
               if snap.get("running") else "")
        lines.append(f"workers:    {now}{remote_workers.summary_line(workers)}")
    result = snap.get("result") or {}
    if result.get("exit_code") is not None:
        lines.append(f"result:     exit {result['exit_code']}, verdict {result.get('verdict') or '-'}"
                     + (f" — {result['error']}" if result.get("error") else ""))
    return "\n".join(lines)


def status_exit_code(manifest: dict) -> int:
    """0 while the run has no result (running or interrupted), else the exit code it ended with."""
    code = (manifest.get("result") or {}).get("exit_code")
    return int(code) if isinstance(code, int) else 0


def print_status(path, as_json: bool = False) -> int:
    """Print where the run stands; returns :func:`status_exit_code`."""
    run, manifest = load_run(path)
    snap = snapshot(run, manifest)
    workers = remote_workers.summary(run)
    if workers is not None:
        snap["remote_workers"] = workers
    print(json.dumps(snap, indent=2, default=str) if as_json else format_status(snap))
    return status_exit_code(manifest)
