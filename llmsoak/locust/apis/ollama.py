"""Ollama's native API: ``/api/chat`` and ``/api/generate``, streamed as NDJSON.

* ``ollama`` ``chat`` → ``POST /api/chat``: ``messages``; one JSON object per line with
  ``message.content``; the last has ``"done": true`` and ``eval_count``/``prompt_eval_count``.
* ``ollama`` ``generate`` → ``POST /api/generate``: the history rendered as one ``prompt``;
  lines carry ``response``.

``max_tokens`` goes out as ``options.num_predict``. A line with an ``error`` key is the server's
failure (:class:`~llmsoak.locust.results.ServerError` with its text); ``done: true`` (with its
``done_reason``) says the model finished.
"""

from __future__ import annotations

from llmsoak.locust.apis.base import Flavour, render_prompt, server_error


def _ollama_done(obj: dict, result) -> None:
    result.finished = True
    reason = obj.get("done_reason")
    result.finish_reason = reason if isinstance(reason, str) and reason else "done"
    if isinstance(obj.get("eval_count"), int):
        result.output_tokens = obj["eval_count"]
    if isinstance(obj.get("prompt_eval_count"), int):
        result.input_tokens = obj["prompt_eval_count"]


class OllamaChat(Flavour):
    name = "ollama-chat"
    path = "/api/chat"
    stream_format = "ndjson"

    def body(self, messages, session_id):
        body = {"model": self.model, "messages": messages, "stream": self.stream}
        options = dict(self.options)
        if self.max_tokens:
            options.setdefault("num_predict", self.max_tokens)
        if options:
            body["options"] = options
        return body

    def decode_event(self, obj, result):
        if obj.__class__ is not dict:
            raise ValueError("line is not a JSON object")
        if obj.get("done"):
            _ollama_done(obj, result)
        if "error" in obj:
            raise server_error(obj["error"])
        return (obj.get("message") or {}).get("content")

    def decode_body(self, obj, result):
        if obj.__class__ is dict and "error" in obj:
            raise server_error(obj["error"])
        _ollama_done(obj, result)
        return (obj.get("message") or {}).get("content")


class OllamaGenerate(OllamaChat):
    name = "ollama-generate"
    path = "/api/generate"

    def body(self, messages, session_id):
        body = super().body(messages, session_id)
        del body["messages"]
        body["prompt"] = render_prompt(messages)
        return body

    def decode_event(self, obj, result):
        if obj.__class__ is not dict:
            raise ValueError("line is not a JSON object")
        if obj.get("done"):
            _ollama_done(obj, result)
        if "error" in obj:
            raise server_error(obj["error"])
        return obj.get("response")

    def decode_body(self, obj, result):
        if obj.__class__ is dict and "error" in obj:
            raise server_error(obj["error"])
        _ollama_done(obj, result)
        return obj.get("response")
