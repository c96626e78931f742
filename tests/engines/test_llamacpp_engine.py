"""llama.cpp (llama-cpp-python's server), really served: the facts llmsoak must cope with and explain.

GIVEN llama-cpp-python's OpenAI-compatible server serving the tiny GGUF with ``--n_ctx 1024`` on
127.0.0.1, in its DEFAULT configuration unless a test asks otherwise,
WHEN a test sends what llmsoak sends (or what several users and a growing history make of it),
THEN the bytes that come back are as documented in docs/engines.md. The transcripts can be saved
as fixtures for the parser tests (LLMSOAK_RECORD_WIRE, see tests/engines/wire_cases.py).
"""

from __future__ import annotations

import json
import threading
import time

from support.processes import wait_until
from support.wire import exchange
from wire_cases import CHAT, chat_body, long_text, record

# The tiny model writes 150 tokens in a few hundred ms: long enough to be overlapped. The
# interrupted stream asks for more, so that a busy machine cannot finish it before the second
# request arrives (it is cut short anyway, so its transcript stays small).
LONG_REPLY = 150
INTERRUPTED_REPLY = 900  # prompt + reply must fit n_ctx 1024, or the stream fails empty


def _content(t) -> str:
    return "".join((e["choices"][0]["delta"].get("content") or "") for e in t.sse_json() if e.get("choices"))


def test_chat_stream_is_sse_with_role_chunk_and_done_but_no_usage(llamacpp_server):
    t = exchange(llamacpp_server.url, "POST", CHAT, chat_body(llamacpp_server, max_tokens=16))
    record("llamacpp_chat_stream", llamacpp_server, "one streamed chat completion, max_tokens 16, include_usage", t)

    assert t.status == 200 and t.end == "complete"
    assert t.headers["content-type"].startswith("text/event-stream")
    assert t.sse_events()[-1] == b"[DONE]"
    events = t.sse_json()
    assert events[0]["choices"][0]["delta"] == {"role": "assistant"}  # no "content" key, unlike vLLM
    assert events[-1]["choices"][0]["finish_reason"] in ("length", "stop")
    assert events[-1]["choices"][0]["delta"] == {}
    # stream_options.include_usage is accepted and ignored: no usage anywhere, so a client must
    # count tokens some other way (chunks) when it talks to this server.
    assert all("usage" not in e for e in events)
    assert 1 <= len(events) - 2 <= 16
    # A token ending inside a UTF-8 character gives "content": "" here too.
    assert all(isinstance(e["choices"][0]["delta"].get("content", ""), str) for e in events)


def test_models_lists_the_alias_without_the_context(llamacpp_server):
    status, body = llamacpp_server.get("/v1/models")
    assert status == 200
    (model,) = json.loads(body)["data"]
    assert model == {"id": llamacpp_server.model, "object": "model", "owned_by": "me", "permissions": []}
    # No n_ctx in /v1/models, and no /props (llama.cpp's C++ llama-server has one) nor /metrics.
    assert llamacpp_server.get("/props")[0] == 404
    assert llamacpp_server.get("/metrics")[0] == 404


def test_the_context_is_reported_only_in_the_error_of_a_request_past_it(llamacpp_server):
    # Non-streamed, a prompt past n_ctx gets an OpenAI-style 400 that names the context size:
    # the one place this server reports it.
    body = chat_body(llamacpp_server, long_text(800), max_tokens=8, stream=False)
    t = exchange(llamacpp_server.url, "POST", CHAT, body)
    record("llamacpp_prompt_too_long", llamacpp_server, "a non-streamed request whose prompt is past n_ctx 1024", t)

    assert t.status == 400
    error = t.json()["error"]
    assert error["code"] == "context_length_exceeded" and error["type"] == "invalid_request_error"
    assert "maximum context length is 1024 tokens" in error["message"], error["message"]


