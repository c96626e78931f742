"""Reading a response into a RequestResult (llmsoak.locust.response_reader): timings and failures.

One timestamp per socket read (events that arrived together share it), every failure classified
once, never raised, whatever the chunking.
"""

from __future__ import annotations

import json
import random
import time

import gevent
import pytest
from geventhttpclient import URL, HTTPClient

from llmsoak.locust import (
    internals,  # imports Locust (gevent's monkey patching) before any test thread
    response_reader,
)
from llmsoak.locust.apis import ChatApp, OllamaChat, OpenAIChat
from llmsoak.locust.response_reader import read_body, read_stream_chunks
from llmsoak.locust.results import RequestResult
from llmsoak.locust.streams import DONE


def _openai_event(content, *, id_="chatcmpl-7") -> bytes:
    return json.dumps({"id": id_, "object": "chat.completion.chunk", "model": "m",
                       "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]},
                      separators=(",", ":"), ensure_ascii=False).encode()


def _split_randomly(data: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 12))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def _sse(*events: bytes) -> bytes:
    return b"".join(b"data: " + e + b"\n\n" for e in events)


def _usage_event(n: int) -> bytes:
    return json.dumps({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": n}}).encode()


def _reader(chunks: list[bytes], error: BaseException | None = None):
    chunks = list(chunks)

    def read_chunk() -> bytes:
        if chunks:
            return chunks.pop(0)
        if error is not None:
            raise error
        return b""
    return read_chunk


def _finish_event(reason: str = "stop") -> bytes:
    return json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}).encode()


def _timed_reader(reads: list[tuple[float, bytes]], clock: list[float]):
    """``read_chunk()`` whose reads "arrive" at the given perf_counter values (set in ``clock``)."""
    reads = list(reads)

    def read_chunk() -> bytes:
        if not reads:
            return b""
        clock[0], data = reads.pop(0)
        return data
    return read_chunk


def _read_timed(reads, monkeypatch) -> RequestResult:
    clock = [0.0]
    monkeypatch.setattr(response_reader, "perf_counter", lambda: clock[0])
    return read_stream_chunks(_timed_reader(reads, clock), OpenAIChat(), RequestResult(status=200), 0.0)


def test_a_read_carrying_several_events_spreads_its_gap_over_them(monkeypatch):
    # GIVEN reads at 0.100 s (1 event), 0.120 s (1), 0.160 s (4 events), then the end
    ev = [_sse(_openai_event(f" t{i}")) for i in range(6)]
    reads = [(0.100, ev[0]), (0.120, ev[1]), (0.160, b"".join(ev[2:])),
             (0.161, _sse(_finish_event(), _usage_event(6), b"[DONE]"))]
    r = _read_timed(reads, monkeypatch)
    # THEN the 40 ms gap that delivered four tokens gives four ITLs of 10 ms, not 40 + 0 + 0 + 0
    assert r.ok and r.ttft_ms == pytest.approx(100.0) and r.content_chunks == 6
    assert r.itl_ms == pytest.approx([20.0, 10.0, 10.0, 10.0, 10.0])
    assert sum(r.itl_ms) == pytest.approx(60.0)  # first to last token


def test_events_that_came_with_the_first_are_spread_over_the_next_gap(monkeypatch):
    ev = [_sse(_openai_event(f" t{i}")) for i in range(4)]
    reads = [(0.100, ev[0] + ev[1] + ev[2]), (0.130, ev[3]),
             (0.131, _sse(_finish_event(), _usage_event(4), b"[DONE]"))]
    r = _read_timed(reads, monkeypatch)
    assert r.ok and r.itl_ms == pytest.approx([10.0, 10.0, 10.0])  # n events, n - 1 values
    # all in one read: no gap was seen, so no ITL (not a run of zeros)
    one = [(0.1, b"".join(ev) + _sse(_finish_event(), _usage_event(4), b"[DONE]"))]
    r = _read_timed(one, monkeypatch)
    assert r.ok and r.itl_ms == [] and r.tpot_ms is None


