"""The interface every API format implements: :class:`Flavour`.

A flavour knows one wire format: which path to POST to, how to build the request body from a
conversation, and how to pull the text delta, end marker and token usage out of one decoded
stream event (:meth:`Flavour.decode_event`) or a complete JSON body
(:meth:`Flavour.decode_body`). It knows nothing of sockets or timing: llmsoak.locust.response_reader
feeds it decoded JSON and keeps the clock. A new API format is a subclass in its own module of
this package, registered in ``FLAVOURS`` (``llmsoak/locust/apis/__init__.py``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from llmsoak.locust.results import ServerError, server_reason

if TYPE_CHECKING:
    from llmsoak.locust.results import RequestResult


def server_error(error: Any) -> ServerError:
    """A :class:`ServerError` from an ``error`` value in an event or body: OpenAI's
    ``{"message", "code", ...}`` object or Ollama's plain string."""
    status = 0
    if isinstance(error, dict):
        code = error.get("code")
        if isinstance(code, int) and 100 <= code < 600:
            status = code
    reason = server_reason(json.dumps({"error": error})) or "no reason given"
    return ServerError(reason, status)


def render_prompt(messages: list[dict]) -> str:
    """A plain-text transcript for completion-style endpoints (OpenAI completions, Ollama generate)."""
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    lines.append("assistant:")
    return "\n".join(lines)


class Flavour:
    """One wire format. Subclasses set ``path``/``stream_format`` and implement the hooks."""

    name = "base"
    path = "/"
    method = "POST"
    """HTTP method of a model request (a chat app's ``target.chat.method`` may differ)."""
    stream_format: str | None = None
    """"sse", "ndjson" or None (the request is not streamed)."""
    keeps_history = True
    """True: the client sends the whole history each turn; False: the server keeps it (session id)."""

    def __init__(self, *, model: str = "", stream: bool = True, max_tokens: int | None = None,
                 path: str | None = None, options: dict | None = None) -> None:
        self.model = model
        self.stream = stream
        self.max_tokens = max_tokens
        if path:
            self.path = path
        self.options = dict(options or {})
        if not stream:
            self.stream_format = None

    def body(self, messages: list[dict], session_id: str) -> dict:
        raise NotImplementedError

    def decode_event(self, obj: Any, result: RequestResult) -> str | None:
        """Text delta of one stream event (None/"" if none); sets result.finished/tokens.

        Raises ValueError for an event of the wrong structure (a *malformed* failure)."""
        raise NotImplementedError

    def decode_body(self, obj: Any, result: RequestResult) -> str | None:
        """Reply text of a complete JSON body; sets token counts."""
        raise NotImplementedError

    @property
    def label(self) -> str:
        """Stats name of this flavour's request, e.g. ``/v1/chat/completions``."""
        return self.path
