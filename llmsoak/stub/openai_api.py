"""OpenAI-compatible endpoints: /v1/models, /v1/chat/completions, /v1/completions, /v1/embeddings.

Wire format as OpenAI (and vLLM) write it: SSE ``data: {json}\\n\\n`` events ending with
``data: [DONE]``, chunk objects ``chat.completion.chunk`` / ``text_completion``, errors as
``{"error": {"message", "type", "param", "code"}}``. Stream chunks are built from per-request
string templates (no json.dumps per token).
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import time
from typing import TYPE_CHECKING

from llmsoak.stub.engine import Generation, Result, new_id, serve_generation
from llmsoak.stub.generation import count_tokens, plan_output_tokens

if TYPE_CHECKING:
    from llmsoak.stub.http import Request, Responder
    from llmsoak.stub.server import StubApp

EMBEDDING_DIMENSIONS = 64
"""Length of the (deterministic, hash-derived) embedding vectors."""


class OpenAIError(Exception):
    """A request the API rejects; rendered as OpenAI's error object."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 type_: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type_


def error_body(status: int, message: str, param: str | None = None, code: str | None = None,
               type_: str | None = None) -> bytes:
    """OpenAI's error JSON for ``status``."""
    if type_ is None:
        type_ = {429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"}.get(
            status, "invalid_request_error")
    return json.dumps({"error": {"message": message, "type": type_, "param": param,
                                 "code": code}}).encode()


def send_error(resp: Responder, err: OpenAIError) -> None:
    resp.send(err.status, error_body(err.status, err.message, err.param, err.code, err.type))


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
               list: "an array", dict: "an object", type(None): "null"}


def _type_name(value: object) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def parse_body(request: Request) -> dict:
    """The JSON object in the request body, or OpenAIError(400)."""
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise OpenAIError(400, "We could not parse the JSON body of your request. (HINT: This likely "
                          "means you aren't using your HTTP library correctly. The OpenAI API "
                          "expects a JSON payload, but what was sent was not valid JSON.)") from None
    if not isinstance(body, dict):
        raise OpenAIError(400, f"Invalid type for request body: expected an object, but got "
                          f"{_type_name(body)} instead.", None, "invalid_type")
    return body


def _typed(body: dict, name: str, types: tuple[type, ...], expected: str):
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        raise OpenAIError(400, f"Invalid type for '{name}': expected {expected}, but got "
                          f"{_type_name(value)} instead.", name, "invalid_type")
    return value


def _max_tokens(body: dict) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = _typed(body, name, (int,), "an integer")
        if value is not None:
            if value < 0:
                raise OpenAIError(400, f"Invalid '{name}': integer below minimum value. Expected a "
                                  f"value >= 0, but got {value} instead.", name, "integer_below_min_value")
            return value
    return None


def _stream_options(body: dict) -> tuple[bool, bool]:
    stream = _typed(body, "stream", (bool,), "a boolean") or False
    options = _typed(body, "stream_options", (dict,), "an object") or {}
    include_usage = bool(options.get("include_usage", False))
    return stream, include_usage


def _model(app: StubApp, body: dict) -> str:
    return _typed(body, "model", (str,), "a string") or app.config.model


def _message_text(content: object, index: int) -> str:
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):  # content parts: [{"type": "text", "text": "..."}]
        return "".join(p.get("text", "") for p in content if isinstance(p, dict)
                       and isinstance(p.get("text", ""), str))
    raise OpenAIError(400, f"Invalid type for 'messages[{index}].content': expected one of a string "
                      f"or array of objects, but got {_type_name(content)} instead.",
                      f"messages[{index}].content", "invalid_type")


def chat_prompt_tokens(messages: object) -> int:
    """Prompt tokens of an OpenAI ``messages`` list (validated; raises OpenAIError)."""
    if messages is None:
        raise OpenAIError(400, "Missing required parameter: 'messages'.", "messages",
                          "missing_required_parameter")
    if not isinstance(messages, list):
        raise OpenAIError(400, f"Invalid type for 'messages': expected an array, but got "
                          f"{_type_name(messages)} instead.", "messages", "invalid_type")
    if not messages:
        raise OpenAIError(400, "Invalid 'messages': empty array. Expected an array with minimum "
                          "length 1, but got an empty array instead.", "messages", "empty_array")
    total = 0
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise OpenAIError(400, f"Invalid type for 'messages[{i}]': expected an object, but got "
                              f"{_type_name(message)} instead.", f"messages[{i}]", "invalid_type")
        if not isinstance(message.get("role"), str):
            raise OpenAIError(400, f"Missing required parameter: 'messages[{i}].role'.",
                              f"messages[{i}].role", "missing_required_parameter")
        total += count_tokens(_message_text(message.get("content"), i))
    return total