def test_a_streamed_request_past_the_context_fails_inside_a_200_stream(llamacpp_server):
    t = exchange(llamacpp_server.url, "POST", CHAT, chat_body(llamacpp_server, long_text(800), max_tokens=8))
    record("llamacpp_prompt_too_long_streamed", llamacpp_server,
           "a streamed request whose prompt is past n_ctx 1024: 200, then no event at all", t)

    assert t.status == 200 and t.headers["content-type"].startswith("text/event-stream")
    # The error is raised after the headers went out: no event, no [DONE], no reason on the wire
    # (it is only in the server's log: "Requested tokens (N) exceed context window of 1024").
    # The chunked body even ends properly: to a client it is an empty, complete stream.
    assert t.sse_events() == [] and t.end == "complete"
    wait_until(lambda: b"exceed context window of 1024" in llamacpp_server.log_path.read_bytes(),
               timeout=10, what="the reason in the server's log")


def test_unknown_model_is_served_anyway(llamacpp_server):
    # Unlike vLLM's 404: with one model loaded, any model name is answered by it.
    body = chat_body(llamacpp_server, max_tokens=4, stream=False)
    body["model"] = "no-such-model"
    t = exchange(llamacpp_server.url, "POST", CHAT, body)
    record("llamacpp_unknown_model", llamacpp_server, "a request for a model name the server does not know", t)
    assert t.status == 200
    assert t.json()["model"] == "no-such-model"
    assert t.json()["usage"]["completion_tokens"] <= 4


def _overlapping_streams(server, max_tokens: int) -> tuple:
    """Start a long stream; when its first content arrived, send a second request beside it."""
    t0 = time.perf_counter()
    second: dict = {}
    started = threading.Event()

    def send_second() -> None:
        second["t"] = exchange(server.url, "POST", CHAT, chat_body(server, max_tokens=16), t0=t0)

    def on_read(transcript) -> None:
        if not started.is_set() and b'"content"' in transcript.raw:
            started.set()
            threading.Thread(target=send_second).start()

    # logit_bias: keep the end-of-sequence token out so the first stream would run its full length.
    first = exchange(server.url, "POST", CHAT,
                     chat_body(server, max_tokens=max_tokens, logit_bias={"1": -100}),
                     on_read=on_read, t0=t0)
    deadline = time.monotonic() + 60
    while "t" not in second and time.monotonic() < deadline:
        time.sleep(0.05)
    return first, second.get("t")


def test_default_interrupt_requests_cuts_the_running_stream_short(llamacpp_server):
    first, second = _overlapping_streams(llamacpp_server, INTERRUPTED_REPLY)
    record("llamacpp_interrupted", llamacpp_server,
           "default interrupt_requests: a long stream, and a second request sent once its first content arrived",
           first, second)

    assert second is not None and second.status == 200 and second.end == "complete"
    assert first.status == 200
    events = first.sse_json()
    # The first stream ends early: [DONE] arrives without any finish_reason ...
    assert first.sse_events()[-1] == b"[DONE]"
    assert all(e["choices"][0]["finish_reason"] is None for e in events)
    assert len(events) - 1 < INTERRUPTED_REPLY
    # ... and then either the connection is closed without finishing the HTTP response (no last
    # chunk), or the response is finished normally: both seen from llama-cpp-python 0.3.36, so
    # llmsoak's cut_short rests on the missing finish_reason, not on the framing.
    assert first.end in ("eof", "reset", "complete")
    assert first.framing_complete() == (first.end == "complete")


def test_interrupt_requests_false_queues_the_second_request(start_llamacpp):
    server = start_llamacpp(interrupt_requests=False)
    first, second = _overlapping_streams(server, LONG_REPLY)
    record("llamacpp_no_interrupt", server,
           "--interrupt_requests False: the same two overlapping requests; both complete, one after the other",
           first, second)

    for t in (first, second):
        assert t.status == 200 and t.end == "complete" and t.sse_events()[-1] == b"[DONE]"
    assert first.sse_json()[-1]["choices"][0]["finish_reason"] == "length"
    assert len(first.sse_json()) - 2 == LONG_REPLY  # a chunk per token, the role chunk and the finish chunk
    # One request at a time: the second one's first content came after the first stream ended.
    first_end_ms = first.started_ms + first.reads[-1][0]
    second_content_ms = second.started_ms + next(t for t, d in second.reads if b'"content"' in d)
    assert second_content_ms >= first_end_ms - 5
