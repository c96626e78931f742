"""A session's conversation (llmsoak.locust.history): what is sent, kept, dropped and trimmed."""

from __future__ import annotations

from llmsoak.locust.history import ChatHistory


def _roles(history: ChatHistory) -> list[str]:
    return [m["role"] for m in history.messages]


def test_each_turn_sends_the_history_and_keeps_the_reply():
    h = ChatHistory("be brief", max_turns=10)
    h.ask("hi")
    assert h.to_send(whole=True) == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert h.to_send(whole=False) == [{"role": "user", "content": "hi"}]
    h.answer("hello")
    assert _roles(h) == ["system", "user", "assistant"]


def test_a_failed_turn_drops_the_question():
    h = ChatHistory(None, max_turns=10)
    h.ask("one")
    h.answer("reply")
    h.ask("two")
    h.answer(None)
    assert [m["content"] for m in h.messages] == ["one", "reply"]


def test_the_oldest_turns_go_beyond_max_turns_and_the_system_prompt_stays():
    h = ChatHistory("sys", max_turns=2)
    for i in range(5):
        h.ask(f"q{i}")
        h.answer(f"a{i}")
    assert [m["content"] for m in h.messages] == ["sys", "q3", "a3", "q4", "a4"]
    bare = ChatHistory(None, max_turns=0)  # at least one turn is kept
    for i in range(3):
        bare.ask(f"q{i}")
        bare.answer(f"a{i}")
    assert [m["content"] for m in bare.messages] == ["q2", "a2"]