class _ChunkFormat:
    """Per-request SSE templates shared by chat and text completions."""

    stream_content_type = "text/event-stream; charset=utf-8"
    body_content_type = "application/json"

    def __init__(self, object_name: str, id_: str, created: int, model: str,
                 include_usage: bool) -> None:
        self.id, self.created, self.model = id_, created, model
        self.include_usage = include_usage
        self._base = (f'data: {{"id":"{id_}","object":"{object_name}","created":{created},'
                      f'"model":{json.dumps(model)},')
        self._usage_null = ',"usage":null' if include_usage else ""

    def _wrap(self, pre: str, suf: str, tokens: list[str]) -> str:
        if not tokens:
            return ""
        return pre + (suf + pre).join(tokens) + suf

    def usage(self, result: Result) -> dict:
        return {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
                "total_tokens": result.prompt_tokens + result.completion_tokens}

    def _done(self, result: Result) -> str:
        out = ""
        if self.include_usage:
            out = self._base + '"choices":[],"usage":' + json.dumps(self.usage(result)) + "}\n\n"
        return out + "data: [DONE]\n\n"

    def malformed(self) -> str:
        return self._base + '"choices":[{"index":0,"delta":{"content":"\\u00\n\n'

    def error(self, status: int, message: str) -> bytes:
        return error_body(status, message)

    def error_event(self, message: str) -> str:
        """vLLM's error event inside a 200 stream."""
        return "data: " + json.dumps({"error": {"message": message, "type": "InternalServerError",
                                                "param": None, "code": 500}}) + "\n\n"

    def interrupted_end(self) -> str:
        return "data: [DONE]\n\n"


class ChatChunkFormat(_ChunkFormat):
    """``chat.completion.chunk`` events and the ``chat.completion`` body."""

    def __init__(self, id_: str, created: int, model: str, include_usage: bool) -> None:
        super().__init__("chat.completion.chunk", id_, created, model, include_usage)
        self._pre = self._base + '"choices":[{"index":0,"delta":{"content":"'
        self._suf = '"},"logprobs":null,"finish_reason":null}]' + self._usage_null + "}\n\n"

    def head(self) -> str:
        return (self._base + '"choices":[{"index":0,"delta":{"role":"assistant","content":""},'
                '"logprobs":null,"finish_reason":null}]' + self._usage_null + "}\n\n")

    def events(self, tokens: list[str]) -> str:
        return self._wrap(self._pre, self._suf, tokens)

    def tail(self, result: Result) -> str:
        return (self._base + '"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"'
                + (result.finish_reason or "stop") + '"}]' + self._usage_null + "}\n\n"
                + self._done(result))

    def body(self, result: Result) -> bytes:
        return json.dumps({
            "id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": result.text},
                         "logprobs": None, "finish_reason": result.finish_reason or "stop"}],
            "usage": self.usage(result),
        }).encode()


class TextChunkFormat(_ChunkFormat):
    """``text_completion`` events and body (legacy /v1/completions)."""

    def __init__(self, id_: str, created: int, model: str, include_usage: bool) -> None:
        super().__init__("text_completion", id_, created, model, include_usage)
        self._pre = self._base + '"choices":[{"index":0,"text":"'
        self._suf = '","logprobs":null,"finish_reason":null}]' + self._usage_null + "}\n\n"

    def head(self) -> str:
        return ""

    def events(self, tokens: list[str]) -> str:
        return self._wrap(self._pre, self._suf, tokens)

    def tail(self, result: Result) -> str:
        return (self._base + '"choices":[{"index":0,"text":"","logprobs":null,"finish_reason":"'
                + (result.finish_reason or "stop") + '"}]' + self._usage_null + "}\n\n"
                + self._done(result))

    def malformed(self) -> str:
        return self._base + '"choices":[{"index":0,"text":"\\u00\n\n'

    def body(self, result: Result) -> bytes:
        return json.dumps({
            "id": self.id, "object": "text_completion", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "text": result.text, "logprobs": None,
                         "finish_reason": result.finish_reason or "stop"}],
            "usage": self.usage(result),
        }).encode()


