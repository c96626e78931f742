"""Headless Locust runs against the real reference target: every flavour, every pattern, timing.

GIVEN `llmsoak stub` on 127.0.0.1 and a test profile with short think times, WHEN
`locust -f locustfiles/llm_chat.py --profile ... --headless` runs, THEN every pattern sends
requests, the LLM rows appear in Locust's CSV, and the Aggregated row counts exactly the HTTP
requests the stub served.
"""

from __future__ import annotations

import statistics

import pytest
from support.locust_runs import (
    aggregated,
    count,
    run_locust,
    series_rows,
    stats_rows,
    stub_json,
    write_profile,
)

FLAVOURS = [
    ("openai", "chat", True, "none", "/v1/chat/completions"),
    ("openai", "completions", True, "none", "/v1/completions"),
    ("openai", "chat", False, "none", "/v1/chat/completions"),
    ("ollama", "chat", True, "none", "/api/chat"),
    ("ollama", "generate", False, "none", "/api/generate"),
    ("chat", "chat", True, "sse", "/chat"),
    ("chat", "chat", True, "ndjson", "/chat"),
    ("chat", "chat", False, "none", "/chat"),
]


@pytest.mark.slow
def test_every_flavour_and_pattern_sends_and_counts_exactly(start_stub, tmp_path):
    stub = start_stub("--ttft-ms", "10", "--itl-ms", "1")
    for i, (flavour, endpoint, stream, chat_stream, path) in enumerate(FLAVOURS):
        stub_json(stub.url, "/_stub/reset", {})
        profile = write_profile(tmp_path, flavour=flavour, endpoint=endpoint, stream=stream,
                                chat_stream=chat_stream, name=f"f{i}")
        out = tmp_path / f"run{i}"
        proc = run_locust(profile, stub.url, out, users=4, seconds=4)
        what = f"{flavour}/{endpoint} stream={stream} {chat_stream}"
        assert proc.returncode == 0, what + proc.stderr[-2000:]
        rows = stats_rows(out)
        served = stub_json(stub.url, "/_stub/stats")
        for pattern in ("active", "casual", "sporadic", "stress"):
            row = rows.get(("POST", f"{path} [{pattern}]"))
            assert row and int(row["Request Count"]) > 0, f"{what}: no {pattern} requests"
            assert int(row["Failure Count"]) == 0, what
            assert int(rows[("TTFT", f"{path} [{pattern}]")]["Request Count"]) == int(row["Request Count"])
            assert int(rows[("OUT_TOKENS", f"{path} [{pattern}]")]["Request Count"]) == int(row["Request Count"])
        # Aggregated = HTTP requests only: model POSTs (+ chat-app session DELETEs), no metric rows.
        http = count(rows, "POST") + count(rows, "DELETE")
        assert int(aggregated(rows)["Request Count"]) == http, what
        assert count(rows, "POST") == served["requests_total"], what
        if stream:
            assert count(rows, "ITL") > 0, what
        series = [r for r in series_rows(out) if r["pattern"] == "all"]
        assert sum(int(r["requests"]) for r in series) == count(rows, "POST"), what
        assert sum(int(r["output_tokens"]) for r in series) == served["tokens_generated"], what


@pytest.mark.slow
def test_ttft_and_itl_match_the_stub_within_ten_percent(start_stub, tmp_path):
    ttft_ms, itl_ms = 200.0, 20.0
    stub = start_stub("--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms), "--itl-slowdown", "0")
    profile = write_profile(tmp_path, max_tokens=16, stress_users=2)
    out = tmp_path / "timing"
    proc = run_locust(profile, stub.url, out, users=5, seconds=8)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [r for r in series_rows(out) if r["pattern"] == "all" and int(r["requests"]) > 0]
    ttft = statistics.median(float(r["ttft_p50_ms"]) for r in rows)
    itl = statistics.median(float(r["itl_p50_ms"]) for r in rows)
    assert abs(ttft - ttft_ms) <= 0.10 * ttft_ms, f"TTFT p50 {ttft:.1f} ms vs stub {ttft_ms}"
    assert abs(itl - itl_ms) <= 0.10 * itl_ms, f"ITL p50 {itl:.2f} ms vs stub {itl_ms}"
    # Locust's own rows agree (rounded to 2 significant digits by Locust).
    stats = stats_rows(out)
    med = [float(r["Median Response Time"]) for (t, _), r in stats.items() if t == "TTFT" and int(r["Request Count"])]
    assert all(abs(m - ttft_ms) <= 0.15 * ttft_ms for m in med), med
