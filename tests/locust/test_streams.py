"""Incremental SSE/NDJSON parsers and the flavour readers, fed bytes as a server would send them."""

from __future__ import annotations

import json

import pytest

from llmsoak.locust.clients import (
    ChatApp,
    OllamaChat,
    OllamaGenerate,
    OpenAIChat,
    OpenAICompletions,
    RequestResult,
    classify_exception,
    read_body,
    read_stream,
)
from llmsoak.locust.streams import DONE, LineSplitter, NDJSONParser, SSEParser, parse_ndjson, parse_sse


def test_sse_joins_multiline_data_and_skips_comments_and_fields():
    stream = b": keep-alive\nevent: message\nid: 7\ndata: {\"a\":\ndata: 1}\n\ndata:[DONE]\n\n"
    assert parse_sse([stream]) == [b'{"a":\n1}', DONE]


def test_sse_split_at_every_byte_gives_the_same_events():
    stream = b'data: {"x": 1}\r\n\r\ndata: {"x": 2}\n\n: c\n\ndata: [DONE]\n\n'
    whole = parse_sse([stream])
    bytewise = parse_sse([stream[i:i + 1] for i in range(len(stream))])
    assert whole == bytewise == [b'{"x": 1}', b'{"x": 2}', DONE]


def test_sse_trailing_event_without_blank_line_is_delivered():
    assert parse_sse([b'data: {"last": true}']) == [b'{"last": true}']


def test_sse_parser_returns_payload_only_on_blank_line():
    parser = SSEParser()
    assert parser.feed_line(b"data: one\n") is None
    assert parser.feed_line(b"\n") == b"one"
    assert parser.feed_line(b"\n") is None  # blank line without data dispatches nothing


def test_ndjson_lines_and_blank_lines():
    assert parse_ndjson([b'{"a":1}\n\n{"b"', b':2}\n{"c":3}']) == [b'{"a":1}', b'{"b":2}', b'{"c":3}']
    assert NDJSONParser().feed_line(b"  \n") is None


def test_line_splitter_keeps_partial_line():
    s = LineSplitter()
    assert s.feed(b"ab") == []
    assert s.feed(b"c\nd") == [b"abc\n"]
    assert s.finish() == b"d"


class FakeLines:
    """Lines as geventhttpclient's readline(sep) returns them, then b"" (end), or an exception."""

    def __init__(self, data: bytes, error: BaseException | None = None):
        self.lines = [ln + b"\n" for ln in data.split(b"\n")]
        if self.lines and self.lines[-1] == b"\n":
            self.lines.pop()
        self.error = error

    def __call__(self, sep: bytes = b"\n") -> bytes:
        if self.lines:
            return self.lines.pop(0)
        if self.error:
            raise self.error
        return b""


def _sse(*events) -> bytes:
    return b"".join(b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n\n" for e in events)


def _read(flavour, data: bytes, error=None) -> RequestResult:
    return read_stream(FakeLines(data, error), flavour, RequestResult(status=200), 0.0)


def test_openai_chat_stream_counts_tokens_from_usage_and_times_chunks():
    data = _sse({"choices": [{"delta": {"role": "assistant"}}]},
                {"choices": [{"delta": {"content": "Hel"}}]},
                {"choices": [{"delta": {"content": "lo"}}]},
                {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 2}}, b"[DONE]")
    r = _read(OpenAIChat(model="m"), data)
    assert r.ok and r.text == "Hello" and r.content_chunks == 2
    assert (r.input_tokens, r.output_tokens, r.tokens_approximate) == (12, 2, False)
    assert r.ttft_ms is not None and len(r.itl_ms) == 1 and r.e2e_ms >= r.ttft_ms


def test_openai_completions_without_usage_counts_chunks_as_approximate():
    data = _sse({"choices": [{"text": "a"}]}, {"choices": [{"text": "b"}]}, {"choices": [{"text": "c"}]}, b"[DONE]")
    r = _read(OpenAICompletions(), data)
    assert r.ok and r.output_token_count == 3 and r.tokens_approximate


def test_ollama_chat_and_generate_ndjson():
    lines = [{"message": {"content": "x"}, "done": False}, {"message": {"content": "y"}, "done": False},
             {"message": {"content": ""}, "done": True, "eval_count": 2, "prompt_eval_count": 9}]
    r = _read(OllamaChat(), b"".join(json.dumps(x).encode() + b"\n" for x in lines))
    assert r.ok and r.text == "xy" and (r.input_tokens, r.output_tokens) == (9, 2)
    gen = [{"response": "p", "done": False}, {"response": "", "done": True, "eval_count": 1}]
    r = _read(OllamaGenerate(), b"".join(json.dumps(x).encode() + b"\n" for x in gen))
    assert r.ok and r.text == "p" and r.output_tokens == 1


def test_chat_app_sse_and_ndjson():
    data = _sse({"delta": "hi"}, {"delta": " there"}, {"done": True, "usage": {"prompt_tokens": 3, "completion_tokens": 2}}, b"[DONE]")
    r = _read(ChatApp(stream_mode="sse"), data)
    assert r.ok and r.text == "hi there" and r.output_tokens == 2
    nd = b'{"delta": "a"}\n{"done": true, "usage": {"prompt_tokens": 1, "completion_tokens": 1}}\n'
    r = _read(ChatApp(stream_mode="ndjson"), nd)
    assert r.ok and r.text == "a" and r.input_tokens == 1


@pytest.mark.parametrize("data,error,cls", [
    (_sse({"choices": [{"delta": {"content": "a"}}]}), None, "disconnect"),      # no [DONE]: cut off
    (_sse({"choices": [{"delta": {"content": "a"}}]}), ConnectionResetError(104, "reset"), "disconnect"),
    (_sse({"choices": [{"delta": {"content": "a"}}]}), TimeoutError("timed out"), "timeout"),
    (_sse({"choices": [{"delta": {"content": "a"}}]}, b"{not json"), None, "malformed"),
    (b"", None, "empty"),
    (_sse(b"[DONE]"), None, "empty"),
])
def test_stream_failures_are_classified_once(data, error, cls):
    r = _read(OpenAIChat(), data, error)
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


def test_request_bodies_per_flavour():
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}, {"role": "user", "content": "more"}]
    body = OpenAIChat(model="m", max_tokens=5).body(msgs, "s1")
    assert body["messages"] == msgs and body["stream_options"] == {"include_usage": True} and body["max_tokens"] == 5
    assert "more" in OpenAICompletions(model="m").body(msgs, "s1")["prompt"]
    assert OllamaChat(model="m", max_tokens=7).body(msgs, "s")["options"] == {"num_predict": 7}
    assert "prompt" in OllamaGenerate(model="m", stream=False).body(msgs, "s")
    assert ChatApp(stream_mode="none").body(msgs, "s9") == {"session_id": "s9", "message": "more", "stream": False}
    assert ChatApp(stream_mode="sse").body(msgs, "s9")["stream"] == "sse"


def test_classify_exception_names():
    class HTTPParseError(Exception):
        pass
    assert classify_exception(HTTPParseError("Incomplete response."))[0] == "disconnect"
    assert classify_exception(ConnectionRefusedError(111, "refused")) == ("disconnect", "connection refused")
    assert classify_exception(RuntimeError("x")) == ("other", "RuntimeError")
