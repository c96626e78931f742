"""The ``server`` layout of the /metrics scrape: vLLM's and llama.cpp's names become the columns
of samples/server_metrics.csv, and a failing endpoint is said once, with the server's status."""

from __future__ import annotations

import csv

import pytest
from support.fake_metrics import serve_metrics, vllm_text

from llmsoak.formats import SERVER_METRICS_COLUMNS
from llmsoak.sampler.metrics_scrape import MetricsScraper, parse_prometheus_text, server_row

LLAMA_SERVER_TEXT = """# HELP llamacpp:kv_cache_usage_ratio KV-cache usage. 1 means 100 percent usage.
# TYPE llamacpp:kv_cache_usage_ratio gauge
llamacpp:kv_cache_usage_ratio 0.25
llamacpp:requests_processing 2
llamacpp:requests_deferred 5
llamacpp:prompt_tokens_total 1200
"""


def test_vllm_names_become_the_server_columns():
    row = server_row(parse_prometheus_text(vllm_text(3, 4, 0.5, 7)))
    assert row == {"requests_running": 4.0, "requests_waiting": 3.0, "kv_cache_usage_percent": 50.0,
                   "preemptions_total": 7.0}


def test_llama_server_names_and_two_vllm_engines():
    row = server_row(parse_prometheus_text(LLAMA_SERVER_TEXT))
    assert row == {"requests_running": 2.0, "requests_waiting": 5.0, "kv_cache_usage_percent": 25.0,
                   "preemptions_total": None}
    two = ('vllm:num_requests_waiting{engine="0"} 2\nvllm:num_requests_waiting{engine="1"} 3\n'
           'vllm:gpu_cache_usage_perc{engine="0"} 0.1\nvllm:gpu_cache_usage_perc{engine="1"} 0.9\n')
    row = server_row(parse_prometheus_text(two))
    assert row["requests_waiting"] == 5.0 and row["kv_cache_usage_percent"] == pytest.approx(90.0)


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_scrapes_write_one_row_each_on_the_given_clock(tmp_path):
    fake = serve_metrics("busy")
    out = tmp_path / "server_metrics.csv"
    said = []
    scraper = MetricsScraper(fake.url, out, layout="server", event=lambda k, d: said.append((k, d)))
    try:
        assert [scraper.scrape_once(1000.0 + i) for i in range(8)] == [1] * 8
        assert scraper.scrape_once(1003.0) == 0  # not after the last row: never written twice
    finally:
        scraper.stop()
        fake.stop()
    rows = _rows(out)
    assert list(rows[0]) == list(SERVER_METRICS_COLUMNS)
    assert [float(r["timestamp"]) for r in rows] == [1000.0 + i for i in range(8)]
    assert float(rows[-1]["requests_waiting"]) == 2.0 and float(rows[0]["kv_cache_usage_percent"]) == 97.0
    assert said == []


@pytest.mark.parametrize("mode, status", [("404", "HTTP 404 Not Found"), ("silent", "no answer within 0.5 s")])
def test_a_failing_endpoint_is_said_once_with_its_status(tmp_path, mode, status):
    fake = serve_metrics(mode)
    said = []
    scraper = MetricsScraper(fake.url, tmp_path / "m.csv", layout="server", timeout_s=0.5,
                             event=lambda k, d: said.append((k, d)))
    try:
        assert scraper.scrape_once(1.0) == 0 and scraper.scrape_once(2.0) == 0
        fake.mode = "busy"
        assert scraper.scrape_once(3.0) == 1
    finally:
        scraper.stop()
        fake.stop()
    assert said[0] == ("alert", f"metrics scrape of {fake.url} failed: {status} (said once; retrying every sample)")
    assert said[1:] == [("info", f"metrics scrape of {fake.url} works again")]
    assert scraper.scrapes_failed == 2


def test_metrics_without_any_known_gauge_are_said_once(tmp_path):
    fake = serve_metrics("unknown")
    said = []
    scraper = MetricsScraper(fake.url, tmp_path / "m.csv", layout="server", event=lambda k, d: said.append((k, d)))
    try:
        assert scraper.scrape_once(1.0) == 0 and scraper.scrape_once(2.0) == 0
    finally:
        scraper.stop()
        fake.stop()
    assert len(said) == 1 and "none of the server gauges" in said[0][1] and "vllm:num_requests_waiting" in said[0][1]
    assert _rows(tmp_path / "m.csv") == []
