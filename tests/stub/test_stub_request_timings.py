"""The stub's own per-request timings (x-llmsoak-request-id → GET /_stub/timings).

GIVEN a real ``llmsoak stub`` on 127.0.0.1 (port 0), WHEN a client tags its requests with
``x-llmsoak-request-id``, THEN the response headers echo the id with the time spent queued, and
``/_stub/timings`` reports the stub's TTFT for that id: never more than what the client measured
(the client's clock starts before sending, the stub's when the request had arrived).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from urllib.parse import urlsplit

from llmsoak.stub.timings import MAX_REQUEST_ID_CHARS, RequestTimings

BODY = {"messages": [{"role": "user", "content": "hi"}], "stream": True, "max_tokens": 5}


def _conn(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)


def tagged_stream(url: str, request_id: str | None, body: dict = BODY) -> tuple[dict, float, int]:
    """POST a streamed chat request; returns (lower-case headers, client TTFT ms, content events)."""
    conn = _conn(url)
    headers = {"Content-Type": "application/json"}
    if request_id is not None:
        headers["x-llmsoak-request-id"] = request_id
    sent = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body=json.dumps(body).encode(), headers=headers)
    resp = conn.getresponse()
    assert resp.status == 200
    ttft_ms, events = None, 0
    while line := resp.readline():
        text = line.decode().strip()
        if not text.startswith("data: {"):
            continue
        obj = json.loads(text[6:])
        if obj["choices"] and obj["choices"][0]["delta"].get("content"):
            events += 1
            if ttft_ms is None:
                ttft_ms = (time.perf_counter() - sent) * 1000.0
    conn.close()
    return {k.lower(): v for k, v in resp.getheaders()}, ttft_ms, events


def get_json(url: str, path: str, method: str = "GET") -> dict:
    conn = _conn(url)
    conn.request(method, path, body=b"{}" if method == "POST" else None)
    resp = conn.getresponse()
    payload = json.loads(resp.read())
    conn.close()
    assert resp.status == 200
    return payload


def test_tagged_request_gets_headers_and_a_timing_record_within_the_client_ttft(start_stub):
    stub = start_stub("--ttft-ms", "60", "--itl-ms", "5")
    headers, client_ttft_ms, events = tagged_stream(stub.url, "req-1")
    assert events == 5
    assert headers["x-llmsoak-request-id"] == "req-1"
    assert 0.0 <= float(headers["x-llmsoak-stub-queued-ms"]) < 50.0  # idle server: admitted at once
    timings = get_json(stub.url, "/_stub/timings")
    record = timings["requests"]["req-1"]
    assert record["tokens"] == 5
    assert 60.0 <= record["ttft_ms"] <= 60.0 * 1.1 + 10.0  # the knob, from arrival
    assert record["ttft_ms"] <= client_ttft_ms  # the client's clock starts earlier and stops later
    assert record["e2e_ms"] >= record["ttft_ms"] + 4 * 5 * 0.9  # four more gaps of ~5 ms
    assert record["queued_ms"] == float(headers["x-llmsoak-stub-queued-ms"])


def test_queued_time_is_reported_and_counts_in_the_stub_ttft(start_stub):
    # GIVEN one slot: the second request waits for the first (ttft 300 ms + 4 gaps of 10 ms)
    stub = start_stub("--ttft-ms", "300", "--itl-ms", "10", "--max-concurrency", "1")
    out: dict[str, tuple] = {}

    def run(rid: str) -> None:
        out[rid] = tagged_stream(stub.url, rid)

    first = threading.Thread(target=run, args=("a",))
    first.start()
    time.sleep(0.05)  # "a" is admitted before "b" arrives
    run("b")
    first.join()
    record = get_json(stub.url, "/_stub/timings")["requests"]
    assert record["a"]["queued_ms"] < 30.0
    queued_b = float(out["b"][0]["x-llmsoak-stub-queued-ms"])
    assert queued_b >= 100.0  # b arrived well before a's 340 ms were over, and waited for them
    assert record["b"]["queued_ms"] == queued_b
    assert record["b"]["ttft_ms"] >= queued_b + 300.0 * 0.95  # queued time is part of its TTFT
    assert record["b"]["ttft_ms"] <= out["b"][1]


def test_untagged_and_oversized_ids_are_not_recorded_and_reset_clears(start_stub):
    stub = start_stub("--ttft-ms", "0", "--itl-ms", "0")
    headers, _ttft, _events = tagged_stream(stub.url, None)
    assert "x-llmsoak-request-id" not in headers and "x-llmsoak-stub-queued-ms" not in headers
    headers, _ttft, _events = tagged_stream(stub.url, "x" * (MAX_REQUEST_ID_CHARS + 1))
    assert "x-llmsoak-request-id" not in headers
    assert get_json(stub.url, "/_stub/timings")["requests"] == {}
    tagged_stream(stub.url, "kept")
    assert list(get_json(stub.url, "/_stub/timings")["requests"]) == ["kept"]
    get_json(stub.url, "/_stub/reset", "POST")
    assert get_json(stub.url, "/_stub/timings") == {"max_records": 50_000, "dropped": 0, "requests": {}}


def test_request_timings_keep_the_newest_records_and_count_the_dropped():
    timings = RequestTimings(max_records=3)
    for i in range(5):
        timings.record(f"r{i}", queued_ms=0.0, ttft_ms=float(i), e2e_ms=2.0 * i, tokens=i)
    timings.record("r3", queued_ms=1.0, ttft_ms=9.0, e2e_ms=9.5, tokens=7)  # a reused id moves to the end
    got = timings.to_json()
    assert list(got["requests"]) == ["r2", "r4", "r3"]
    assert got["requests"]["r3"] == {"queued_ms": 1.0, "ttft_ms": 9.0, "e2e_ms": 9.5, "tokens": 7}
    assert got["dropped"] == 2 and len(timings) == 3
