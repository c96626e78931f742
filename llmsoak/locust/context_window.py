"""The served model's context window: from the profile, the server, or an overflow error.

One :class:`ContextWindow` per Locust process and target (:func:`context_window_for`). Its size
comes, in this order, from ``target.context_tokens`` (the profile overrides the server), from the
server when the first user starts (:func:`ask_server`: vLLM's ``max_model_len`` in
``GET /v1/models``, llama.cpp ``llama-server``'s ``GET /props``), or from the first
context-overflow error whose message states it (:meth:`ContextWindow.learn_from`; llama-cpp-python
reports its ``n_ctx`` nowhere else). Unknown: sessions are not trimmed to a context.
Ollama's ``num_ctx`` is not asked: Ollama cuts a long prompt itself instead of refusing it.

The sessions (llmsoak.locust.history) read :attr:`ContextWindow.tokens` before every turn. The
counters (turns dropped, requests trimmed) are logged when the process stops.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request

from llmsoak.locust.results import context_limit_in

logger = logging.getLogger("llmsoak.context")

_ASK_TIMEOUT_S = 5.0
_windows: dict[tuple[str, str], ContextWindow] = {}
_lock = threading.Lock()  # gevent patches threading under Locust: users starting together wait here


class ContextWindow:
    """What one process knows of a target's context window, and how often it trimmed to it."""

    __slots__ = ("tokens", "source", "asked", "announced", "turns_dropped", "requests_trimmed")

    def __init__(self, tokens: int | None = None, source: str = "") -> None:
        self.tokens = tokens
        """Context size in tokens (prompt + output), or None while unknown."""
        self.source = source
        """Where ``tokens`` came from, for a person: ``target.context_tokens``, ``GET /v1/models
        max_model_len`` ..."""
        self.asked = tokens is not None
        """The server was asked already (or needs no asking)."""
        self.announced = False
        """The size was logged once."""
        self.turns_dropped = 0
        """Oldest turns dropped from histories so that prompts fit (this process)."""
        self.requests_trimmed = 0
        """Requests sent with a history shortened to fit."""

    def learn_from(self, reason: str) -> None:
        """Take the size an overflow message states (``maximum context length is 1024 tokens``)
        when none is known, or a smaller one than believed."""
        limit = context_limit_in(reason)
        if limit and (self.tokens is None or limit < self.tokens):
            self.tokens, self.source, self.announced = limit, "the server's context-overflow error", False
            self.announce()

    def announce(self) -> None:
        """Log the size and its source once per process (and again when it changes)."""
        if self.tokens and not self.announced:
            self.announced = True
            logger.info("context window %d tokens (from %s): histories are trimmed to fit",
                        self.tokens, self.source)

    def __repr__(self) -> str:
        return (f"ContextWindow(tokens={self.tokens}, source={self.source!r}, "
                f"turns_dropped={self.turns_dropped}, requests_trimmed={self.requests_trimmed})")


def context_window_for(target, base_url: str | None = None) -> ContextWindow:
    """This process's :class:`ContextWindow` for ``target`` (profile.Target) served at
    ``base_url`` (the user's host, which Locust's ``-H`` may have changed; default
    ``target.url``), asking the server once (by the first caller; later ones get the same object)."""
    base_url = (base_url or target.url).rstrip("/")
    key = (base_url, target.model or "")
    with _lock:
        window = _windows.get(key)
        if window is None:
            configured = getattr(target, "context_tokens", None)
            window = ContextWindow(configured, "target.context_tokens" if configured else "")
            _windows[key] = window
        if not window.asked and target.flavour == "openai":
            window.asked = True
            found = ask_server(base_url, target.model or "", target.resolve_headers())
            if found is not None:
                window.tokens, window.source = found
        window.announce()
    return window


def ask_server(base_url: str, model: str, headers: dict[str, str]) -> tuple[int, str] | None:
    """The context size the server reports and where, or None. Never raises."""
    models = _get_json(base_url + "/v1/models", headers)
    if isinstance(models, dict) and isinstance(models.get("data"), list):
        entries = [m for m in models["data"] if isinstance(m, dict)]
        match = [m for m in entries if m.get("id") == model] or (entries if len(entries) == 1 else [])
        for entry in match:
            value = entry.get("max_model_len")
            if isinstance(value, int) and value > 0:
                return value, "GET /v1/models max_model_len"
    props = _get_json(base_url + "/props", headers)
    if isinstance(props, dict):
        settings = props.get("default_generation_settings")
        for where, obj in (("default_generation_settings.n_ctx", settings), ("n_ctx", props)):
            value = obj.get("n_ctx") if isinstance(obj, dict) else None
            if isinstance(value, int) and value > 0:
                return value, f"GET /props {where}"
    return None


def _get_json(url: str, headers: dict[str, str]):
    request = urllib.request.Request(url, headers={"Accept": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=_ASK_TIMEOUT_S) as resp:  # noqa: S310 - the profile's target
            return json.loads(resp.read(1 << 20))
    except (OSError, ValueError, urllib.error.URLError):
        return None


def log_trimming() -> None:
    """One line per target whose histories were trimmed (at the end of the run)."""
    for (url, model), window in list(_windows.items()):
        if window.requests_trimmed:
            logger.info("context window %s tokens (%s) of %s %s: %d requests sent with a trimmed "
                        "history, %d oldest turns dropped", window.tokens, window.source, url, model,
                        window.requests_trimmed, window.turns_dropped)


def reset() -> None:
    """Forget every window (tests)."""
    with _lock:
        _windows.clear()
