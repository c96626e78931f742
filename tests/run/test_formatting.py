"""The one formatting module (llmsoak/formatting.py): live readings (terminal, --status) and spans.

Three-significant-digit findings are pinned in tests/analysis/test_analysis_edges.py and compared
with the web page's JavaScript in tests/webui/test_format_js.py."""

from __future__ import annotations

import math

from llmsoak.formatting import (
    format_bytes,
    format_bytes_per_hour,
    format_duration,
    format_fixed,
    format_num,
    format_sig,
    format_span_h,
)
from llmsoak.run.progress import progress_line
from llmsoak.run.status import format_status


def test_live_readings_have_fixed_decimals():
    assert [format_bytes(v) for v in (0, 512, 1536, 1.2 * 2**30, -3 * 2**20, 5 * 2**50)] == [
        "0 B", "512 B", "1.5 KiB", "1.2 GiB", "-3.0 MiB", "5120.0 TiB"]
    assert format_bytes(None) == format_bytes(math.nan) == "n/a"
    assert [format_bytes_per_hour(v) for v in (12.5 * 2**20, -2048, 0.4, -0.4)] == [
        "+12.5 MiB/h", "-2.0 KiB/h", "0 B/h", "0 B/h"]  # never "-0 B/h"
    assert [format_duration(s) for s in (0, 59.6, 3725, 2 * 86400 + 3 * 3600 + 59, -5)] == [
        "0s", "1m00s", "1h02m05s", "2d03h00m", "0s"]
    assert (format_fixed(40.0), format_fixed(12.34, 1), format_fixed(None), format_fixed(None, 0, "0")) == (
        "40", "12.3", "-", "0")
    assert [format_num(v) for v in (12.34, 99.94, 140.4, None)] == ["12.3", "99.9", "140", "–"]


def test_spans_for_sentences():
    assert [format_span_h(h) for h in (10 / 3600, 4 / 60, 0.99, 1.5, 24.0, 96.0)] == [
        "10 s", "4 min", "59 min", "1.5 h", "24 h", "96 h (4 days)"]


def test_ties_round_away_from_zero_like_the_web_page():
    assert [format_sig(v) for v in (1225.0, -1225.0, 1.125e10, 5464.123)] == ["1230", "-1230", "1.13e+10", "5460"]


def test_progress_line_and_status_use_the_shared_formatting():
    snap = {"elapsed_s": 3725, "remaining_s": 600, "users": 40.0, "rps": 12.34, "fail_per_s": 0.0,
            "failures_total": 3.0, "memory_now_bytes": 1.2 * 2**30, "slope_per_hour": 2.1 * 2**20}
    assert progress_line(snap) == ("elapsed 1h02m05s  ETA 10m00s  users 40  req/s 12.3  failures 0.0/s (3)  "
                                   "memory 1.2 GiB  slope +2.1 MiB/h")
    status = format_status({**snap, "id": "r", "profile": "p", "status": "running", "duration_s": 4325,
                            "segments": 1, "running": True, "requests_total": None, "projected_7d": None})
    assert "load:       users 40  req/s 12.3  failures 0.0/s, 3 of 0 requests" in status
    assert "trend:      slope +2.1 MiB/h, 7-day projection n/a" in status
