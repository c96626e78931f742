"""LLM metrics (llmsoak.locust.metrics): log histograms, and the extra rows in Locust's own stats."""

from __future__ import annotations

import random

import pytest
from locust.stats import RequestStats

from llmsoak.locust.metrics import LogHistogram, log_llm_metrics
from llmsoak.locust.results import RequestResult


def test_log_histogram_percentiles_within_half_a_percent():
    rng = random.Random(1)
    values = sorted(rng.lognormvariate(0, 2) for _ in range(20_000))  # 0.001 .. 1000 ms
    h = LogHistogram()
    h.add_many(values)
    for q in (0.5, 0.95, 0.99):
        exact = values[int(q * len(values)) - 1]
        assert h.percentile(q) == pytest.approx(exact, rel=0.01)
    with pytest.raises(ValueError):
        h.percentile(1.5)


def test_histograms_merge_exactly():
    a, b, whole = LogHistogram(), LogHistogram(), LogHistogram()
    for i in range(1, 500):
        (a if i % 2 else b).add(i * 0.37)
        whole.add(i * 0.37)
    merged = LogHistogram(a.serialize())
    merged.merge({str(k): v for k, v in b.serialize().items()})  # keys as strings after JSON
    assert dict(merged.buckets) == dict(whole.buckets) and merged.count == whole.count


def _ok(ttft=50.0, itl=(5.0, 5.0), tokens=3) -> RequestResult:
    return RequestResult(status=200, ttft_ms=ttft, e2e_ms=ttft + sum(itl), itl_ms=list(itl),
                         content_chunks=len(itl) + 1, output_tokens=tokens, input_tokens=10, text="x")


def test_llm_rows_never_touch_the_aggregated_row():
    stats = RequestStats()
    log_llm_metrics(stats, "/v1/chat/completions [active]", _ok())
    assert stats.total.num_requests == 0
    assert stats.entries[("/v1/chat/completions [active]", "ITL")].num_requests == 2
    assert stats.entries[("/v1/chat/completions [active]", "OUT_TOKENS")].total_response_time == 3
    failed = RequestResult(status=500).fail("http", "HTTP 500")
    log_llm_metrics(stats, "n", failed)
    assert ("n", "TTFT") not in stats.entries
