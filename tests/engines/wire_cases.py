"""Shared helpers of the engine tests: request bodies and saving wire transcripts.

Set ``LLMSOAK_RECORD_WIRE=DIR`` to save each case's transcripts as ``DIR/<case>.json`` while the
tests run (tests/fixtures/wire/ holds the committed ones; see its README.md).
"""

from __future__ import annotations

import os
from pathlib import Path

from support.engines import EngineServer
from support.wire import Transcript, save_case

CHAT = "/v1/chat/completions"
QUESTION = "What is the difference between a process and a thread?"
"""A prompt from llmsoak's own corpus (llmsoak/prompts/corpus.json): a few tokens for the tiny models."""


def chat_body(server: EngineServer, content: str = QUESTION, *, max_tokens: int = 16, stream: bool = True,
              **extra) -> dict:
    """An OpenAI chat request as llmsoak sends it (``stream_options.include_usage`` when streamed)."""
    body = {"model": server.model, "messages": [{"role": "user", "content": content}],
            "max_tokens": max_tokens, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    body.update(extra)
    return body


def long_text(words: int) -> str:
    """``words`` words of ordinary English; about 2.5 tokens a word for the tiny models' tokenizer."""
    base = ("The quarterly report covers incident response, on-call rotations, database migrations and the "
            "new deployment pipeline for the customer portal. ").split()
    return " ".join(base[i % len(base)] for i in range(words))


def record(case: str, server: EngineServer, description: str, *transcripts: Transcript) -> None:
    """Save the case under $LLMSOAK_RECORD_WIRE when set (nothing otherwise)."""
    directory = os.environ.get("LLMSOAK_RECORD_WIRE")
    if directory:
        save_case(Path(directory), case, engine=server.name, version=server.version, description=description,
                  transcripts=list(transcripts))


def record_text(name: str, text: str) -> None:
    """Save a text snapshot (e.g. a /metrics page) under $LLMSOAK_RECORD_WIRE when set."""
    directory = os.environ.get("LLMSOAK_RECORD_WIRE")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / name).write_text(text)
