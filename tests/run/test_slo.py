"""The SLO gate (llmsoak/run/slo.py) on a real llm_timeseries.csv: every slo field has its check."""

from __future__ import annotations

import csv

from llmsoak.errors import EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_OK
from llmsoak.formats import LLM_TIMESERIES_COLUMNS
from llmsoak.profile import SloConfig
from llmsoak.run import slo


def _series(path, rows):
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, LLM_TIMESERIES_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_latency_slos_use_the_request_weighted_per_minute_p95(tmp_path):
    # GIVEN two minutes: 100 requests at TTFT p95 200 ms / E2E 2000 ms, then 300 at 400 / 6000
    path = _series(tmp_path / "llm_timeseries.csv", [
        {"timestamp": 60, "pattern": "all", "requests": 100, "failures": 1, "ttft_p95_ms": 200, "e2e_p95_ms": 2000},
        {"timestamp": 60, "pattern": "active", "requests": 100, "ttft_p95_ms": 9999, "e2e_p95_ms": 9999},
        {"timestamp": 120, "pattern": "all", "requests": 300, "failures": 3, "ttft_p95_ms": 400, "e2e_p95_ms": 6000},
    ])
    totals = slo.load_totals(path)
    assert totals == {"requests": 400, "failures": 4, "ttft_p95_ms": 350.0, "e2e_p95_ms": 5000.0}
    # WHEN the profile sets every SLO
    checks = slo.evaluate(SloConfig(ttft_p95_ms=400, e2e_p95_ms=4000, error_rate=0.02, memory_warn_bytes=10,
                                    memory_limit_bytes=100, fail_on_leak=True),
                          totals, max_rss=50, verdict={"verdict": "ok"})
    # THEN each has its check, in a fixed order; the E2E one is breached
    assert [(c.name, c.status) for c in checks] == [
        ("ttft_p95_ms", "pass"), ("e2e_p95_ms", "breach"), ("error_rate", "pass"),
        ("memory_limit_bytes", "pass"), ("memory_warn_bytes", "warn"), ("leak", "pass")]
    assert checks[1].detail == "E2E p95 5000 ms > 4000 ms" and slo.exit_code(checks) == EXIT_FAILED


def test_no_data_and_inconclusive(tmp_path):
    totals = slo.load_totals(tmp_path / "missing.csv", locust_totals=(10.0, 0.0))
    assert totals == {"requests": 10.0, "failures": 0.0, "ttft_p95_ms": None, "e2e_p95_ms": None}
    checks = slo.evaluate(SloConfig(e2e_p95_ms=100), totals, None, {"verdict": "inconclusive"})
    assert [(c.name, c.status, c.detail) for c in checks][0] == ("e2e_p95_ms", "no data", "no E2E measured")
    assert slo.exit_code(checks) == EXIT_INCONCLUSIVE
    assert slo.exit_code(slo.evaluate(SloConfig(fail_on_leak=False), totals, None, None)) == EXIT_OK