class EmbeddingFormat(_ChunkFormat):
    """The ``list`` of ``embedding`` objects; not streamable."""

    def __init__(self, model: str, inputs: list[str]) -> None:
        super().__init__("list", "", 0, model, False)
        self.inputs = inputs

    def body(self, result: Result) -> bytes:
        data = [{"object": "embedding", "index": i, "embedding": embed(text)}
                for i, text in enumerate(self.inputs)]
        return json.dumps({"object": "list", "data": data, "model": self.model,
                           "usage": {"prompt_tokens": result.prompt_tokens,
                                     "total_tokens": result.prompt_tokens}}).encode()


def embed(text: str) -> list[float]:
    """A deterministic unit vector of EMBEDDING_DIMENSIONS floats derived from ``text``."""
    digest = b"".join(hashlib.sha256(f"{i}:{text}".encode()).digest() for i in range(8))
    raw = [v / 2**31 for v in struct.unpack(f"<{EMBEDDING_DIMENSIONS}i", digest[:EMBEDDING_DIMENSIONS * 4])]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [round(v / norm, 6) for v in raw]


async def models(app: StubApp, request: Request, resp: Responder) -> None:
    resp.send(200, json.dumps({"object": "list", "data": [
        {"id": app.config.model, "object": "model", "created": int(app.stats.started_s),
         "owned_by": "llmsoak-stub"}]}).encode())


async def chat_completions(app: StubApp, request: Request, resp: Responder) -> None:
    try:
        body = parse_body(request)
        prompt_tokens = chat_prompt_tokens(body.get("messages"))
        stream, include_usage = _stream_options(body)
        requested = _max_tokens(body)
        model = _model(app, body)
    except OpenAIError as err:
        send_error(resp, err)
        return
    n, finish = plan_output_tokens(requested, app.config.output_tokens)
    fmt = ChatChunkFormat(new_id(app.rng, "chatcmpl-"), int(time.time()), model, include_usage)
    gen = Generation(prompt_tokens, app.tokens.take(n, app.rng), finish)
    await serve_generation(app, resp, fmt, gen, stream)


def _prompt_text(prompt: object) -> str:
    if prompt is None:
        raise OpenAIError(400, "Missing required parameter: 'prompt'.", "prompt",
                          "missing_required_parameter")
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        if all(isinstance(p, str) for p in prompt):
            return "".join(prompt)
        if all(isinstance(p, int) and not isinstance(p, bool) for p in prompt):
            return "xxxx" * len(prompt)  # token ids: one token each
    raise OpenAIError(400, f"Invalid type for 'prompt': expected a string or array of strings, but "
                      f"got {_type_name(prompt)} instead.", "prompt", "invalid_type")


async def completions(app: StubApp, request: Request, resp: Responder) -> None:
    try:
        body = parse_body(request)
        prompt_tokens = count_tokens(_prompt_text(body.get("prompt")))
        stream, include_usage = _stream_options(body)
        requested = _max_tokens(body)
        model = _model(app, body)
    except OpenAIError as err:
        send_error(resp, err)
        return
    n, finish = plan_output_tokens(requested, app.config.output_tokens)
    fmt = TextChunkFormat(new_id(app.rng, "cmpl-"), int(time.time()), model, include_usage)
    gen = Generation(prompt_tokens, app.tokens.take(n, app.rng), finish)
    await serve_generation(app, resp, fmt, gen, stream)


async def embeddings(app: StubApp, request: Request, resp: Responder) -> None:
    try:
        body = parse_body(request)
        raw = body.get("input")
        if raw is None:
            raise OpenAIError(400, "Missing required parameter: 'input'.", "input",
                              "missing_required_parameter")
        inputs = [raw] if isinstance(raw, str) else raw
        if not isinstance(inputs, list) or not inputs or not all(isinstance(t, str) for t in inputs):
            raise OpenAIError(400, "Invalid 'input': expected a non-empty string or array of "
                              "strings.", "input", "invalid_type")
        model = _model(app, body)
    except OpenAIError as err:
        send_error(resp, err)
        return
    prompt_tokens = sum(count_tokens(t) for t in inputs)
    await serve_generation(app, resp, EmbeddingFormat(model, inputs),
                           Generation(prompt_tokens, [], None), False)
