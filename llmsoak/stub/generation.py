"""What the stub "generates": token text, prompt token counts, and the timing of each token.

Latency model (all times in seconds internally, knobs in milliseconds):

* time to first token  = ttft_ms + prefill_ms_per_1k_tokens × prompt_tokens / 1000
  (counted from the moment the request is admitted, so queueing adds on top);
* each following token = itl_ms × slowdown × (1 ± jitter), where
  slowdown = 1 + itl_slowdown × (active_requests − 1) / max_concurrency,
  evaluated per token, so a lone request streams at exactly itl_ms on average and a full
  server streams ``1 + itl_slowdown`` times slower, like a batching engine.

Token *deadlines* are absolute (first token at admission + TTFT, each next one an ITL later), so
a late wake-up never accumulates: tokens already due are sent together in one write.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from llmsoak.stub.config import StubConfig

_WORDS = (
    "the model answers every question with care and a steady stream of tokens while the "
    "server keeps its memory in check under load soak tests run for a week to find slow "
    "leaks latency drift and queueing effects that short benchmarks never see a request "
    "waits in the queue then the prefill reads the prompt and the decoder writes one token "
    "after another until it reaches the limit or decides to stop here is some more text "
    "about caches batches schedulers kernels threads sockets buffers pages and bytes"
).split()

TOKEN_RING_SIZE = 8192
"""Length of the pre-generated token sequence requests take their text from."""


def count_tokens(text: str) -> int:
    """Approximate token count of ``text``: one token per 4 characters, rounded up."""
    return (len(text) + 3) // 4


class TokenSource:
    """Pre-generated JSON-safe tokens (no quotes, backslashes or control characters).

    Each request takes a slice of a seeded ring, so producing n tokens costs one list slice.
    """

    def __init__(self, seed: int | None) -> None:
        rng = random.Random(seed)
        tokens = []
        for i in range(TOKEN_RING_SIZE):
            word = rng.choice(_WORDS)
            mark = rng.random()
            if mark < 0.06:
                word += "."
            elif mark < 0.10:
                word += ","
            tokens.append(word if i == 0 else " " + word)
        self._ring = tokens + tokens

    def take(self, n: int, rng: random.Random) -> list[str]:
        """``n`` tokens of text starting at a random point of the ring."""
        if n <= 0:
            return []
        if n > TOKEN_RING_SIZE:
            return (self._ring[:TOKEN_RING_SIZE] * (n // TOKEN_RING_SIZE + 1))[:n]
        start = rng.randrange(TOKEN_RING_SIZE)
        return self._ring[start:start + n]


@dataclass(frozen=True)
class Pacing:
    """The latency knobs (milliseconds) and the concurrency slowdown factor; defaults are
    StubConfig's, so the stub's defaults live in one place."""

    ttft_ms: float = StubConfig.ttft_ms
    prefill_ms_per_1k_tokens: float = StubConfig.prefill_ms_per_1k_tokens
    itl_ms: float = StubConfig.itl_ms
    jitter_frac: float = StubConfig.itl_jitter_frac
    """Uniform relative jitter on each inter-token gap (0.03 = ±3 %)."""
    itl_slowdown: float = StubConfig.itl_slowdown
    """Extra ITL fraction at full concurrency (0.5 → 1.5 × itl_ms when all slots are busy)."""
    max_concurrency: int = StubConfig.max_concurrency

    @classmethod
    def from_config(cls, config: StubConfig) -> Pacing:
        return cls(ttft_ms=config.ttft_ms, prefill_ms_per_1k_tokens=config.prefill_ms_per_1k_tokens,
                   itl_ms=config.itl_ms, jitter_frac=config.itl_jitter_frac,
                   itl_slowdown=config.itl_slowdown, max_concurrency=config.max_concurrency)

    def ttft_s(self, prompt_tokens: int) -> float:
        """Seconds from admission to the first token for a prompt of ``prompt_tokens``."""
        return (self.ttft_ms + self.prefill_ms_per_1k_tokens * prompt_tokens / 1000.0) / 1000.0

    def itl_s(self, active: int, rng: random.Random) -> float:
        """Seconds until the next token while ``active`` requests are being served."""
        if self.itl_ms <= 0:
            return 0.0
        slowdown = 1.0 + self.itl_slowdown * max(0, active - 1) / self.max_concurrency
        jitter = 1.0 + self.jitter_frac * (2.0 * rng.random() - 1.0) if self.jitter_frac else 1.0
        return self.itl_ms * slowdown * jitter / 1000.0


def plan_output_tokens(requested: int | None, cap: int) -> tuple[int, str]:
    """(tokens to generate, finish_reason) for a request asking for ``requested`` tokens.

    A request that sets a limit at or below the cap gets exactly that many tokens and
    finish_reason "length"; without a limit (or above the cap) the stub "decides to stop" after
    ``cap`` tokens: finish_reason "stop".
    """
    if requested is not None and requested <= cap:
        return max(0, requested), "length"
    return cap, "stop"
