"""Ollama-native endpoints: /api/tags, /api/version, /api/chat, /api/generate.

Wire format as Ollama writes it: NDJSON (one JSON object per line) streamed by default, one object
with ``"stream": false``; the last object has ``done: true``, ``done_reason`` and the timing
fields in nanoseconds. Errors are ``{"error": "..."}``. The stub reports its queue wait as
``load_duration`` (Ollama's model load time), prefill as ``prompt_eval_duration``.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from llmsoak.stub.engine import Generation, Result, serve_generation
from llmsoak.stub.generation import count_tokens, plan_output_tokens

if TYPE_CHECKING:
    from llmsoak.stub.http import Request, Responder
    from llmsoak.stub.server import StubApp


class OllamaError(Exception):
    """A rejected request: ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def error_body(status: int, message: str) -> bytes:
    return json.dumps({"error": message}).encode()


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ns(seconds: float) -> int:
    return max(0, int(seconds * 1e9))


def _parse(request: Request) -> dict:
    try:
        body = json.loads(request.body) if request.body.strip() else None
    except (ValueError, UnicodeDecodeError) as err:
        raise OllamaError(400, f"invalid JSON body: {err}") from None
    if not isinstance(body, dict):
        raise OllamaError(400, "request body must be a JSON object")
    model = body.get("model")
    if not model:
        raise OllamaError(400, "model is required")
    if not isinstance(model, str):
        raise OllamaError(400, "json: cannot unmarshal value into field model of type string")
    stream = body.get("stream", True)
    if not isinstance(stream, bool):
        raise OllamaError(400, "json: cannot unmarshal value into field stream of type bool")
    return body


def _num_predict(body: dict) -> int | None:
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise OllamaError(400, "json: cannot unmarshal value into field options of type map")
    value = options.get("num_predict")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise OllamaError(400, "json: cannot unmarshal value into field num_predict of type int")
    return None if value < 0 else value  # -1 (infinite) and -2 (fill context): up to the cap


class _NdjsonFormat:
    """Per-request NDJSON templates; ``created_at`` is refreshed once per write."""

    stream_content_type = "application/x-ndjson"
    body_content_type = "application/json; charset=utf-8"

    def __init__(self, model: str, kind: str) -> None:
        self.model = model
        self.kind = kind  # "chat" or "generate"
        self._model_json = json.dumps(model)
        if kind == "chat":
            self._open, self._close = ',"message":{"role":"assistant","content":"', '"},"done":false}\n'
        else:
            self._open, self._close = ',"response":"', '","done":false}\n'

    def head(self) -> str:
        return ""

    def events(self, tokens: list[str]) -> str:
        if not tokens:
            return ""
        pre = '{"model":' + self._model_json + ',"created_at":"' + _now_iso() + '"' + self._open
        return pre + (self._close + pre).join(tokens) + self._close

    def malformed(self) -> str:
        return '{"model":' + self._model_json + ',"created_at":"' + _now_iso() + '"' + self._open + "\\u00\n"

    def _final(self, result: Result, text: str) -> dict:
        obj: dict = {"model": self.model, "created_at": _now_iso()}
        if self.kind == "chat":
            obj["message"] = {"role": "assistant", "content": text}
        else:
            obj["response"] = text
        obj.update({
            "done": True,
            "done_reason": "length" if result.finish_reason == "length" else "stop",
            "total_duration": _ns(result.t_end - result.t_arrival),
            "load_duration": _ns(result.t_admitted - result.t_arrival),
            "prompt_eval_count": result.prompt_tokens,
            "prompt_eval_duration": _ns(result.t_first - result.t_admitted),
            "eval_count": result.completion_tokens,
            "eval_duration": _ns(result.t_end - result.t_first),
        })
        return obj

    def tail(self, result: Result) -> str:
        return json.dumps(self._final(result, ""), separators=(",", ":")) + "\n"

    def body(self, result: Result) -> bytes:
        return json.dumps(self._final(result, result.text)).encode()

    def error(self, status: int, message: str) -> bytes:
        return error_body(status, message)

    def error_event(self, message: str) -> str:
        """Ollama's ``{"error": ...}`` line inside a 200 stream."""
        return json.dumps({"error": message}) + "\n"

    def interrupted_end(self) -> str:
        return ""  # no [DONE] in NDJSON: the stream just ends without its done line


def _messages_tokens(messages: object) -> int:
    if messages is None:
        return 0
    if not isinstance(messages, list):
        raise OllamaError(400, "json: cannot unmarshal value into field messages of type []api.Message")
    total = 0
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("content", ""), str):
            raise OllamaError(400, "json: cannot unmarshal value into field messages of type "
                              "[]api.Message")
        total += count_tokens(message.get("content", ""))
    return total


async def tags(app: StubApp, request: Request, resp: Responder) -> None:
    resp.send(200, json.dumps({"models": [{
        "name": app.config.model, "model": app.config.model,
        "modified_at": datetime.fromtimestamp(app.stats.started_s, timezone.utc).isoformat(),
        "size": 0, "digest": "0" * 64,
        "details": {"format": "stub", "family": "llmsoak", "parameter_size": "0B",
                    "quantization_level": "none"}}]}).encode())


async def version(app: StubApp, request: Request, resp: Responder) -> None:
    from llmsoak import __version__

    resp.send(200, json.dumps({"version": f"0.0.0-llmsoak-stub-{__version__}"}).encode())


async def _generate(app: StubApp, request: Request, resp: Responder, kind: str) -> None:
    try:
        body = _parse(request)
        if kind == "chat":
            prompt_tokens = _messages_tokens(body.get("messages"))
        else:
            prompt = body.get("prompt", "")
            if not isinstance(prompt, str):
                raise OllamaError(400, "json: cannot unmarshal value into field prompt of type string")
            prompt_tokens = count_tokens(prompt) + (count_tokens(body["system"])
                                                    if isinstance(body.get("system"), str) else 0)
        requested = _num_predict(body)
    except OllamaError as err:
        resp.send(err.status, error_body(err.status, err.message))
        return
    n, finish = plan_output_tokens(requested, app.config.output_tokens)
    fmt = _NdjsonFormat(body["model"], kind)
    gen = Generation(prompt_tokens, app.tokens.take(n, app.rng), finish)
    await serve_generation(app, resp, fmt, gen, body.get("stream", True))


async def chat(app: StubApp, request: Request, resp: Responder) -> None:
    await _generate(app, request, resp, "chat")


async def generate(app: StubApp, request: Request, resp: Responder) -> None:
    await _generate(app, request, resp, "generate")

