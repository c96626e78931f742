"""Prompt sources: built-in corpus, JSONL and ShareGPT files, corrupt files, length targeting."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from llmsoak.profile import ProfileError
from llmsoak.prompts import (
    Conversation,
    PromptSource,
    estimate_tokens,
    load_builtin,
    load_jsonl,
    load_prompt_source,
    load_sharegpt,
)


def test_builtin_corpus_ranges_from_one_liners_to_documents_with_follow_ups() -> None:
    convs = load_builtin()
    assert len(convs) >= 60
    lengths = sorted(c.opening_tokens for c in convs)
    assert lengths[0] <= 15 and lengths[-1] >= 300
    assert sum(1 for n in lengths if n >= 200) >= 10  # documents to summarise
    assert all(2 <= len(c.follow_ups) <= 5 for c in convs)
    assert len({c.opening for c in convs}) == len(convs)
    assert all(c.origin.startswith("builtin:") for c in convs)


def test_message_continues_past_written_follow_ups() -> None:
    conv = Conversation("open", ("one", "two"), generic_follow_ups=("g1", "g2"))
    assert [conv.message(i) for i in range(6)] == ["open", "one", "two", "g1", "g2", "g1"]


def test_jsonl_both_line_forms(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "Hello?", "follow_ups": ["More?"]}\n\n'
                    '{"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "Q1"},'
                    ' {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"}]}\n')
    convs = load_jsonl(path)
    assert [(c.opening, c.follow_ups) for c in convs] == [("Hello?", ("More?",)), ("Q1", ("Q2",))]
    assert convs[1].origin == "p.jsonl:3"


@pytest.mark.parametrize(("text", "expected"), [
    ('{"prompt": "ok"}\n{"prompt": "broken\n', ":2: not valid JSON"),
    ('{"prompt": "ok"}\n[1, 2]\n', ":2: expected an object"),
    ('{"text": "hi"}\n', ':1: expected a "prompt" or "messages" field (got text)'),
    ('{"prompt": ""}\n', ":1: prompt: expected a non-empty string"),
    ('{"messages": [{"role": "assistant", "content": "x"}]}\n', ':1: messages: no message with role "user"'),
    ("\n\n", ": no prompts in file"),
    (b"\xff\xfe{", ": not UTF-8 text"),
])
def test_corrupt_jsonl_names_file_and_line(tmp_path: Path, text, expected: str) -> None:
    path = tmp_path / "bad.jsonl"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(ProfileError) as info:
        load_jsonl(path)
    assert str(info.value).startswith(f"{path}{expected}"), str(info.value)


def test_sharegpt_human_turns(tmp_path: Path) -> None:
    path = tmp_path / "sg.json"
    path.write_text(json.dumps([
        {"id": "a1", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"},
                                       {"from": "human", "value": "Tell me more"}]},
        {"id": "a2", "conversations": [{"from": "gpt", "value": "orphan reply"}]},  # skipped
    ]))
    convs = load_sharegpt(path)
    assert [(c.opening, c.follow_ups, c.origin) for c in convs] == [("Hi", ("Tell me more",), "sg.json#a1")]


@pytest.mark.parametrize(("text", "expected"), [
    ('[{"conversations": []},\n {"conversations": [}]', ":2: not valid JSON"),
    ('{"conversations": []}', ": expected a JSON list"),
    ('[{"conversations": [{"from": "human"}]}]', ": item [0].conversations[0]: expected"),
    ('[{"dialog": []}]', ": item [0]: expected"),
    ('[{"conversations": [{"from": "gpt", "value": "x"}]}]', ": no conversation with a human turn"),
])
def test_corrupt_sharegpt_names_file_and_place(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ProfileError) as info:
        load_sharegpt(path)
    assert str(info.value).startswith(f"{path}{expected}"), str(info.value)


def test_missing_prompt_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="no such prompt file"):
        load_jsonl(tmp_path / "gone.jsonl")


def test_length_targeting_picks_near_and_pads_long() -> None:
    source = load_prompt_source("builtin")
    rng = random.Random(3)
    for target in (10, 50, 300):
        got = [source.next_conversation(rng, target).opening_tokens for _ in range(50)]
        ratio = sorted(got)[len(got) // 2] / target
        assert 0.3 <= ratio <= 3, (target, ratio)
    for target in (2000, 8000):
        conv = source.next_conversation(rng, target)
        assert conv.origin.endswith("+padded")
        assert abs(estimate_tokens(conv.opening) - target) <= 0.05 * target
        assert conv.follow_ups  # padding keeps the conversation's follow-up turns


def test_selection_is_reproducible_with_a_seed() -> None:
    source = load_prompt_source("builtin")
    a = [source.next_conversation(random.Random(9)).origin for _ in range(5)]
    b = [source.next_conversation(random.Random(9)).origin for _ in range(5)]
    assert a == b


def test_padding_is_bounded() -> None:
    source = PromptSource([Conversation("tiny")])
    conv = source.next_conversation(random.Random(0), 10**9)
    assert len(conv.opening) <= 131072 * 4 + 100
