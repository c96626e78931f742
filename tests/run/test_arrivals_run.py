"""``llmsoak run`` with the profile's ``arrivals`` section: the open-loop load of a real run.

GIVEN a profile whose target.command starts ``llmsoak stub`` (slow: each reply takes 1.2 s) and
whose ``arrivals`` asks for 6 requests per second with at most 2 in flight, over 2 Locust
workers, WHEN ``llmsoak run`` runs it, THEN requests are sent, the arrivals that found both slots
taken are dropped (not sent late), and the terminal's end-of-run line and run.json say how many
were due and dropped and the lag between schedule and send, from llm_timeseries.csv.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from support.processes import REPO

from llmsoak.run import arrivals_summary


def test_a_saturated_open_loop_run_reports_drops_and_lag_at_the_end(tmp_path: Path):
    profile = tmp_path / "arrivals.yaml"
    profile.write_text("""name: arrivals
target:
  url: http://127.0.0.1:{port}
  command: llmsoak stub --port {port} --output-tokens 8 --ttft-ms 1200 --itl-ms 1
  ready_timeout_s: 30
  model: stub-model
  stream: true
  timeout_s: 10
patterns:
  active: {weight: 1, max_tokens: 8, turns_per_session: 2}
arrivals: {rate: 6, distribution: constant, max_in_flight: 2, max_lag_s: 0.5}
run: {duration: 12s, workers: 2, checkpoint_interval: 1h}
sampler: {interval_s: 0.5}
slo: {fail_on_leak: false}
""")
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "llmsoak", "run", "--profile", str(profile), "--out", str(run_dir)],
                          cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"}, capture_output=True, text=True,
                          timeout=150)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    line = next((ln for ln in out.splitlines() if "arrivals:" in ln and "due" in ln), None)
    assert line is not None, out[-3000:]

    with open(run_dir / "llm_timeseries.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["pattern"] == "all"]
    due = sum(int(r["arrivals_scheduled"]) for r in rows)
    dropped = sum(int(r["arrivals_dropped"]) for r in rows)
    sent = sum(int(r["requests"]) for r in rows)
    # Two slots, 1.2 s each: at most ~2 of every 7 arrivals fit; the rest are dropped, not queued.
    assert sent >= 4 and dropped >= sent, (sent, dropped, due)
    assert due >= sent + dropped - 2  # replies still in flight at the end may be left uncounted
    assert f"{due} due, {dropped} dropped" in line, line
    result = json.loads((run_dir / "run.json").read_text())["result"]
    assert result["arrivals"]["dropped"] == dropped and result["arrivals"]["lag_max_ms"] < 500


def test_the_summary_is_absent_without_arrivals_and_reads_old_files(tmp_path: Path):
    plain = tmp_path / "old.csv"
    plain.write_text("timestamp,pattern,users,requests\n60,all,1,5\n")
    assert arrivals_summary.totals(plain) is None
    assert arrivals_summary.totals(tmp_path / "missing.csv") is None
    new = tmp_path / "new.csv"
    new.write_text("timestamp,pattern,requests,arrivals_scheduled,arrivals_dropped,lag_p95_ms,lag_max_ms\n"
                   "60,active,5,,,,\n60,all,5,8,3,2.5,9\n120,all,0,4,4,,\n")
    figures = arrivals_summary.totals(new)
    assert figures == {"scheduled": 12, "dropped": 7, "lag_p95_ms": 2.5, "lag_max_ms": 9.0}
    assert arrivals_summary.summary_line(figures).startswith("arrivals: 12 due, 7 dropped (58.3 %)")
