"""A session's conversation as the model sees it: system prompt, user and assistant turns.

Each turn appends the user's message, sends the history (or, for a pattern with
``history: false`` and for chat applications that keep it themselves, just that message),
then keeps the reply or, when the request failed, drops the message again (the person retypes
it). The oldest turns are dropped beyond the pattern's ``max_history_turns`` so a user that
runs for a week stays bounded; the system prompt is always kept.

With a known context window (llmsoak.locust.context_window) the history is also kept inside the
model's context, as chat front-ends do: before each turn (:meth:`ChatHistory.fit`) the oldest
turns are dropped until the estimated prompt plus ``max_tokens`` fits. The estimate is the
characters sent divided by a characters-per-token ratio calibrated on the server's own
``usage.prompt_tokens`` of this session's earlier turns (:meth:`ChatHistory.calibrate`), plus a
few tokens per message for the chat template's role markers.
"""

from __future__ import annotations

OVERHEAD_TOKENS_PER_MESSAGE = 6
"""Tokens a chat template adds per message (ChatML: ``<|im_start|>role\\n`` … ``<|im_end|>\\n``)."""
OVERHEAD_TOKENS = 4
"""Tokens added once per prompt (the assistant turn's opening)."""
START_CHARS_PER_TOKEN = 2.5
"""Characters per token assumed before the server reported any usage (low: trims early rather
than overflowing; English under a real tokenizer is about 4)."""
SAFETY = 0.9
"""The calibrated ratio is used times this (prompts differ from turn to turn)."""
OVERFLOW_PENALTY = 0.8
"""After a context-overflow failure the ratio is multiplied by this: trim harder."""


class ChatHistory:
    """The messages (``{"role", "content"}`` dicts) of one session, oldest first."""

    __slots__ = ("messages", "max_turns", "_system", "window", "_chars", "_tokens", "_penalty",
                 "_sent_chars", "_sent_messages")

    def __init__(self, system_prompt: str | None, *, max_turns: int, window=None) -> None:
        self.messages: list[dict] = []
        """What the next request sends (with :meth:`to_send`)."""
        self.max_turns = max(1, max_turns)
        """Most user+assistant turn pairs kept after each turn."""
        self.window = window
        """llmsoak.locust.context_window.ContextWindow, or None (no context trimming)."""
        if system_prompt:
            self.messages.append({"role": "system", "content": system_prompt})
        self._system = 1 if system_prompt else 0
        self._chars = 0
        """Characters of the prompts whose token count the server reported (calibration)."""
        self._tokens = 0.0
        """Their reported tokens, less the template's per-message overhead."""
        self._penalty = 1.0
        self._sent_chars = 0
        self._sent_messages = 0

    def ask(self, text: str) -> None:
        """The user's next message."""
        self.messages.append({"role": "user", "content": text})

    def to_send(self, *, whole: bool) -> list[dict]:
        """The history to send (``whole``), or only the last message."""
        out = self.messages if whole else self.messages[-1:]
        self._sent_chars = sum(len(m["content"]) for m in out)
        self._sent_messages = len(out)
        return out

    @property
    def chars_per_token(self) -> float:
        """The ratio the estimate uses now (calibrated, with the safety factor and penalties)."""
        ratio = self._chars / self._tokens if self._tokens > 0 else START_CHARS_PER_TOKEN
        return ratio * SAFETY * self._penalty

    def estimate_tokens(self, messages: list[dict]) -> int:
        """Estimated prompt tokens of ``messages``."""
        chars = sum(len(m["content"]) for m in messages)
        return int(chars / self.chars_per_token) + OVERHEAD_TOKENS_PER_MESSAGE * len(messages) + OVERHEAD_TOKENS

    def fit(self, max_tokens: int) -> int:
        """Drop the oldest user+assistant turns until the prompt plus ``max_tokens`` fits the
        context window (never the system prompt or the new message); the number dropped."""
        window = self.window
        if window is None or not window.tokens:
            return 0
        context = window.tokens
        margin = max(8, context // 50)
        budget = max(context - max_tokens - margin, context // 4)
        dropped = 0
        while len(self.messages) - self._system > 1 and self.estimate_tokens(self.messages) > budget:
            del self.messages[self._system:self._system + 2]  # a user message and its reply
            dropped += 1
        if dropped:
            window.turns_dropped += dropped
            window.requests_trimmed += 1
        return dropped

    def calibrate(self, prompt_tokens: int | None) -> None:
        """Learn characters per token from the server's count of the prompt last sent."""
        if not prompt_tokens or not self._sent_messages:
            return
        tokens = prompt_tokens - OVERHEAD_TOKENS_PER_MESSAGE * self._sent_messages - OVERHEAD_TOKENS
        if tokens <= 0 or not 0.5 <= self._sent_chars / tokens <= 20:  # cached prefix, odd server: ignore
            return
        self._chars += self._sent_chars
        self._tokens += tokens

    def overflowed(self) -> None:
        """The last prompt did not fit although the estimate said it would: trim harder."""
        self._penalty *= OVERFLOW_PENALTY

    def answer(self, text: str | None) -> None:
        """End the turn: keep the reply, or (``None``: the request failed) drop the question."""
        if text is None:
            self.messages.pop()
        else:
            self.messages.append({"role": "assistant", "content": text})
        keep = 2 * self.max_turns
        if len(self.messages) - self._system > keep:
            del self.messages[self._system:len(self.messages) - keep]