def test_chunks_carrying_several_tokens_make_itl_per_token(monkeypatch):
    # GIVEN 5 chunks 30 ms apart and usage saying they carried 9 tokens (vLLM under load)
    ev = [_sse(_openai_event(f" t{i}")) for i in range(5)]
    reads = [(0.1 + 0.03 * i, e) for i, e in enumerate(ev)]
    reads.append((0.3, _sse(_finish_event("length"), _usage_event(9), b"[DONE]")))
    r = _read_timed(reads, monkeypatch)
    # THEN each ITL is the chunk gap per token: 30 ms × (5 − 1) / (9 − 1) = 15 ms
    assert r.ok and r.output_tokens == 9 and r.itl_ms == pytest.approx([15.0] * 4)
    assert r.tpot_ms == pytest.approx((r.e2e_ms - r.ttft_ms) / 8)


@pytest.mark.parametrize("bad", [b'{"choices":[{"index":0,"delta":{"content":"\\u00', b"{not json", b'"just a string"'])
def test_a_malformed_event_among_shortcut_events_is_detected(bad):
    events = [_openai_event(f" t{i}") for i in range(5)]
    events.insert(3, bad)
    body = _sse(*events, _usage_event(5), b"[DONE]")
    rng = random.Random(bad)
    for chunks in ([body], _split_randomly(body, rng), _split_randomly(body, rng)):
        r = read_stream_chunks(_reader(chunks), OpenAIChat(), RequestResult(status=200), 0.0)
        assert r.failure_class == "malformed", chunks


def test_ndjson_stream_through_the_chunk_reader():
    lines = [{"model": "m", "created_at": f"2025-01-01T00:00:0{i}Z", "message": {"role": "assistant", "content": c},
              "done": False} for i, c in enumerate(["a", "b", "c"])]
    lines.append({"model": "m", "message": {"content": ""}, "done": True, "eval_count": 3, "prompt_eval_count": 2})
    body = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    r = read_stream_chunks(_reader(_split_randomly(body, random.Random(1))), OllamaChat(),
                           RequestResult(status=200), 0.0)
    assert r.ok and r.text == "abc" and (r.input_tokens, r.output_tokens) == (2, 3)


def test_cut_off_and_reset_streams():
    body = _sse(_openai_event(" a"), _openai_event(" b"))
    r = read_stream_chunks(_reader([body]), OpenAIChat(), RequestResult(status=200), 0.0)
    assert r.failure_message == "cut_short: stream ended without its end marker"  # no [DONE], no finish_reason
    r = read_stream_chunks(_reader([body], ConnectionResetError(104, "reset")), OpenAIChat(),
                           RequestResult(status=200), 0.0)
    assert r.failure_class == "disconnect"
    r = read_stream_chunks(_reader([_sse(b"[DONE]")]), OpenAIChat(), RequestResult(status=200), 0.0)
    assert r.failure_class == "cut_short"  # llama-cpp-python interrupted before the first token
    r = read_stream_chunks(_reader([_sse(_finish_event(), b"[DONE]")]), OpenAIChat(), RequestResult(status=200), 0.0)
    assert r.failure_message == "empty: no content in the response"  # finished, but said nothing
    assert DONE == b"[DONE]"


_A = b'{"choices": [{"delta": {"content": "a"}}]}'


def _lines(data: bytes) -> list[bytes]:
    """One chunk per line, as geventhttpclient's ``readline`` hands them out."""
    return [line + b"\n" for line in data.split(b"\n")][:-1] if data else []


@pytest.mark.parametrize("data,error,cls", [
    (_sse(_A), None, "cut_short"),      # no [DONE], no finish_reason: cut short
    (_sse(_A, b"[DONE]"), None, "cut_short"),  # [DONE] but no finish_reason
    (_sse(_A, b"[DONE]"), ConnectionResetError(104, "reset"), "cut_short"),  # closed after [DONE]
    (_sse(_A), ConnectionResetError(104, "reset"), "disconnect"),
    (_sse(_A), TimeoutError("timed out"), "timeout"),
    (_sse(_A, b"{not json"), None, "malformed"),
    (b"", None, "empty"),
    (_sse(b"[DONE]"), None, "cut_short"),
    (_sse(_finish_event(), b"[DONE]"), None, "empty"),
])
def test_stream_failures_are_classified_once(data, error, cls):
    r = read_stream_chunks(_reader(_lines(data), error), OpenAIChat(), RequestResult(status=200), 0.0)
    assert r.failure_class == cls
    assert r.failure_message.startswith(cls + ": ")


