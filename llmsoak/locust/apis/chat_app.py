"""A chat application in front of a model: templated JSON body, reply at a dotted path.

``chat`` → ``POST /chat`` (``target.chat`` in the profile): the body is a JSON template with
``{session_id}``, ``{message}``, ``{model}`` and ``{stream}`` placeholders; only the new message
is sent, the application keeps the history under the session id and forgets it on
``DELETE /chat/{session_id}``. Replies are read at ``reply_path`` (a dotted path) or, streamed
(``sse``/``ndjson``), from ``{"delta": ...}`` events and a final ``{"done": true, "usage": {...}}``.
"""

from __future__ import annotations

from typing import Any

from llmsoak.locust.apis.base import Flavour, server_error
from llmsoak.locust.apis.openai import openai_usage


def dig(obj: Any, path: tuple[str, ...]) -> Any:
    """``obj`` at a dotted path already split (``("choices", "0", "text")``); None if absent."""
    for key in path:
        if isinstance(obj, dict):
            obj = obj.get(key)
        elif isinstance(obj, list) and key.isdigit() and int(key) < len(obj):
            obj = obj[int(key)]
        else:
            return None
    return obj


def fill_template(template: Any, values: dict[str, Any]) -> Any:
    """Replace "{session_id}", "{message}", "{model}" placeholders in a JSON-like template.

    A string that is exactly one placeholder takes the value's type (so "{stream}" can be false).
    """
    if isinstance(template, str):
        if template.startswith("{") and template.endswith("}") and template[1:-1] in values:
            return values[template[1:-1]]
        for key, value in values.items():
            template = template.replace("{" + key + "}", str(value))
        return template
    if isinstance(template, dict):
        return {k: fill_template(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill_template(v, values) for v in template]
    return template


class ChatApp(Flavour):
    """A chat application that keeps the history server-side under a session id."""

    name = "chat"
    path = "/chat"
    keeps_history = False
    DEFAULT_BODY = {"session_id": "{session_id}", "message": "{message}", "stream": "{stream}"}

    def __init__(self, *, stream_mode: str = "none", body_template: dict | None = None,
                 reply_path: str = "reply", delta_path: str = "delta", usage_path: str = "usage",
                 end_session_path: str | None = "/chat/{session_id}", method: str = "POST",
                 end_session_method: str = "DELETE", **kw: Any) -> None:
        stream_mode = stream_mode or "none"
        super().__init__(stream=stream_mode != "none", **kw)
        self.stream_mode = stream_mode
        self.stream_format = None if stream_mode == "none" else stream_mode
        self.body_template = body_template or self.DEFAULT_BODY
        self.reply_path = tuple(reply_path.split("."))
        self.delta_path = tuple(delta_path.split("."))
        self.usage_path = tuple(usage_path.split("."))
        self.end_session_path = end_session_path
        self.method = method
        self.end_session_method = end_session_method

    def body(self, messages, session_id):
        values = {"session_id": session_id, "message": messages[-1]["content"], "model": self.model,
                  "stream": self.stream_mode if self.stream else False}
        return fill_template(self.body_template, values)

    def _usage(self, obj: Any, result) -> None:
        usage = dig(obj, self.usage_path)
        if isinstance(usage, dict):
            openai_usage({"usage": usage}, result)

    def decode_event(self, obj, result):
        if obj.__class__ is not dict:
            raise ValueError("event is not a JSON object")
        if obj.get("done"):
            result.finished = True
            result.finish_reason = "done"
            self._usage(obj, result)
            return None
        if "error" in obj:
            raise server_error(obj["error"])
        delta = dig(obj, self.delta_path)
        return delta if isinstance(delta, str) else None

    def decode_body(self, obj, result):
        self._usage(obj, result)
        result.finished = True
        result.finish_reason = "done"
        reply = dig(obj, self.reply_path)
        return reply if isinstance(reply, str) else None
