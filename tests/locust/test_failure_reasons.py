"""Failures say why, on what real engines sent (tests/fixtures/wire/), and stay few over a week.

GIVEN the bytes vLLM and llama-cpp-python really sent (recorded read by read, with their times),
WHEN llmsoak's reader and classifier take them as the Locust user does,
THEN each failure lands in the class a person must tell apart, with the server's own words,
normalised (no ids, numbers, quoted values) so the error table stays bounded; and a stream that
came in fuller chunks gives per-token ITLs, not spurious zeros.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from support.wire import load_case

from llmsoak.locust import response_reader
from llmsoak.locust.apis import OllamaChat, OpenAIChat
from llmsoak.locust.response_reader import read_body, read_stream_chunks
from llmsoak.locust.results import (
    CUT_SHORT_HINT,
    MAX_REASON_CHARS,
    RequestResult,
    ServerError,
    classify_http_error,
    context_limit_in,
    normalise_reason,
    server_reason,
)

WIRE = Path(__file__).resolve().parents[1] / "fixtures" / "wire"


class HTTPParseError(Exception):
    """What geventhttpclient raises when the connection closes before the body is complete."""


def _replay(transcript, monkeypatch, flavour=None) -> RequestResult:
    """Read a recorded response as the Locust user does: each recorded read arrives at its time."""
    clock = [0.0]
    monkeypatch.setattr(response_reader, "perf_counter", lambda: clock[0])
    reads = list(transcript.body_reads())
    cut = transcript.end != "complete"

    def read_chunk() -> bytes:
        if reads:
            t_ms, data = reads.pop(0)
            clock[0] = t_ms / 1000.0
            return data
        if cut:
            raise HTTPParseError("Incomplete response.")
        return b""
    return read_stream_chunks(read_chunk, flavour or OpenAIChat(model="tiny-llama"),
                              RequestResult(status=transcript.status), 0.0)


def _http_failure(name: str) -> tuple[str, str, str]:
    _meta, (t, *_rest) = load_case(WIRE / f"{name}.json")
    reason = server_reason(t.body_bytes)
    return (*classify_http_error(t.status, reason), reason)


def test_vllms_context_overflow_is_its_own_class_with_its_reason():
    cls, detail, reason = _http_failure("vllm_prompt_too_long")
    assert cls == "context_overflow"
    assert detail.startswith("HTTP 400: This model's maximum context length is N tokens. However, your "
                             "prompt contains at least N input tokens")
    assert len(detail) <= len("HTTP 400: ") + MAX_REASON_CHARS
    assert context_limit_in(reason) == 1024  # the size, for a session that did not know it


def test_llamacpps_context_overflow_and_its_context_size():
    cls, detail, reason = _http_failure("llamacpp_prompt_too_long")
    assert cls == "context_overflow" and "you requested N tokens (N in the messages" in detail
    assert context_limit_in(reason) == 1024


def test_unknown_model_and_bad_parameter_are_http_with_the_servers_words():
    cls, detail, _ = _http_failure("vllm_unknown_model")
    assert (cls, detail.split(". ")[0]) == ("http", "HTTP 404: The model `…` does not exist")
    cls, detail, reason = _http_failure("vllm_bad_parameter")
    assert cls == "http" and detail.startswith("HTTP 400: ") and "temperature" in reason


def test_status_classes():
    assert classify_http_error(429, "Too many requests")[0] == "rate_limited"
    assert classify_http_error(503, "")[0:2] == ("server_error", "HTTP 503")
    assert classify_http_error(500, "This model's maximum context length is 8 tokens")[0] == "server_error"
    assert classify_http_error(413, "prompt is too long")[0] == "context_overflow"
    assert classify_http_error(404, "model 'x' not found")[0] == "http"


def test_llamacpp_interrupted_stream_is_cut_short_and_names_the_cause(monkeypatch):
    _meta, (first, second) = load_case(WIRE / "llamacpp_interrupted.json")
    r = _replay(first, monkeypatch)
    assert r.failure_class == "cut_short" and r.content_chunks > 0
    assert CUT_SHORT_HINT in r.failure_detail and "--interrupt_requests false" in r.failure_detail
    assert _replay(second, monkeypatch).ok
    _meta, transcripts = load_case(WIRE / "llamacpp_no_interrupt.json")
    assert all(_replay(t, monkeypatch).ok for t in transcripts)


def test_llamacpp_streamed_overflow_is_an_empty_stream_that_points_at_context_tokens(monkeypatch):
    _meta, (t, *_rest) = load_case(WIRE / "llamacpp_prompt_too_long_streamed.json")
    r = _replay(t, monkeypatch)
    assert r.failure_class == "empty" and "target.context_tokens" in r.failure_detail


def test_vllm_stream_under_load_gives_per_token_itl_without_zeros(monkeypatch):
    # GIVEN one of 48 concurrent streams: fewer chunks than tokens, several events per read
    _meta, (t, *_rest) = load_case(WIRE / "vllm_chat_stream_under_load.json")
    reads = t.body_reads()
    r = _replay(t, monkeypatch)
    assert r.ok and r.output_tokens == 128 and r.content_chunks < 128
    # THEN n events give n - 1 ITLs, none 0, and they add up to first-to-last per token
    assert len(r.itl_ms) == r.content_chunks - 1 and min(r.itl_ms) > 0
    content_times = [t_ms for t_ms, data in reads if b'"content":"' in data.replace(b'"content":""', b"")]
    span = content_times[-1] - content_times[0]
    factor = (r.content_chunks - 1) / (r.output_tokens - 1)
    assert sum(r.itl_ms) == pytest.approx(span * factor, rel=1e-6)
    assert statistics.median(r.itl_ms) > 0.01
    assert r.tpot_ms == pytest.approx((r.e2e_ms - r.ttft_ms) / 127)


def test_error_events_inside_a_200_stream_carry_the_servers_reason():
    sse = (b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n'
           b'data: {"error":{"message":"Engine loop died (request cmpl-4f2a9c1be0d84c7e9a1d)","code":500}}\n\n')
    r = read_stream_chunks(iter([sse, b""]).__next__, OpenAIChat(), RequestResult(status=200), 0.0)
    assert r.failure_class == "server_error"
    assert r.failure_detail == "error in the stream: Engine loop died (request <id>)"
    assert r.server_reason.startswith("Engine loop died (request cmpl-4f2a")
    sse = b'data: {"error":{"message":"This model\'s maximum context length is 2048 tokens","code":400}}\n\n'
    r = read_stream_chunks(iter([sse, b""]).__next__, OpenAIChat(), RequestResult(status=200), 0.0)
    assert r.failure_class == "context_overflow" and context_limit_in(r.server_reason) == 2048
    ndjson = b'{"message":{"content":"x"},"done":false}\n{"error":"llama runner process has terminated"}\n'
    r = read_stream_chunks(iter([ndjson, b""]).__next__, OllamaChat(), RequestResult(status=200), 0.0)
    assert r.failure_message == "server_error: error in the stream: llama runner process has terminated"
    r = read_body(b'{"error": {"message": "overloaded", "code": 429}}', OpenAIChat(stream=False),
                  RequestResult(status=200), 0.0)
    assert r.failure_class == "rate_limited" and r.server_reason == "overloaded"


def test_reasons_are_normalised_so_a_week_of_failures_gives_few_messages():
    reasons = [f"Request {i:08x}-1b2c-4d5e-8f90-{i:012x} for model 'tiny-{i}' failed after {i * 1.5} s "
               f"(id chatcmpl-{i:024x}, `key{i}`, \"q{i}\")" for i in range(1000)]
    normalised = {normalise_reason(r) for r in reasons}
    assert normalised == {"Request <id> for model '…' failed after N s (id <id>, `…`, \"…\")"}
    assert normalise_reason("x" * 1000).endswith("…") and len(normalise_reason("x" * 1000)) == MAX_REASON_CHARS
    assert normalise_reason("  two\n lines\t here ") == "two lines here"


def test_server_reason_finds_the_words_in_each_body_shape():
    assert server_reason(b'{"error": {"message": "m1", "type": "t"}}') == "m1"
    assert server_reason(b'{"error": "m2"}') == "m2"
    assert server_reason(b'{"detail": [{"msg": "field required", "loc": ["body"]}]}') == "field required"
    assert server_reason(b'{"object": "error", "message": "m3"}') == "m3"
    assert server_reason(b"<html>\n<body>502 Bad Gateway</body>") == "<html>"
    assert server_reason(b"") == "" and server_reason(b'{"unexpected": 1}') == '{"unexpected": 1}'
    assert isinstance(ServerError("x", 500), Exception)