def test_non_streamed_bodies():
    r = read_body(b'{"choices": [{"message": {"content": "ok"}}], "usage": {"prompt_tokens": 4, "completion_tokens": 1}}',
                  OpenAIChat(stream=False), RequestResult(status=200), 0.0)
    assert r.ok and r.text == "ok" and r.ttft_ms == r.e2e_ms and r.output_tokens == 1
    assert read_body(b"", OpenAIChat(stream=False), RequestResult(), 0.0).failure_class == "empty"
    assert read_body(b"{oops", OllamaChat(stream=False), RequestResult(), 0.0).failure_class == "malformed"
    r = read_body(b'{"session_id": "s", "reply": "yo", "turn": 1, "usage": {"prompt_tokens": 2, "completion_tokens": 1}}',
                  ChatApp(), RequestResult(), 0.0)
    assert r.ok and r.text == "yo"




# --------------------------------------------------------------------------- over TCP: the idle timeout

def _stream_over_tcp(url: str, max_tokens: int, network_timeout: float) -> tuple[RequestResult, float]:
    """One streamed chat request read by internals.body_reader; (result, seconds it took)."""
    u = URL(url)
    client = HTTPClient(u.host, u.port, network_timeout=network_timeout, connection_timeout=5)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True,
                       "max_tokens": max_tokens})
    try:
        started = time.perf_counter()
        resp = client.request("POST", "/v1/chat/completions", body=body,
                              headers={"Content-Type": "application/json", "Accept-Encoding": "identity"})
        result = read_stream_chunks(internals.body_reader(resp), OpenAIChat(), RequestResult(status=200), 0.0)
        return result, time.perf_counter() - started
    finally:
        client.close()


def test_gaps_shorter_than_the_network_timeout_never_time_out_however_long_the_stream(start_stub):
    # GIVEN tokens 0.3 s apart and a 0.5 s network timeout (an idle gap, not a deadline): the idle
    # timer armed at the first wait fires during a later one and must re-arm, not raise
    stub = start_stub("--ttft-ms", "0", "--itl-ms", "300", "--itl-jitter", "0")
    result, took_s = _stream_over_tcp(stub.url, 6, network_timeout=0.5)
    assert result.ok, result.failure_message
    assert result.content_chunks == 6 and took_s > 1.4  # five gaps of 0.3 s: three times the timeout


def test_a_gap_longer_than_the_network_timeout_after_data_is_a_timeout(start_stub):
    # GIVEN a first token after 0.1 s, then 1.5 s of silence, and a 0.5 s network timeout
    stub = start_stub("--ttft-ms", "100", "--itl-ms", "1500", "--itl-jitter", "0")
    result, took_s = _stream_over_tcp(stub.url, 3, network_timeout=0.5)
    assert result.failure_class == "timeout", result.failure_message
    assert result.ttft_ms is not None  # the timeout came after data, on the waiting path
    assert 0.5 <= took_s < 1.5  # raised after the idle gap, not at the next token


def test_a_reader_left_mid_stream_never_raises_into_its_greenlet_later(start_stub):
    # GIVEN a stream abandoned after a malformed event while its idle timer (0.3 s) is armed
    stub = start_stub("--ttft-ms", "0", "--itl-ms", "50", "--itl-jitter", "0", "--fault", "malformed_chunk=1.0")
    u = URL(stub.url)
    client = HTTPClient(u.host, u.port, network_timeout=0.3, connection_timeout=5)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True,
                       "max_tokens": 20})
    try:
        resp = client.request("POST", "/v1/chat/completions", body=body,
                              headers={"Content-Type": "application/json", "Accept-Encoding": "identity"})
        result = read_stream_chunks(internals.body_reader(resp), OpenAIChat(), RequestResult(status=200), 0.0)
        assert result.failure_class == "malformed"
        # WHEN the same greenlet waits elsewhere past the timer's deadline
        gevent.sleep(0.8)
        # THEN nothing was thrown into it (the timer fires outside a wait and does nothing)
    finally:
        client.close()
