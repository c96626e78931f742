"""API formats: one module per flavour of target, all implementing :class:`Flavour` (``base``).

* ``openai`` ``chat`` → ``POST /v1/chat/completions``, SSE with include_usage (``openai``)
* ``openai`` ``completions`` → ``POST /v1/completions``, SSE (``openai``)
* ``ollama`` ``chat`` → ``POST /api/chat``; ``ollama`` ``generate`` → ``POST /api/generate``,
  NDJSON (``ollama``)
* ``chat`` → a chat application (``target.chat``): templated body, server-kept history, not
  streamed or SSE/NDJSON (``chat_app``)

:func:`flavour_for` builds the flavour a user of a pattern talks to the target with. Nothing
here imports Locust; docs/locust.md describes each format.
"""

from __future__ import annotations

from llmsoak.locust.apis.base import Flavour, render_prompt
from llmsoak.locust.apis.chat_app import ChatApp
from llmsoak.locust.apis.ollama import OllamaChat, OllamaGenerate
from llmsoak.locust.apis.openai import OpenAIChat, OpenAICompletions

FLAVOURS: dict[tuple[str, str], type[Flavour]] = {
    ("openai", "chat"): OpenAIChat,
    ("openai", "completions"): OpenAICompletions,
    ("ollama", "chat"): OllamaChat,
    ("ollama", "generate"): OllamaGenerate,
    ("chat", "chat"): ChatApp,
}
"""(``target.flavour``, ``target.endpoint``) → Flavour class."""


def flavour_for(target, pattern) -> Flavour:
    """The API format for ``target`` (profile.Target) as used by ``pattern`` (PatternSpec).

    The pattern's ``stream`` (when set) overrides the target's. A new instance per user: its
    ``max_tokens`` changes with every request.
    """
    stream = target.stream if pattern.stream is None else pattern.stream
    if target.flavour == "chat":
        api = target.chat
        if api is None:
            return ChatApp(model=target.model or "")
        mode = api.stream if stream else "none"
        return ChatApp(model=target.model or "", stream_mode=mode, body_template=dict(api.body),
                       reply_path=api.reply_path, delta_path=api.delta_path,
                       usage_path=api.usage_path or "usage", path=api.path,
                       end_session_path=api.end_session.path if api.end_session else None, method=api.method,
                       end_session_method=api.end_session.method if api.end_session else "DELETE")
    cls = FLAVOURS[(target.flavour, target.endpoint)]
    return cls(model=target.model or "", stream=stream)


__all__ = ["FLAVOURS", "ChatApp", "Flavour", "OllamaChat", "OllamaGenerate", "OpenAIChat",
           "OpenAICompletions", "flavour_for", "render_prompt"]
