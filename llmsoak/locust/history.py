"""A session's conversation as the model sees it: system prompt, user and assistant turns.

Each turn appends the user's message, sends the history (or, for a pattern with
``history: false`` and for chat applications that keep it themselves, just that message),
then keeps the reply or, when the request failed, drops the message again (the person retypes
it). The oldest turns are dropped beyond the pattern's ``max_history_turns`` so a user that
runs for a week stays bounded; the system prompt is always kept.
"""

from __future__ import annotations


class ChatHistory:
    """The messages (``{"role", "content"}`` dicts) of one session, oldest first."""

    __slots__ = ("messages", "max_turns", "_system")

    def __init__(self, system_prompt: str | None, *, max_turns: int) -> None:
        self.messages: list[dict] = []
        """What the next request sends (with :meth:`to_send`)."""
        self.max_turns = max(1, max_turns)
        """Most user+assistant turn pairs kept after each turn."""
        if system_prompt:
            self.messages.append({"role": "system", "content": system_prompt})
        self._system = 1 if system_prompt else 0

    def ask(self, text: str) -> None:
        """The user's next message."""
        self.messages.append({"role": "user", "content": text})

    def to_send(self, *, whole: bool) -> list[dict]:
        """The history to send (``whole``), or only the last message."""
        return self.messages if whole else self.messages[-1:]

    def answer(self, text: str | None) -> None:
        """End the turn: keep the reply, or (``None``: the request failed) drop the question."""
        if text is None:
            self.messages.pop()
        else:
            self.messages.append({"role": "assistant", "content": text})
        keep = 2 * self.max_turns
        if len(self.messages) - self._system > keep:
            del self.messages[self._system:len(self.messages) - keep]
