"""``llmsoak analyze`` as a user runs it: a real subprocess on synthetic run directories.

GIVEN run directories with known ground truth (tests/support/analysis_runs.py), WHEN analyze runs, THEN
the exit code, verdict.json, charts, report.html and summary.md say what the data holds; bad
input gives exit 2 with one line naming the file and never a traceback.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from support.analysis_runs import MIB, make_run_dir

PER_METRIC_KEYS = {"verdict", "unit", "slope_per_hour", "slope_interval_per_hour", "growth_pct_per_hour",
                   "projected_7d", "projected_interval_7d", "hours_to_limit", "restarts", "reason"}


def analyze(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmsoak", "analyze", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture(scope="module")
def leaking_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    run = make_run_dir(tmp_path_factory.mktemp("leak") / "run", leak_mib_per_hour=20, with_tracemalloc=True,
                       limit="2GiB")
    return run, analyze(run)


@pytest.fixture(scope="module")
def healthy_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    run = make_run_dir(tmp_path_factory.mktemp("ok") / "run", leak_mib_per_hour=0, seed=3)
    return run, analyze(run)


def test_leaking_run_exits_1_with_the_design_verdict_json(leaking_run):
    run, proc = leaking_run
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout.startswith("verdict: leak")
    verdict = json.loads((run / "analysis" / "verdict.json").read_text())
    assert verdict["schema"] == 1 and verdict["verdict"] == "leak"
    rss = verdict["metrics"]["rss_bytes"]
    assert PER_METRIC_KEYS <= set(rss)
    assert rss["verdict"] == "leak" and rss["unit"] == "bytes"
    lo, hi = rss["slope_interval_per_hour"]
    assert lo <= 20 * MIB <= hi * 1.1, (lo / MIB, hi / MIB)  # ground truth: 20 MiB/h
    # 6 h of data carried to 7 days of uptime is 27× beyond it: no projection (null), and no
    # weekly figure in the reason; the time to the limit is a finding
    assert rss["projected_7d"] is None and 26 < rss["extrapolation"] < 28
    assert "no 7-day projection: 6 h of data would be carried 27× beyond it" in rss["reason"]
    # The limit comes from profile.yaml (slo.memory_limit_bytes: 2GiB): about (2048-520)/20 h away.
    assert verdict["limit_bytes"] == 2 * 1024 * MIB
    assert 55 < rss["hours_to_limit"] < 100 and rss["severity"] == "fast"
    # AND only the leaking memory metrics decided it: the thread and fd counts (inconclusive) did not
    assert verdict["decided_by"] == ["rss_bytes", "uss_bytes"], verdict["decided_by"]
    assert verdict["metrics"]["num_fds"]["verdict"] != "leak"


def test_leaking_run_relates_growth_to_load_and_names_the_growing_line(leaking_run):
    run, _ = leaking_run
    verdict = json.loads((run / "analysis" / "verdict.json").read_text())
    load = verdict["load"]
    # Ground truth: 20 MiB/h at ~402 requests/min on average ≈ 870 bytes per request, only while busy.
    assert load["follows_load"] is True, load["summary"]
    assert 500 < load["bytes_per_request"] < 1300
    assert load["bytes_per_session"] > 0 and load["sessions_total"] == 500
    assert verdict["tracemalloc"]["top"][0]["site"] == "app/sessions.py:42"
    assert any("malformed" in n for n in verdict["notes"])  # the bad JSONL line is reported
    assert set(verdict["latency"]) >= {"ttft_p95_ms", "e2e_p95_ms", "error_rate_percent"}
    assert verdict["generator"]["metrics"]["rss_bytes"]["verdict"] in ("ok", "inconclusive")


def test_leaking_run_writes_readable_charts_and_a_self_contained_report(leaking_run):
    run, _ = leaking_run
    out = run / "analysis"
    for name in ("memory", "cpu", "threads_fds", "latency", "throughput", "errors", "generator"):
        width, height = png_size(out / "charts" / f"{name}.png")
        assert width >= 1000 and height >= 300, (name, width, height)
        assert (out / "charts" / f"{name}.png").stat().st_size > 20_000
    html = (out / "report.html").read_text()
    assert "LEAK" in html and html.count("data:image/png;base64,") == 7
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert " src='data:" in html and "src='charts" not in html
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# llmsoak analysis: LEAK") and "app/sessions.py:42" in summary
    assert not list(out.rglob(".*.tmp")), "temporary files left behind"


def test_healthy_run_exits_0(healthy_run):
    run, proc = healthy_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    verdict = json.loads((run / "analysis" / "verdict.json").read_text())
    assert verdict["verdict"] == "ok"
    assert verdict["metrics"]["rss_bytes"]["verdict"] == "ok"
    assert verdict["load"]["follows_load"] is None
    html = (run / "analysis" / "report.html").read_text()
    assert "Verdict: <b>OK</b>" in html


def test_time_driven_growth_is_told_apart_from_load(tmp_path):
    run = make_run_dir(tmp_path / "run", leak_mib_per_hour=20, leak_follows_load=False, with_llm=True)
    proc = analyze(run, "--no-charts")
    assert proc.returncode == 1
    load = json.loads((run / "analysis" / "verdict.json").read_text())["load"]
    assert load["follows_load"] is False, load["summary"]
    assert "does not follow load" in proc.stdout


def test_restarts_do_not_hide_a_leak(tmp_path):
    run = make_run_dir(tmp_path / "run", leak_mib_per_hour=30, restarts_at_h=(2.0, 4.0),
                       with_llm=False, with_locust=False, with_generator=False)
    proc = analyze(run, "--no-charts")
    assert proc.returncode == 1, proc.stdout
    verdict = json.loads((run / "analysis" / "verdict.json").read_text())
    assert verdict["metrics"]["rss_bytes"]["restarts"] == 2
    assert not (run / "analysis" / "charts").exists()  # --no-charts
    assert "latency" not in verdict and "load" not in verdict
    assert any("no llm_timeseries.csv" in n for n in verdict["notes"])


def test_too_short_run_is_inconclusive_exit_3(tmp_path):
    run = make_run_dir(tmp_path / "run", hours=0.25, interval_s=5.0, with_locust=False)
    proc = analyze(run, "--no-charts")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert json.loads((run / "analysis" / "verdict.json").read_text())["verdict"] == "inconclusive"


def test_samples_mode_with_json_charts_and_limit(tmp_path):
    run = make_run_dir(tmp_path / "run", hours=12.0, leak_mib_per_hour=20, with_llm=False, with_locust=False)
    out_json, charts = tmp_path / "v.json", tmp_path / "charts"
    proc = analyze("--samples", run / "samples" / "stub.csv", "--limit", "4GiB", "--json", out_json,
                   "--charts", charts)
    assert proc.returncode == 1, proc.stderr
    assert "rss_bytes: leak (moderate)" in proc.stdout and "7 days" in proc.stdout and "limit in" in proc.stdout
    verdict = json.loads(out_json.read_text())
    assert list(verdict["metrics"]) == ["rss_bytes"] and verdict["limit_bytes"] == 4 * 1024 * MIB
    rss = verdict["metrics"]["rss_bytes"]
    assert rss["hours_to_limit"] > 100 and rss["severity"] == "moderate"
    # 12 h of data, 13× beyond it: a projection (400 MiB + 168 h x 20 MiB/h ≈ 3.7 GiB) and its interval
    assert 3.4 * 1024 * MIB < rss["projected_7d"] < 4 * 1024 * MIB and 12 < rss["extrapolation"] < 14
    lo, hi = rss["projected_interval_7d"]
    assert lo < rss["projected_7d"] < hi
    assert png_size(charts / "memory.png")[0] >= 1000
    # Another metric; no outputs asked for: only the stdout summary. A flat fd count over 12 h
    # rules out 0.25 fd/h (one fd takes 8 h to show): ok.
    proc = analyze("--samples", run / "samples" / "stub.csv", "--metric", "num_fds", "--quiet")
    assert proc.returncode == 0 and proc.stdout.strip().startswith("verdict: ok")


def test_twenty_seconds_of_an_idle_process_is_too_short_to_call_ok(tmp_path):
    # GIVEN 20 s of an idle process: rss constant, one sample every 0.5 s, same pid throughout
    csv = tmp_path / "idle.csv"
    rows = [f"{1.7e9 + 0.5 * i:.3f},4242,1699999000.0,25726976,1,7" for i in range(41)]
    csv.write_text("timestamp,pid,create_time,rss_bytes,num_threads,num_fds\n" + "\n".join(rows) + "\n")
    # WHEN analysed
    out_json = tmp_path / "v.json"
    proc = analyze("--samples", csv, "--json", out_json)
    # THEN it is not "ok": 256 KiB/h would have grown 1.4 KiB in 20 s, under two 4-KiB pages
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "rules out" not in proc.stdout
    assert "too short to rule out a leak of 256 KiB/h" in proc.stdout and "1.42 KiB in 20 s" in proc.stdout
    rss = json.loads(out_json.read_text())["metrics"]["rss_bytes"]
    assert rss["verdict"] == "inconclusive" and rss["too_short"] is True and 0 < rss["hours_needed"] < 0.1


@pytest.mark.parametrize("leak_mib_per_hour, code, word", [(0, 0, "ok"), (40, 1, "leak")])
def test_counts_too_short_to_resolve_do_not_hide_the_memory_answer(tmp_path, leak_mib_per_hour, code, word):
    # GIVEN a 6-h run, flat or leaking memory, and flat thread and fd counts (one count at 0.25/h
    # needs 8 h to show, so the counts alone cannot be "ok")
    run = make_run_dir(tmp_path / "run", hours=6.0, leak_mib_per_hour=leak_mib_per_hour, with_llm=False,
                       with_locust=False, with_generator=False)
    # WHEN analysed
    proc = analyze(run)
    # THEN memory decides the headline and the exit code
    assert proc.returncode == code, proc.stdout + proc.stderr
    verdict = json.loads((run / "analysis" / "verdict.json").read_text())
    assert verdict["verdict"] == word and verdict["metrics"]["rss_bytes"]["verdict"] == word
    # AND each count's own row stays inconclusive, too short, with its reason, and a note says so
    for metric in ("num_threads", "num_fds"):
        mv = verdict["metrics"][metric]
        assert mv["verdict"] == "inconclusive" and mv["too_short"] is True
        assert "too short to rule out a leak of 0.25 count/h" in mv["reason"]
        assert f"{metric}: too short to rule out 0.25 count/h; about 8 h of samples would tell " \
               "(not counted in the verdict: memory decided it)" in verdict["notes"]


def test_repairable_input_is_repaired_and_noted(tmp_path):
    run = make_run_dir(tmp_path / "run", leak_mib_per_hour=20, with_llm=False, with_locust=False,
                       with_generator=False)
    csv = run / "samples" / "stub.csv"
    lines = csv.read_text().splitlines()
    header, rows = lines[0], lines[1:]
    rows[10], rows[11] = rows[11], rows[10]  # unsorted
    rows.insert(50, rows[49])  # duplicate timestamp
    rows[100] = rows[100].replace(rows[100].split(",")[3], "oops", 1)  # non-numeric rss cell
    csv.write_text("\n".join([header, *rows]) + "\n" + rows[-1][:7])  # truncated last line
    proc = analyze(run, "--no-charts")
    assert proc.returncode == 1, proc.stderr
    notes = " ".join(json.loads((run / "analysis" / "verdict.json").read_text())["notes"])
    for word in ("truncated", "sorted", "duplicate", "non-numeric"):
        assert word in notes, (word, notes)
    assert "truncated" in (run / "analysis" / "report.html").read_text()


@pytest.mark.parametrize("case", ["missing_dir", "no_samples", "empty_csv", "no_timestamp", "binary",
                                  "all_garbage", "bad_limit", "no_args", "missing_metric", "bad_llm_header"])
def test_bad_input_exits_2_with_one_line_naming_the_file(tmp_path, case):
    target = tmp_path / "run"
    (target / "samples").mkdir(parents=True)
    csv = target / "samples" / "stub.csv"
    args: list = [target]
    if case == "missing_dir":
        args = [tmp_path / "nope"]
    elif case == "no_samples":
        pass
    elif case == "empty_csv":
        csv.write_text("")
    elif case == "no_timestamp":
        csv.write_text("when,rss_bytes\n1,2\n")
    elif case == "binary":
        csv.write_bytes(b"\x00\x01\x02PK\x03\x04" * 100)
    elif case == "all_garbage":
        csv.write_text("timestamp,rss_bytes\nfoo,bar\nbaz,qux\n")
    elif case == "bad_limit":
        make_run_dir(target, hours=1.0, with_llm=False, with_locust=False)
        args = [target, "--limit", "lots"]
    elif case == "no_args":
        args = []
    elif case == "missing_metric":
        make_run_dir(target, hours=1.0, with_llm=False, with_locust=False)
        args = ["--samples", csv, "--metric", "gpu_memory_bytes"]
    elif case == "bad_llm_header":
        make_run_dir(target, hours=1.0, with_locust=False)
        (target / "llm_timeseries.csv").write_text("minute,pattern,requests\n1,all,3\n")
    proc = analyze(*args)
    assert proc.returncode == 2, (case, proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1, err
    expected = {"missing_dir": "nope", "no_samples": "no samples", "empty_csv": "stub.csv",
                "no_timestamp": "stub.csv:1", "binary": "stub.csv", "all_garbage": "stub.csv",
                "bad_limit": "--limit", "no_args": "RUN_DIR", "missing_metric": "gpu_memory_bytes",
                "bad_llm_header": "llm_timeseries.csv"}[case]
    assert expected in err[0], err[0]
    assert not (target / "analysis" / "verdict.json").exists()
