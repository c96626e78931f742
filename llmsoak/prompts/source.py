"""Conversations to send, and how a prompt is picked or padded toward a target length in tokens.

Token counts here are estimates (about 4 characters per token, the usual rule of thumb for
English with BPE tokenizers); the server's reported usage is what the metrics record.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

CHARS_PER_TOKEN = 4.0
MAX_PROMPT_TOKENS = 131072
"""Upper bound on padded prompt length, so a bad distribution cannot build gigabyte strings."""

DEFAULT_FOLLOW_UPS = (
    "Can you go into more detail on that?",
    "Could you give me a concrete example?",
    "Summarise that in one sentence.",
    "What would you recommend as a next step?",
)


def estimate_tokens(text: str) -> int:
    """Rough token count of ``text`` (characters / 4, at least 1)."""
    return max(1, round(len(text) / CHARS_PER_TOKEN))


@dataclass(frozen=True)
class Conversation:
    """One session's user messages: ``opening`` then ``follow_ups`` (the assistant side comes live).

    ``origin`` says where it came from (``builtin:short-03``, ``prompts.jsonl:12``).
    """

    opening: str
    follow_ups: tuple[str, ...] = ()
    origin: str = ""
    generic_follow_ups: tuple[str, ...] = DEFAULT_FOLLOW_UPS

    def message(self, turn: int) -> str:
        """The user message for ``turn`` (0 = opening). Past the written follow-ups, generic
        follow-ups ("Can you give an example?") keep a long session going."""
        if turn <= 0:
            return self.opening
        if turn <= len(self.follow_ups):
            return self.follow_ups[turn - 1]
        generic = self.generic_follow_ups or DEFAULT_FOLLOW_UPS
        return generic[(turn - len(self.follow_ups) - 1) % len(generic)]

    @property
    def opening_tokens(self) -> int:
        return estimate_tokens(self.opening)


class PromptSource:
    """A fixed pool of conversations; picks one per session, near a target prompt length.

    Thread/greenlet safe for reading: nothing mutates after construction. Randomness comes
    from the caller's ``rng`` so each user can have its own seeded generator.
    """

    def __init__(self, conversations: Sequence[Conversation], name: str = "prompts",
                 system_prompt: str | None = None) -> None:
        if not conversations:
            raise ValueError(f"{name}: no conversations")
        self.name = name
        self.system_prompt = system_prompt
        self._by_length = sorted(conversations, key=lambda c: c.opening_tokens)
        self._lengths = [c.opening_tokens for c in self._by_length]
        # Long texts used as padding material, longest first.
        self._padding = [c.opening for c in sorted(conversations, key=lambda c: -c.opening_tokens)[:16]]

    def __len__(self) -> int:
        return len(self._by_length)

    @property
    def conversations(self) -> tuple[Conversation, ...]:
        return tuple(self._by_length)

    def next_conversation(self, rng: random.Random, target_tokens: int | None = None) -> Conversation:
        """A conversation for a new session.

        Without ``target_tokens``: uniformly at random. With it: one of the few conversations
        whose opening is nearest that length; when even the longest is much shorter, the
        opening is padded with background material up to about ``target_tokens``.
        """
        if target_tokens is None:
            return rng.choice(self._by_length)
        target = max(1, min(int(target_tokens), MAX_PROMPT_TOKENS))
        i = bisect.bisect_left(self._lengths, target)
        window = self._by_length[max(0, i - 3):i + 3]
        # The three nearest in ratio, so 100 prefers 70 over 250, and picks vary between sessions.
        window.sort(key=lambda c: abs(math.log(c.opening_tokens / target)))
        chosen = rng.choice(window[:3])
        if chosen.opening_tokens * 1.5 < target:
            return Conversation(self.pad(chosen.opening, target, rng), chosen.follow_ups,
                                chosen.origin + "+padded", chosen.generic_follow_ups)
        return chosen

    def pad(self, prompt: str, target_tokens: int, rng: random.Random) -> str:
        """``prompt`` preceded by background documents so the whole is about ``target_tokens``."""
        target_chars = int(min(target_tokens, MAX_PROMPT_TOKENS) * CHARS_PER_TOKEN)
        budget = target_chars - len(prompt) - 60
        if budget <= 0:
            return prompt
        parts: list[str] = []
        used = 0
        start = rng.randrange(len(self._padding))
        k = 0
        while used < budget:  # bounded: each pass adds at least one non-empty text
            text = self._padding[(start + k) % len(self._padding)]
            k += 1
            take = text[: budget - used]
            parts.append(take)
            used += len(take) + 2
        background = "\n\n".join(parts)
        return f"Background material:\n\n{background}\n\nWith that in mind:\n\n{prompt}"
