"""The Soak page's server panels: a real sampler scraping a /metrics in vLLM's names serves the
gauges on ``/api/server``; the web UI's poller keeps them and ``state()["server"]`` carries them
to the KV-cache and queue charts beside TTFT (llmsoak/webui/static/soak.js ``serverCharts``)."""

from __future__ import annotations

import json
import os
import urllib.request

from support.fake_metrics import serve_metrics
from support.processes import llmsoak_cmd, spawn, wait_until

from llmsoak.formats import SERVER_METRICS_COLUMNS
from llmsoak.webui.live_source import SamplerSource
from llmsoak.webui.monitor import SoakMonitor
from llmsoak.webui.tabs import server_text


def test_server_gauges_reach_the_soak_state(tmp_path):
    # GIVEN a sampler of this process that also scrapes a vLLM-like /metrics
    fake = serve_metrics("busy")
    sampler = spawn(llmsoak_cmd("sample", "--pid", str(os.getpid()), "--out", str(tmp_path / "samples" / "target.csv"),
                                "--interval", "0.3", "--listen", "127.0.0.1:0", "--no-gpu",
                                "--metrics-url", fake.url, "--metrics-out", str(tmp_path / "samples" / "server_metrics.csv"),
                                "--metrics-format", "server"))
    try:
        source = SamplerSource(sampler.url, timeout_s=5.0)
        # WHEN the web UI polls it
        wait_until(lambda: source.poll() and len(source.server_recent) >= 5, timeout=30, interval=0.3,
                   what="five server rows through the poller")
        with urllib.request.urlopen(sampler.url + "/api/server", timeout=5) as resp:
            served = json.loads(resp.read())
    finally:
        sampler.stop()
        fake.stop()
    # THEN the sampler serves the server columns and the poller keeps each row once
    assert served["columns"] == list(SERVER_METRICS_COLUMNS) and served["rows"]
    stamps = [r[0] for r in source.server_recent]
    assert stamps == sorted(set(stamps))
    assert source.server_latest()["kv_cache_usage_percent"] == 97.0
    kv = source.server_series("kv_cache_usage_percent")
    assert kv and {v for _, v in kv} == {97.0}
    # AND the page's state carries them
    monitor = SoakMonitor.__new__(SoakMonitor)
    monitor.source = source
    state = monitor.server_state()
    assert state["latest"]["kv_cache_usage_percent"] == 97.0
    assert state["requests_waiting"] and state["requests_running"]
    # AND Locust's Soak tab says it in one line
    assert server_text(state["latest"]).startswith("4 running, ") and "KV cache 97 %" in server_text(state["latest"])


def test_without_a_metrics_scrape_the_server_state_is_none():
    source = SamplerSource(None)
    source.latest = {"status": "attached", "sample": {"rss_bytes": 1}}  # an older sampler, or no --metrics-url
    monitor = SoakMonitor.__new__(SoakMonitor)
    monitor.source = source
    assert monitor.server_state() is None
    assert source.server_series("kv_cache_usage_percent") == []
    assert server_text({}) == "waiting for the server's metrics"
