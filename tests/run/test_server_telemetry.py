"""``sampler.metrics_url`` through ``llmsoak run``: the server's gauges land in
samples/server_metrics.csv on the target sampler's clock and in the verdict and report; a URL
that 404s or never answers is one warning line and one event, not a crash.

GIVEN the reference target (started by the run) and, beside it, a /metrics endpoint speaking
vLLM's names (tests/support/fake_metrics.py: the stub has no /metrics of its own), WHEN a short
run scrapes it, THEN ... (the real engines: tests/engines/test_profiles_engines.py).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.fake_metrics import serve_metrics
from support.processes import REPO

from llmsoak.events import read_events
from llmsoak.formats import SERVER_METRICS_COLUMNS


def _profile(path: Path, metrics_url: str, duration: str) -> Path:
    path.write_text(f"""name: {path.stem}
target:
  url: http://127.0.0.1:{{port}}
  command: llmsoak stub --port {{port}} --output-tokens 16 --ttft-ms 20 --itl-ms 1
  ready_timeout_s: 30
  model: stub-model
  timeout_s: 10
patterns:
  active: {{users: 2, think_time_s: {{uniform: [0.1, 0.3]}}, first_message_delay_s: 0}}
load: {{shape: constant, users: 2, spawn_rate: 2}}
run: {{duration: {duration}, workers: 0, checkpoint_interval: 1h}}
sampler: {{interval_s: 0.3, metrics_url: "{metrics_url}", sample_locust: false}}
slo: {{fail_on_leak: false}}
""")
    return path


def _run(profile: Path, out: Path) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-m", "llmsoak", "run", "--profile", str(profile), "--out", str(out),
                           "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=180)
    return proc.returncode, proc.stdout + proc.stderr


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def busy_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("telemetry")
    fake = serve_metrics("busy")
    try:
        code, out = _run(_profile(tmp / "busy.yaml", fake.url, "15s"), tmp / "run")
    finally:
        fake.stop()
    return code, out, tmp / "run", fake


def test_server_metrics_are_recorded_on_the_samplers_clock(busy_run):
    code, out, run, fake = busy_run
    assert code == 0, out
    rows = _rows(run / "samples" / "server_metrics.csv")
    assert list(rows[0]) == list(SERVER_METRICS_COLUMNS)
    assert len(rows) >= 20, (len(rows), fake.scrapes)
    target_stamps = {r["timestamp"] for r in _rows(run / "samples" / "target.csv")}
    assert {r["timestamp"] for r in rows} <= target_stamps
    assert {float(r["kv_cache_usage_percent"]) for r in rows} == {97.0}
    argv = json.loads((run / "run.json").read_text())["processes"]["sampler_target"]["argv"]
    assert argv[argv.index("--metrics-url") + 1] == fake.url


def test_server_verdicts_reach_verdict_json_and_the_report(busy_run):
    code, out, run, _ = busy_run
    server = json.loads((run / "analysis" / "verdict.json").read_text())["server"]
    assert server["queue"]["verdict"] == "growing", server
    assert server["kv_cache"]["verdict"] == "saturated" and server["preemptions"]["total"] > 0
    html = (run / "analysis" / "report.html").read_text()
    assert "Server telemetry" in html and "KV cache saturated" in html
    assert (run / "analysis" / "charts" / "server.png").stat().st_size > 10_000
    # AND the end of the run says it in one line
    assert "llmsoak run: server: the server's queue grows" in out, out


@pytest.mark.parametrize("mode, status", [("404", "HTTP 404 Not Found"), ("silent", "no answer within")])
def test_a_metrics_url_that_fails_is_one_warning_and_an_event(tmp_path, mode, status):
    fake = serve_metrics(mode)
    try:
        code, out = _run(_profile(tmp_path / f"{mode}.yaml", fake.url, "6s"), tmp_path / "run")
    finally:
        fake.stop()
    assert "Traceback" not in out
    assert code in (0, 3), out  # the load ran; the server telemetry is only missing
    warnings = [line for line in out.splitlines() if fake.url in line]
    assert len(warnings) == 1 and "llmsoak run: warning: sampler.metrics_url" in warnings[0] and status in warnings[0], out
    alerts = [e for e in read_events(tmp_path / "run" / "events.csv") if fake.url in e["detail"]]
    assert [e["kind"] for e in alerts] == ["alert"] and status in alerts[0]["detail"], alerts
    assert _rows(tmp_path / "run" / "samples" / "server_metrics.csv") == []
    assert "not exposed" in (tmp_path / "run" / "analysis" / "report.html").read_text()
