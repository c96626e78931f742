"""API formats (llmsoak.locust.apis): request bodies and replies of each flavour, read as streamed.

Replies go through llmsoak.locust.response_reader with lines as geventhttpclient's
``readline`` returns them, so each test covers what a flavour decodes and what the user records.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from llmsoak.locust.apis import (
    FLAVOURS,
    ChatApp,
    OllamaChat,
    OllamaGenerate,
    OpenAIChat,
    OpenAICompletions,
    flavour_for,
)
from llmsoak.locust.response_reader import read_stream
from llmsoak.locust.results import RequestResult


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
                {"choices": [{"delta": {"content": "lo"}, "finish_reason": "stop"}]},
                {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 2}}, b"[DONE]")
    r = _read(OpenAIChat(model="m"), data)
    assert r.ok and r.text == "Hello" and r.content_chunks == 2 and r.finish_reason == "stop"
    assert (r.input_tokens, r.output_tokens, r.tokens_approximate) == (12, 2, False)
    assert r.ttft_ms is not None and len(r.itl_ms) == 1 and r.e2e_ms >= r.ttft_ms


def test_openai_completions_without_usage_counts_chunks_as_approximate():
    data = _sse({"choices": [{"text": "a"}]}, {"choices": [{"text": "b"}]},
                {"choices": [{"text": "c", "finish_reason": "length"}]}, b"[DONE]")
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


def test_request_bodies_per_flavour():
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}, {"role": "user", "content": "more"}]
    body = OpenAIChat(model="m", max_tokens=5).body(msgs, "s1")
    assert body["messages"] == msgs and body["stream_options"] == {"include_usage": True} and body["max_tokens"] == 5
    assert "more" in OpenAICompletions(model="m").body(msgs, "s1")["prompt"]
    assert OllamaChat(model="m", max_tokens=7).body(msgs, "s")["options"] == {"num_predict": 7}
    assert "prompt" in OllamaGenerate(model="m", stream=False).body(msgs, "s")
    assert ChatApp(stream_mode="none").body(msgs, "s9") == {"session_id": "s9", "message": "more", "stream": False}
    assert ChatApp(stream_mode="sse").body(msgs, "s9")["stream"] == "sse"




def _target(flavour, endpoint, *, stream=True, chat=None):
    return SimpleNamespace(flavour=flavour, endpoint=endpoint, stream=stream, model="m", chat=chat)


@pytest.mark.parametrize("key", sorted(FLAVOURS))
def test_flavour_for_each_profile_flavour(key):
    flavour = flavour_for(_target(*key), SimpleNamespace(stream=None))
    assert isinstance(flavour, FLAVOURS[key]) and flavour.model == "m"
    assert flavour.stream_format is not None or key == ("chat", "chat")  # a bare chat app is not streamed


def test_the_patterns_stream_setting_overrides_the_targets():
    pattern = SimpleNamespace(stream=False)
    assert flavour_for(_target("openai", "chat", stream=True), pattern).stream_format is None
    assert flavour_for(_target("ollama", "chat", stream=False), SimpleNamespace(stream=True)).stream_format == "ndjson"
