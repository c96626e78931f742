"""The server telemetry verdicts (llmsoak/analysis/server_metrics.py): queue growth, KV-cache
saturation and preemptions, on fixed data, then through ``llmsoak analyze`` of a run directory
whose samples/server_metrics.csv has a known truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from support.analysis_runs import T0, _ar1, make_run_dir

from llmsoak.analysis.report import write_outputs
from llmsoak.analysis.run_dir import analyze_run
from llmsoak.analysis.server_metrics import counter_increase, kv_saturation, queue_growth
from llmsoak.formats import SERVER_METRICS_COLUMNS


def _t(n: int, interval_s: float = 10.0) -> np.ndarray:
    return T0 + interval_s * np.arange(n)


def test_a_queue_that_builds_up_is_growing():
    rng = np.random.default_rng(3)
    n = 600
    waiting = np.clip(np.linspace(0, 12, n) + rng.normal(0, 1.5, n), 0, None).round()
    q = queue_growth(_t(n), waiting)
    assert q["verdict"] == "growing", q
    assert q["last_quarter_mean"] > q["first_quarter_mean"] + 5
    assert q["slope_per_hour"] > 0


@pytest.mark.parametrize("phi", [0.0, 0.9])
def test_a_busy_but_steady_queue_is_stable_in_most_seeds(phi):
    # GIVEN waiting requests that fluctuate around 3 with autocorrelated noise and no trend
    n, stable = 600, 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        waiting = np.clip(3 + _ar1(n, phi, 1.0, rng), 0, None).round()
        stable += queue_growth(_t(n), waiting)["verdict"] == "stable"
    # THEN the window means and the materiality rule keep false alarms rare (38 of 40 at least)
    assert stable >= 38, stable


def test_an_empty_queue_and_too_few_scrapes():
    assert queue_growth(_t(100), np.zeros(100))["verdict"] == "stable"
    assert queue_growth(_t(5), np.arange(5))["verdict"] == "inconclusive"


def test_kv_cache_saturated_when_full_for_a_fifth_of_the_run():
    kv = np.r_[np.full(70, 60.0), np.full(30, 97.0)]
    sat = kv_saturation(kv)
    assert sat["verdict"] == "saturated" and sat["share_full"] == pytest.approx(0.3)
    ok = kv_saturation(np.r_[np.full(90, 60.0), np.full(10, 99.0)])
    assert ok["verdict"] == "ok" and ok["max"] == 99.0
    assert kv_saturation([])["verdict"] == "inconclusive"


def test_counter_increase_counts_across_a_restart():
    assert counter_increase([0, 2, 5, 5, 1, 4]) == 9  # 5 before the restart, 4 after
    assert counter_increase([]) is None


def _server_csv(path, n: int, interval_s: float, waiting, kv, preempt) -> None:
    df = pd.DataFrame({"timestamp": T0 + interval_s * np.arange(n), "requests_running": 4.0,
                       "requests_waiting": waiting, "kv_cache_usage_percent": kv, "preemptions_total": preempt})
    df[list(SERVER_METRICS_COLUMNS)].to_csv(path, index=False)


def test_analyze_run_puts_server_verdicts_into_verdict_json_and_report(tmp_path):
    # GIVEN a 6-hour run (10 s samples) whose server queue builds up and whose KV cache is full
    # for the second half, with 40 preemptions
    run = make_run_dir(tmp_path / "run", hours=6.0)
    n = 2160
    _server_csv(run / "samples" / "server_metrics.csv", n, 10.0, np.linspace(0, 20, n).round(),
                np.r_[np.full(n // 2, 50.0), np.full(n - n // 2, 98.0)], np.linspace(0, 40, n).round())
    # WHEN it is analysed
    analysis = analyze_run(run)
    written = write_outputs(analysis)
    # THEN verdict.json has the server's verdicts, the target list does not mistake the file for
    # a process tree, and the report and summary show them with their chart
    verdict = json.loads(written["json"].read_text())
    server = verdict["server"]
    assert server["queue"]["verdict"] == "growing" and server["kv_cache"]["verdict"] == "saturated"
    assert server["preemptions"]["total"] == 40
    assert "queue grows" in server["reason"] and "KV cache saturated" in server["reason"]
    assert "server_metrics" not in analysis.targets and "targets" not in verdict
    html = written["report"].read_text()
    assert "Server telemetry" in html and "saturated" in html and "growing" in html
    assert "chart:server" in written
    assert "## Server telemetry" in written["summary"].read_text()


def test_a_healthy_server_reads_stable_and_ok(tmp_path):
    run = make_run_dir(tmp_path / "run", hours=2.0, with_generator=False)
    n = 720
    rng = np.random.default_rng(5)
    _server_csv(run / "samples" / "server_metrics.csv", n, 10.0, rng.integers(0, 3, n),
                40 + rng.normal(0, 5, n), np.zeros(n))
    server = analyze_run(run).verdict["server"]
    assert server["queue"]["verdict"] == "stable" and server["kv_cache"]["verdict"] == "ok"
    assert server["preemptions"]["total"] == 0
    assert server["reason"].startswith("no queue growth")


def test_llama_cpp_without_a_kv_gauge_and_an_empty_file(tmp_path):
    run = make_run_dir(tmp_path / "run", hours=1.0, with_generator=False)
    n = 360
    _server_csv(run / "samples" / "server_metrics.csv", n, 10.0, np.zeros(n), np.nan, np.nan)
    server = analyze_run(run).verdict["server"]
    assert server["exported"] == ["requests_running", "requests_waiting"]
    assert "kv_cache" not in server and "preemptions" not in server
    # AND a server with no /metrics (llama-cpp-python): a header only, reported as not exposed
    (run / "samples" / "server_metrics.csv").write_text(",".join(SERVER_METRICS_COLUMNS) + "\n")
    analysis = analyze_run(run)
    server = analysis.verdict["server"]
    assert server["samples"] == 0 and server["exported"] == [] and server["reason"].startswith("not exposed")
    written = write_outputs(analysis)
    assert "not exposed" in written["report"].read_text() and "chart:server" not in written
