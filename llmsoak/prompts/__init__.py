"""Prompt sources: the built-in corpus, JSONL files and ShareGPT JSON, behind one PromptSource.

``prompt_source_from_profile(profile).next_conversation(rng, target_tokens=...)`` gives the
Conversation a session sends: ``.opening``, ``.follow_ups``, ``.message(turn)``.
"""

from __future__ import annotations

import threading

from llmsoak.prompts.loaders import load_builtin, load_jsonl, load_sharegpt
from llmsoak.prompts.source import Conversation, PromptSource, estimate_tokens

__all__ = ["Conversation", "PromptSource", "estimate_tokens", "load_builtin", "load_jsonl", "load_sharegpt",
           "load_prompt_source", "prompt_source_from_profile"]

_cache: dict[tuple, PromptSource] = {}
_lock = threading.Lock()


def load_prompt_source(source: str = "builtin", path=None, system_prompt: str | None = None) -> PromptSource:
    """A PromptSource for ``source`` (builtin | jsonl | sharegpt); files are read once per process."""
    key = (source, str(path) if path else None, system_prompt)
    with _lock:
        if key not in _cache:
            if source == "builtin":
                convs, name = load_builtin(), "builtin"
            elif source == "jsonl":
                convs, name = load_jsonl(path), str(path)
            elif source == "sharegpt":
                convs, name = load_sharegpt(path), str(path)
            else:
                raise ValueError(f"unknown prompt source {source!r}")
            _cache[key] = PromptSource(convs, name, system_prompt)
        return _cache[key]


def prompt_source_from_profile(profile) -> PromptSource:
    """The PromptSource described by ``profile.prompts``."""
    p = profile.prompts
    return load_prompt_source(p.source, p.path, p.system_prompt)
