"""Bounded master memory: Locust's per-second counters, chart history and error rows stay bounded.

The time-compressed test runs Locust's own stats code on a simulated clock
(tests/support/locust_memory_driver.py) in two real processes, with and without llmsoak's trimming, and
watches their RSS. Full week (168 h) figures are in docs/locust.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from locust.stats import RequestStats

from llmsoak.locust import bounded_memory

DRIVER = Path(__file__).resolve().parents[1] / "support" / "locust_memory_driver.py"


@pytest.mark.slow
def test_master_rss_stays_flat_over_compressed_hours_only_with_trimming():
    hours = "40"
    procs = {mode: subprocess.Popen([sys.executable, str(DRIVER), mode, hours], stdout=subprocess.PIPE, text=True)
             for mode in ("trimmed", "untrimmed")}
    result = {}
    for mode, proc in procs.items():
        stdout, _ = proc.communicate(timeout=280)
        assert proc.returncode == 0
        result[mode] = json.loads(stdout)
    assert result["trimmed"]["requests"] == result["untrimmed"]["requests"]  # same work done

    def growth(mode):  # RSS growth after the first 8 simulated hours (warm-up, allocator arenas)
        samples = result[mode]["samples"]
        return samples[-1]["rss_bytes"] - samples[8]["rss_bytes"]

    mib = 2**20
    assert growth("untrimmed") > 60 * mib, result["untrimmed"]["samples"][-1]
    assert growth("trimmed") < 8 * mib, result["trimmed"]["samples"]
    last = result["trimmed"]["samples"][-1]
    assert last["per_second_keys"] <= bounded_memory.KEEP_PER_SECOND_S + 61
    assert last["history_rows"] <= bounded_memory.MAX_HISTORY_ROWS


def test_trim_keeps_recent_seconds_and_cumulative_counts():
    stats = RequestStats()
    entry = stats.entries[("x", "TTFT")]
    for t in range(1000, 2000):
        entry.num_reqs_per_sec[t] += 2
        entry.num_fail_per_sec[t] += 1
    entry.num_requests = 2000
    removed = bounded_memory.trim_per_second(stats, 2000)
    assert removed == 2 * (1000 - bounded_memory.KEEP_PER_SECOND_S)
    assert min(entry.num_reqs_per_sec) == 2000 - bounded_memory.KEEP_PER_SECOND_S
    assert entry.num_requests == 2000


def test_history_is_thinned_in_place_keeping_the_newest_rows():
    stats = RequestStats()
    stats.history.extend({"time": i} for i in range(bounded_memory.MAX_HISTORY_ROWS + 1))
    same_list = stats.history
    bounded_memory.thin_history(stats)
    assert stats.history is same_list
    assert len(stats.history) <= bounded_memory.MAX_HISTORY_ROWS
    assert stats.history[-1]["time"] == bounded_memory.MAX_HISTORY_ROWS
    assert stats.history[0]["time"] == 0  # the start of the run stays on the chart


def test_unique_error_messages_are_capped_and_counted():
    stats = RequestStats()
    n = bounded_memory.MAX_ERRORS + 300
    for i in range(n):
        stats.log_error("POST", "/x", f"boom id={i}")
    bounded_memory.cap_errors(stats)
    assert len(stats.errors) <= bounded_memory.MAX_ERRORS
    assert sum(e.occurrences for e in stats.errors.values()) == n
