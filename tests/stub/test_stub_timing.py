"""The stub's latency model seen from a real client: TTFT, inter-token gaps, queueing, 429.

Timing tolerances are ±10 % of the knob plus a few milliseconds: the machine running the tests
is shared with other load tests.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from urllib.parse import urlsplit

from support.processes import wait_until


def timed_stream(url: str, path: str, body: dict) -> tuple[float, list[float], int]:
    """POST a streaming request; returns (TTFT s, gaps between content events in s, events)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    sent = time.perf_counter()
    conn.request("POST", path, body=json.dumps(body).encode())
    resp = conn.getresponse()
    assert resp.status == 200
    arrivals = []
    while line := resp.readline():
        now = time.perf_counter()
        text = line.decode().strip()
        if not text or text == "data: [DONE]":
            continue
        obj = json.loads(text.removeprefix("data: "))
        if "choices" in obj:  # OpenAI chat (delta.content) or completions (text)
            choice = (obj["choices"] or [{}])[0]
            content = choice.get("text") or choice.get("delta", {}).get("content")
        else:  # Ollama chat
            content = obj.get("message", {}).get("content")
        if content:
            arrivals.append(now)
    conn.close()
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    return arrivals[0] - sent, gaps, len(arrivals)


def within(value: float, target: float, frac: float = 0.10, eps: float = 0.0) -> bool:
    return abs(value - target) <= frac * target + eps


def test_ttft_and_itl_follow_the_knobs_openai_and_ollama(start_stub):
    stub = start_stub("--ttft-ms", "200", "--itl-ms", "20")
    ttft_s, gaps, n = timed_stream(stub.url, "/v1/chat/completions", {
        "messages": [{"role": "user", "content": "hi"}], "stream": True, "max_tokens": 30})
    assert n == 30
    assert within(ttft_s, 0.200, eps=0.005), ttft_s
    assert within(statistics.median(gaps), 0.020, eps=0.001), statistics.median(gaps)
    assert within(sum(gaps) / len(gaps), 0.020, eps=0.001)  # absolute deadlines: no drift
    ttft_s, gaps, n = timed_stream(stub.url, "/api/chat", {
        "model": "m", "messages": [{"role": "user", "content": "hi"}], "options": {"num_predict": 20}})
    assert n == 20
    assert within(ttft_s, 0.200, eps=0.005), ttft_s
    assert within(statistics.median(gaps), 0.020, eps=0.001), statistics.median(gaps)


def test_prefill_time_grows_with_the_prompt_and_non_stream_waits_for_all_tokens(start_stub):
    stub = start_stub("--ttft-ms", "100", "--prefill-ms-per-1k-tokens", "100", "--itl-ms", "10")
    ttft_s, _, _ = timed_stream(stub.url, "/v1/completions",
                                {"prompt": "x" * 4000, "stream": True, "max_tokens": 3})
    assert within(ttft_s, 0.200, eps=0.005), ttft_s  # 100 ms + 1000 tokens × 0.1 ms
    parts = urlsplit(stub.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    sent = time.perf_counter()
    conn.request("POST", "/v1/completions", body=json.dumps({"prompt": "hi", "max_tokens": 21}))
    body = json.loads(conn.getresponse().read())
    elapsed_s = time.perf_counter() - sent
    assert body["usage"]["completion_tokens"] == 21
    assert within(elapsed_s, 0.100 + 20 * 0.010, eps=0.010), elapsed_s


def test_itl_slows_down_as_concurrency_rises(start_stub):
    stub = start_stub("--ttft-ms", "10", "--itl-ms", "20", "--max-concurrency", "4", "--itl-slowdown", "1")
    results: list[float] = []

    def one() -> None:
        _, gaps, _ = timed_stream(stub.url, "/v1/chat/completions", {
            "messages": [{"role": "user", "content": "hi"}], "stream": True, "max_tokens": 25})
        results.append(statistics.median(gaps))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # 4 of 4 slots busy: itl × (1 + 1 × 3/4) = 35 ms
    assert len(results) == 4 and all(within(m, 0.035, frac=0.15) for m in results), results


def test_requests_queue_beyond_max_concurrency_and_get_429_when_the_queue_is_full(start_stub):
    stub = start_stub("--ttft-ms", "800", "--itl-ms", "0", "--output-tokens", "1",
                      "--max-concurrency", "1", "--queue-size", "1")
    parts = urlsplit(stub.url)
    done: dict[str, tuple[int, float]] = {}

    def slow(name: str) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        sent = time.perf_counter()
        conn.request("POST", "/v1/chat/completions",
                     body=json.dumps({"messages": [{"role": "user", "content": "hi"}]}))
        resp = conn.getresponse()
        resp.read()
        done[name] = (resp.status, time.perf_counter() - sent)

    first = threading.Thread(target=slow, args=("first",))
    first.start()
    wait_until(lambda: stub.get_json("/_stub/stats")["active_requests"] == 1, what="first request active")
    second = threading.Thread(target=slow, args=("second",))
    second.start()
    wait_until(lambda: stub.get_json("/_stub/stats")["queued_requests"] == 1, what="second request queued")

    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    conn.request("POST", "/v1/chat/completions", body=json.dumps({"messages": [{"role": "user", "content": "x"}]}))
    resp = conn.getresponse()
    err = json.loads(resp.read())["error"]
    assert resp.status == 429 and err["type"] == "rate_limit_exceeded" and err["message"]
    conn.request("POST", "/api/generate", body=json.dumps({"model": "m", "prompt": "x"}))
    resp = conn.getresponse()
    assert resp.status == 429 and isinstance(json.loads(resp.read())["error"], str)

    first.join(30)
    second.join(30)
    assert done["first"][0] == 200 and done["second"][0] == 200
    assert done["second"][1] >= 1.5  # waited for the first one's 800 ms, then its own
    stats = stub.get_json("/_stub/stats")
    assert stats["responses_by_status"] == {"200": 2, "429": 2}
    assert stats["rejected_queue_full"] == 2 and stats["faults_injected"] == {}
    assert stats["active_requests"] == 0 and stats["queued_requests"] == 0
