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


# ---------------------------------------------------------------- the context window

def _window(tokens):
    from llmsoak.locust.context_window import ContextWindow

    return ContextWindow(tokens, "test")


def _turns(h: ChatHistory) -> list[str]:
    return [m["content"] for m in h.messages if m["role"] == "user"]


def test_the_history_is_trimmed_to_the_context_oldest_turns_first():
    # GIVEN a 400-token context, 100 chars per message, no calibration yet (2.5 chars per token)
    window = _window(400)
    h = ChatHistory("S" * 50, max_turns=1000, window=window)
    for turn in range(10):
        h.ask(f"{turn}" + "q" * 99)
        dropped = h.fit(max_tokens=100)
        assert h.estimate_tokens(h.messages) <= 400 - 100 - 8 or len(h.messages) == 2
        h.to_send(whole=True)
        h.answer("a" * 100)
    # THEN the system prompt and the newest turns stayed, the oldest went, and it was counted
    assert h.messages[0] == {"role": "system", "content": "S" * 50}
    assert _turns(h)[-1].startswith("9") and not _turns(h)[0].startswith("0")
    assert [m["role"] for m in h.messages[1:]] == ["user", "assistant"] * (len(h.messages) // 2)
    assert window.turns_dropped >= 5 and window.requests_trimmed >= 1 and dropped >= 1


def test_calibration_on_the_servers_prompt_tokens_keeps_more_history():
    # GIVEN a tokenizer that really gives 5 chars per token (the start guess is 2.5)
    def real_tokens(messages):
        return sum(len(m["content"]) for m in messages) // 5 + 6 * len(messages) + 4

    kept = {}
    for calibrate in (False, True):
        h = ChatHistory(None, max_turns=1000, window=_window(1000))
        for _turn in range(20):
            h.ask("q" * 200)
            h.fit(max_tokens=100)
            sent = h.to_send(whole=True)
            assert real_tokens(sent) + 100 <= 1000  # never past the context
            if calibrate:
                h.calibrate(real_tokens(sent))
            h.answer("a" * 200)
        kept[calibrate] = len(h.messages)
    # THEN with the server's counts the session keeps about twice the history
    assert kept[True] >= 1.6 * kept[False]


def test_no_window_or_an_unknown_size_trims_nothing_and_an_overflow_trims_harder():
    h = ChatHistory(None, max_turns=1000)
    for _ in range(50):
        h.ask("q" * 500)
        assert h.fit(max_tokens=10) == 0
        h.answer("a")
    h = ChatHistory(None, max_turns=1000, window=_window(None))
    h.ask("q" * 5000)
    assert h.fit(max_tokens=10) == 0
    h = ChatHistory(None, max_turns=1000, window=_window(1000))
    before = h.chars_per_token
    h.overflowed()
    assert h.chars_per_token == before * 0.8


def test_a_single_message_longer_than_the_context_is_still_sent():
    h = ChatHistory("sys", max_turns=1000, window=_window(100))
    h.ask("q" * 5000)
    assert h.fit(max_tokens=10) == 0 and len(h.to_send(whole=True)) == 2
