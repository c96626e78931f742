"""Web UI parts without Locust: alerts, the sampler poller against a real sampler, the trend, the tables."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
import pytest
from support.processes import wait_until
from support.webui import start_sampler

from llmsoak.events import read_events
from llmsoak.webui import llm_view, tabs
from llmsoak.webui.alerts import RECENT_MAX, AlertLog, check_thresholds
from llmsoak.webui.live_source import SamplerSource, normalise_sampler_url
from llmsoak.webui.memory_trend import memory_trend


@dataclass(frozen=True)
class Slo:
    ttft_p95_ms: float | None = 500.0
    error_rate: float | None = 0.01
    memory_warn_bytes: int | None = 1_000_000
    memory_limit_bytes: int | None = 2_000_000


# ---------------------------------------------------------------- alerts
def test_thresholds_cross_each_slo_and_limit_supersedes_warn():
    # GIVEN every threshold set WHEN all are crossed THEN one alert each, limit instead of warn
    alerts = check_thresholds(Slo(), rss_bytes=3_000_000, ttft_p95_ms=900, error_rate=0.2, requests=100)
    assert {a.key for a in alerts} == {"memory_limit", "ttft_p95", "error_rate"}
    assert next(a for a in alerts if a.key == "memory_limit").severity == "critical"
    # below the limit but above the warning level → only the warning
    assert [a.key for a in check_thresholds(Slo(), rss_bytes=1_500_000)] == ["memory_warn"]
    # all fine → nothing; no profile → nothing
    assert check_thresholds(Slo(), rss_bytes=10, ttft_p95_ms=100, error_rate=0.0, requests=100) == []
    assert check_thresholds(None, rss_bytes=10**12) == []


def test_latency_and_error_alerts_wait_for_enough_requests():
    assert check_thresholds(Slo(), ttft_p95_ms=9000, error_rate=1.0, requests=3) == []
    assert len(check_thresholds(Slo(), ttft_p95_ms=9000, error_rate=1.0, requests=20)) == 2


def test_alert_log_records_each_crossing_once_and_its_clearing(tmp_path, caplog):
    events = tmp_path / "events.csv"
    log = AlertLog(events)
    crossing = check_thresholds(Slo(), rss_bytes=1_500_000)
    with caplog.at_level("INFO"):
        assert len(log.update(crossing)) == 1
        assert log.update(crossing) == []  # still crossed: no second log line or event
        log.update([])  # cleared
    rows = read_events(events)
    assert [r["kind"] for r in rows] == ["alert", "alert"]
    assert "warning level" in rows[0]["detail"] and rows[1]["detail"] == "cleared: memory_warn"
    assert sum("llmsoak alert:" in r.message for r in caplog.records) == 1
    assert log.to_json()["active"] == []


def test_alert_history_is_bounded():
    log = AlertLog(None)
    crossing = check_thresholds(Slo(), rss_bytes=1_500_000)
    for _ in range(RECENT_MAX):  # a flapping threshold for a week must not grow memory
        log.update(crossing)
        log.update([])
    assert len(log.recent) == RECENT_MAX
    assert len(log.to_json()["recent"]) <= 20


# ---------------------------------------------------------------- sampler poller
@pytest.mark.parametrize("bad", ["", "ftp://x:1", "http://127.0.0.1", "127.0.0.1:0", "http://h:notaport"])
def test_bad_sampler_urls_name_the_problem(bad):
    with pytest.raises(ValueError, match="sampler URL"):
        normalise_sampler_url(bad)


def test_sampler_url_forms():
    assert normalise_sampler_url("127.0.0.1:9100") == "http://127.0.0.1:9100"
    assert normalise_sampler_url("http://127.0.0.1:9100/") == "http://127.0.0.1:9100"


def test_unreachable_sampler_is_reported_not_raised():
    with __import__("socket").socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = SamplerSource(f"127.0.0.1:{port}", timeout_s=1.0)
    assert source.poll() is False
    assert source.status == "unreachable" and f":{port}" in source.error
    assert source.series("rss_bytes") == []


def test_poller_reads_a_real_sampler_incrementally(tmp_path):
    # GIVEN a real sampler watching this test process
    sampler = start_sampler(os.getpid(), tmp_path)
    try:
        source = SamplerSource(sampler.url, timeout_s=5.0)
        # WHEN polled a few times
        wait_until(lambda: source.poll() and len(source.recent) >= 3, timeout=20, interval=0.3,
                   what="three samples through the poller")
        first = len(source.recent)
        time.sleep(1.2)
        assert source.poll()
        # THEN rows arrive once each (since=), the latest sample and the history are there
        timestamps = [r[0] for r in source.recent]
        assert timestamps == sorted(set(timestamps)) and len(source.recent) > first
        assert source.status == "attached"
        assert source.latest_sample()["rss_bytes"] > 0
        assert source.history and "rss_bytes_min" in source.history_columns
        series = source.series("rss_bytes")
        assert series and all(v > 0 for _, v in series)
        assert [t for t, _ in series] == sorted(t for t, _ in series)
    finally:
        sampler.stop()


def test_series_are_thinned_for_the_browser():
    source = SamplerSource(None)
    source.recent_columns = ("timestamp", "rss_bytes")
    source.recent.extend((float(i), float(i)) for i in range(10_000))
    points = source.series("rss_bytes", max_points=500)
    assert len(points) <= 501 and points[-1] == [9999.0, 9999.0] and points[0] == [0.0, 0.0]


# ---------------------------------------------------------------- trend
def test_memory_trend_uses_the_analysis_core_and_sees_a_leak():
    # GIVEN two hours of per-minute RSS growing 20 MiB/h with GC noise
    rng = np.random.default_rng(1)
    t0 = 1_700_000_000.0
    rows = [(t0 + 60 * i, 4242, t0 - 10, 500e6 + 20 * 2**20 * i / 60 + rng.normal(0, 2e6)) for i in range(120)]
    out = memory_trend(("timestamp", "pid", "create_time", "rss_bytes"), rows, limit_bytes=2e9)
    assert out["status"] == "ok", out
    verdict = out["verdict"]
    assert verdict["verdict"] == "leak"
    assert 15 * 2**20 < verdict["slope_per_hour"] < 25 * 2**20
    assert verdict["hours_to_limit"] is not None
    # Two hours carried 7 days ahead is about 90× beyond the data: no projection; its card says why
    assert verdict["projected_7d"] is None and 80 < verdict["extrapolation"] < 100
    cards = {label: (value, cls, note) for label, value, cls, note in out["cards"]}
    assert cards["Projected at 7 d"][:2] == ("—", "muted") and cards["Projected at 7 d"][2].startswith("(none from 1.")
    assert cards["Verdict so far"][0].startswith("leak (") and cards["Growth"][0].startswith("+")
    assert len(out["trend"]) >= 2 and out["envelope"]


def test_memory_trend_waits_for_enough_samples():
    out = memory_trend(("timestamp", "rss_bytes"), [(1.0, 5.0), (2.0, 5.0)])
    assert out["status"] == "waiting" and "2 samples" in out["reason"]
    assert memory_trend(("timestamp",), [])["status"] == "waiting"


# ---------------------------------------------------------------- LLM snapshot → rows
def _summary(requests, failures, ttft_p95):
    return {"requests": requests, "failures": failures,
            "failures_by_class": {"http": failures, "timeout": 0}, "ttft_p50_ms": ttft_p95 / 2,
            "ttft_p95_ms": ttft_p95, "ttft_p99_ms": ttft_p95 * 1.2, "itl_p50_ms": 0.4, "itl_p95_ms": 0.9,
            "tpot_p50_ms": 0.5, "e2e_p50_ms": 300.0, "e2e_p95_ms": 450.0, "e2e_p99_ms": 500.0,
            "input_tokens": 1000, "output_tokens": 5000, "tokens_per_s": 80.0}


def test_pattern_rows_follow_the_plugin_schema():
    # The schema documented in llmsoak.locust.timeseries.get_llm_state.
    snapshot = {"timestamp": 1.0, "role": "master", "patterns": {
        "active": {"users": 3, "current": None, "cumulative": _summary(40, 2, 120.0)}},
        "all": {"users": 3, "current": {**_summary(10, 1, 150.0), "pattern": "all"},
                "cumulative": _summary(40, 2, 120.0)}}
    rows = llm_view.pattern_rows(snapshot)
    assert [r["pattern"] for r in rows] == ["active", "all"]
    active, overall = rows
    assert active["current_span"] == "run" and active["current_ttft_p95_ms"] == 120.0
    assert overall["current_span"] == "minute" and overall["current_ttft_p95_ms"] == 150.0
    assert overall["error_rate"] == pytest.approx(0.05) and overall["current_error_rate"] == pytest.approx(0.1)
    assert llm_view.overall_row(rows) is overall
    table = tabs.llm_table_rows(rows)
    assert table[1]["failclasses"] == "http 2" and table[1]["ttft"] == "60.0 / 120 / 144"
    assert llm_view.pattern_rows(None) == [] and llm_view.pattern_rows({"patterns": "x"}) == []


# ---------------------------------------------------------------- figures that read well
_INCONCLUSIVE = {"verdict": "inconclusive", "slope_per_hour": 2.3e9, "slope_interval_per_hour": [6.2e8, 3.9e9],
                 "growth_pct_per_hour": 5464.123, "projected_7d": 3.9e11, "hours_to_limit": 0.1,
                 "reason": "changes course"}
_OK = {"verdict": "ok", "slope_per_hour": -1e3, "slope_interval_per_hour": [-5e4, 4e4],
       "growth_pct_per_hour": -0.0001, "projected_7d": 4e8, "hours_to_limit": None, "reason": "flat"}
_LEAK = {"verdict": "leak", "slope_per_hour": 2.1e7, "slope_interval_per_hour": [2.0e7, 2.2e7],
         "growth_pct_per_hour": 4.3712, "projected_7d": 3.9e9, "hours_to_limit": 75.63, "reason": "grows"}


def test_soak_tab_rounds_and_does_not_shout_projections_that_are_not_findings():
    # GIVEN an inconclusive verdict with a wild 7-day value (the screenshot's 362 GiB, 5464.123 %/h)
    rows = dict(tabs.trend_rows(_INCONCLUSIVE))
    # THEN growth has 3 significant digits and projection/hours say "not a trend yet"
    assert rows["Growth per hour"] == "+5460 %/h" and rows["Memory slope"] == "+2.14 GiB/h"
    assert rows["Projected at 7 days uptime"] == "— (not a trend yet)"
    assert rows["Hours to limit"] == "0.1 h (not a trend yet)"  # the interval excludes 0 upward
    # AND for "ok" the projection is the flat level and there are no hours to a limit
    ok = dict(tabs.trend_rows(_OK))
    assert ok["Projected at 7 days uptime"] == "381 MiB (no leak: the flat level)" and ok["Hours to limit"] == "–"
    # AND a leak's figures are plain findings
    leak = dict(tabs.trend_rows(_LEAK))
    assert leak["Projected at 7 days uptime"] == "3.63 GiB" and leak["Hours to limit"] == "75.6 h (3.2 days)"
    assert leak["Growth per hour"] == "+4.37 %/h"


def _node(script: str) -> str:
    import json as _json
    import shutil
    import subprocess
    from pathlib import Path

    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node is not installed: the Soak page's formatting runs only in the browser test")
    js = Path(__file__).resolve().parents[2] / "llmsoak" / "webui" / "static" / "soak.js"
    out = subprocess.run([node, "-e", f"const s = require({_json.dumps(str(js))});\n{script}"],
                         capture_output=True, text=True, timeout=30, check=True)
    return out.stdout


def test_soak_page_formats_like_the_analysis():
    # GIVEN the page's own JavaScript, run by node (real code, no browser needed)
    import json as _json

    from llmsoak.formatting import format_bytes_sig, format_sig

    values = [5464.123, 0.012345, 20.0, 999.7, -3.594, 0.0, 123456.7, 1e-5, 2.5e9]
    sizes = [0, 1, 1000, 1023.9 * 1024, 400 * 2**20, 3.72 * 2**30, -5e-8, 2.3e9]
    out = _json.loads(_node(f"console.log(JSON.stringify([{_json.dumps(values)}.map(v => s.fmtSig(v)), "
                            f"{_json.dumps(sizes)}.map(v => s.fmtBytes(v))]))"))
    # THEN fmtSig / fmtBytes agree with the Python formatting used in reports
    assert out[0] == [format_sig(v) for v in values]
    assert out[1] == [format_bytes_sig(v) for v in sizes]


def test_soak_page_cards_grey_out_projections_that_are_not_findings():
    import json as _json

    script = "console.log(JSON.stringify([{}].map(v => s.trendCards(v))))".format(
        ", ".join(_json.dumps(v) for v in (_INCONCLUSIVE, _OK, _LEAK)))
    inconclusive, ok, leak = ({label: (value, cls, note) for label, value, cls, note in cards}
                              for cards in _json.loads(_node(script)))
    # THEN inconclusive: growth rounded, projection and hours greyed "(not a trend yet)"
    assert inconclusive["Growth"][0] == "+5460 %/h"
    assert inconclusive["Projected at 7 d"] == ("—", "muted", "(not a trend yet)")
    assert inconclusive["Hours to limit"] == ("0.1 h", "muted", "(not a trend yet)")
    # AND ok: the flat level, greyed; no hours to a limit
    assert ok["Projected at 7 d"] == ("381 MiB", "muted", "(no leak: flat)") and ok["Hours to limit"][0] == "–"
    # AND leak: plain findings
    assert leak["Projected at 7 d"] == ("3.63 GiB", "", "") and leak["Hours to limit"] == ("75.6 h (3.2 days)", "", "")
