"""The analysis' I/O side in-process: series readers, load relation, tracemalloc, charts, report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from support.analysis_runs import MIB, T0, make_run_dir

from llmsoak.analysis import charts
from llmsoak.analysis.compare import compare_verdicts, render_comparison_md
from llmsoak.analysis.llm_series import locust_totals, read_llm_timeseries, read_locust_history
from llmsoak.analysis.load_relation import relate_growth_to_load
from llmsoak.analysis.report import render_html, render_summary_md, write_outputs
from llmsoak.analysis.run_dir import analyze_run, discover_run
from llmsoak.analysis.tracemalloc_report import read_tracemalloc
from llmsoak.errors import CommandError


def test_minmax_band_keeps_extremes_and_bounds_the_points():
    x = np.arange(604_800, dtype=float)
    y = np.sin(x / 1000.0)
    y[123_456] = 50.0  # one spike must survive decimation
    xm, lo, hi = charts.minmax_band(x, y, columns=1000)
    assert len(xm) <= 1000
    assert hi.max() == 50.0 and lo.min() == pytest.approx(-1.0, abs=1e-6)
    assert np.all(lo <= hi) and np.all(np.diff(xm) > 0)
    # Short series come back untouched.
    xs, ls, hs = charts.minmax_band(np.arange(10.0), np.arange(10.0))
    assert list(ls) == list(hs) == list(range(10))


def test_human_scale_picks_readable_units():
    assert charts.human_scale(3 * 2**30, "bytes") == (2**30, "GiB")
    assert charts.human_scale(500 * 2**20, "bytes") == (2**20, "MiB")
    assert charts.human_scale(120.0, "ms") == (1.0, "ms")
    assert charts.human_scale(45_000.0, "ms") == (1000.0, "s")
    assert "+20 MiB/h" in charts.verdict_title("RSS", {"verdict": "leak", "unit": "bytes",
                                                       "slope_per_hour": 20 * MIB, "projected_7d": 4 * 2**30})


def test_llm_timeseries_repairs_are_noted(tmp_path):
    path = tmp_path / "llm_timeseries.csv"
    path.write_text("timestamp,pattern,users,requests,failures,ttft_p95_ms\n"
                    f"{T0 + 60},all,5,100,1,200\n"
                    f"{T0},all,5,90,0,180\n"           # out of order
                    f"{T0},all,5,95,0,185\n"           # duplicate minute
                    f"{T0 + 120},all,5,abc,0,190\n"    # non-numeric
                    f"{T0 + 180},all,5,80,0,170,9,9,9\n")  # too many fields
    series = read_llm_timeseries(path)
    notes = " ".join(series.notes)
    assert "sorted" in notes and "duplicate" in notes and "non-numeric" in notes and "malformed" in notes
    overall = series.overall()
    assert list(overall["timestamp"]) == [T0, T0 + 60, T0 + 120]
    assert overall["requests"].iloc[0] == 95  # the last duplicate wins
    assert np.isnan(overall["requests"].iloc[2])
    # Empty file: no data, not an error. No timestamp column: one clear error naming the file.
    (tmp_path / "empty.csv").write_text("")
    assert read_llm_timeseries(tmp_path / "empty.csv") is None
    (tmp_path / "bad.csv").write_text("minute,requests\n1,2\n")
    with pytest.raises(CommandError, match="bad.csv: line 1: no 'timestamp'"):
        read_llm_timeseries(tmp_path / "bad.csv")


def test_patterns_without_all_rows_are_summed(tmp_path):
    path = tmp_path / "llm_timeseries.csv"
    path.write_text("timestamp,pattern,requests,failures,ttft_p95_ms\n"
                    f"{T0},active,10,1,100\n{T0},casual,5,0,300\n")
    series = read_llm_timeseries(path)
    row = series.overall().iloc[0]
    assert row["requests"] == 15 and row["failures"] == 1 and row["ttft_p95_ms"] == 300
    assert series.patterns() == ["active", "casual"]


def test_locust_history_and_totals(tmp_path):
    run = make_run_dir(tmp_path / "run", hours=1.0)
    hist = read_locust_history(run / "locust" / "stats_history.csv")
    per_min = hist.overall()
    assert 60 <= len(per_min) <= 61 and per_min["requests"].sum() > 0  # T0 is not on a minute
    assert hist.source == "locust_history"
    totals = locust_totals(run / "locust" / "stats.csv")
    assert totals["sessions"] == 500 and totals["failures"] == 10
    assert totals["requests"] == pytest.approx(per_min["requests"].sum(), rel=0.02)


def _frame(hours: float, per_request_bytes: float, per_hour_bytes: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    minutes = T0 + np.arange(0, hours * 3600, 60.0)
    busy = ((minutes - T0) // 60 % 30) < 15
    req = np.where(busy, 500.0, 0.0)
    t = T0 + np.arange(0, hours * 3600, 10.0)
    cum = np.interp(t, minutes + 60, np.cumsum(req))
    y = 300 * MIB + per_request_bytes * cum + per_hour_bytes * (t - T0) / 3600 + rng.normal(0, 0.2 * MIB, len(t))
    return pd.DataFrame({"timestamp": t, "rss_bytes": y}), pd.DataFrame({"timestamp": minutes, "requests": req})


def test_load_relation_recovers_bytes_per_request():
    samples, load = _frame(4.0, per_request_bytes=2048.0, per_hour_bytes=0.0)
    out = relate_growth_to_load(samples, "rss_bytes", load, {"sessions": 100.0})
    assert out["follows_load"] is True
    assert out["bytes_per_request"] == pytest.approx(2048.0, rel=0.1)
    assert out["idle_growth_per_hour"] < 0.1 * out["busy_growth_per_hour"]
    assert out["bytes_per_session"] == pytest.approx(out["growth"] / 100.0)


def test_load_relation_sees_time_driven_growth():
    samples, load = _frame(4.0, per_request_bytes=0.0, per_hour_bytes=10 * MIB)
    out = relate_growth_to_load(samples, "rss_bytes", load)
    assert out["follows_load"] is False
    assert out["growth_per_hour_without_load"] == pytest.approx(10 * MIB, rel=0.1)
    assert "does not follow load" in out["summary"]


def test_load_relation_without_per_minute_counts_uses_totals():
    samples, _ = _frame(2.0, per_request_bytes=0.0, per_hour_bytes=10 * MIB)
    out = relate_growth_to_load(samples, "rss_bytes", None, {"requests": 1000.0})
    assert out["follows_load"] is None and out["bytes_per_request"] == pytest.approx(out["growth"] / 1000.0)
    assert "cannot tell" in out["summary"]


def test_tracemalloc_ranks_growing_sites_and_skips_bad_lines(tmp_path):
    path = tmp_path / "app.jsonl"
    recs = [{"timestamp": T0 + k * 600, "elapsed_s": k * 600.0, "traced_bytes": 10 * MIB + k * MIB,
             "top": [{"file": "a.py", "line": 1, "size_diff_bytes": k * 1000, "count_diff": k, "size_bytes": 5000 + k * 1000},
                     {"file": "b.py", "line": 9, "size_diff_bytes": k * MIB, "count_diff": k, "size_bytes": MIB + k * MIB}]}
            for k in range(1, 7)]
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n[1,2]\n{broken\n")
    rep = read_tracemalloc([path])
    assert [s.site for s in rep.top] == ["b.py:9", "a.py:1"]
    assert rep.top[0].growth_bytes == 6 * MIB
    assert rep.top[0].growth_bytes_per_hour == pytest.approx(6 * MIB, rel=0.01)  # 1 MiB per 10 min
    assert rep.traced_growth_bytes_per_hour == pytest.approx(6 * MIB, rel=0.01)
    assert rep.snapshots == 6 and "skipped 2 malformed" in rep.notes[0]
    assert read_tracemalloc([tmp_path / "missing.jsonl"]) is None


def test_discover_finds_every_file_and_rejects_a_missing_dir(tmp_path):
    run = make_run_dir(tmp_path / "run", hours=1.0, with_tracemalloc=True)
    files = discover_run(run)
    assert list(files.samples) == ["stub"] and files.generator.name == "locust.csv"
    assert files.llm_timeseries and files.locust_stats and files.locust_history and files.events
    assert [p.name for p in files.tracemalloc] == ["app.jsonl"]
    with pytest.raises(CommandError, match="no such run directory"):
        discover_run(tmp_path / "absent")


def test_report_is_self_contained_and_escapes_text(tmp_path):
    run = make_run_dir(tmp_path / "run", hours=2.0, leak_mib_per_hour=30, with_tracemalloc=True)
    analysis = analyze_run(run)
    analysis.verdict["notes"].append("<script>alert(1)</script> in a note")
    written = write_outputs(analysis)
    html = written["report"].read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert html.count("<img ") == len([k for k in written if k.startswith("chart:")])
    assert "Verdict: <b>LEAK</b>" in html and "#c62828" in html  # banner coloured by verdict
    md = render_summary_md(analysis.verdict)
    # the severity rides along the verdict word (30 MiB/h on 400 MiB: +1260 % a week, fast)
    assert "| target | rss_bytes | **leak (fast)** |" in md
    assert render_html(analysis.verdict, {}).count("<img") == 0


def test_multiple_targets_are_all_judged(tmp_path):
    run = make_run_dir(tmp_path / "run", hours=3.0, leak_mib_per_hour=0, with_llm=False, with_locust=False)
    make_run_dir(tmp_path / "other", hours=3.0, leak_mib_per_hour=25, target="worker", with_llm=False,
                 with_locust=False)
    (tmp_path / "other" / "samples" / "worker.csv").rename(run / "samples" / "worker.csv")
    verdict = analyze_run(run).verdict
    assert set(verdict["targets"]) == {"stub", "worker"}
    assert verdict["targets"]["worker"]["verdict"] == "leak"
    assert verdict["verdict"] == "leak"  # any target leaking decides


def test_compare_marks_the_fixed_metric_improved():
    before = {"source": "a", "verdict": "leak", "metrics": {"rss_bytes": {
        "verdict": "leak", "unit": "bytes", "slope_per_hour": 20 * MIB, "slope_interval_per_hour": [19 * MIB, 21 * MIB],
        "projected_7d": 3e9}}}
    after = {"source": "b", "verdict": "ok", "metrics": {"rss_bytes": {
        "verdict": "ok", "unit": "bytes", "slope_per_hour": 0.01 * MIB, "slope_interval_per_hour": [-0.1 * MIB, 0.1 * MIB],
        "projected_7d": 4e8}}}
    cmp = compare_verdicts(before, after)
    assert cmp["metrics"]["rss_bytes"]["improved"] is True
    assert cmp["metrics"]["rss_bytes"]["slope_ratio"] == pytest.approx(0.0005)
    assert "leak → ok" in cmp["summary"] and "| rss_bytes | leak | ok |" in render_comparison_md(cmp)
    assert compare_verdicts(after, before)["metrics"]["rss_bytes"]["improved"] is False
