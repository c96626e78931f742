"""The JSON shortcuts (llmsoak.locust.fast_json) answer exactly as json.loads, or step aside.

ContentShortcut (text of content events without building their JSON) against json.loads and
the flavour's own decoder; *malformed* stays exactly what json.loads rejects.
"""

from __future__ import annotations

import json

import pytest

from llmsoak.locust.apis import ChatApp, OpenAIChat
from llmsoak.locust.fast_json import ContentShortcut, parse_json
from llmsoak.locust.results import RequestResult


def _openai_event(content, *, id_="chatcmpl-7") -> bytes:
    return json.dumps({"id": id_, "object": "chat.completion.chunk", "model": "m",
                       "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]},
                      separators=(",", ":"), ensure_ascii=False).encode()


TRICKY_TEXTS = [" word", 'quote " inside', "back\\slash", "new\nline", "tab\t", "é ünïcode", "emoji 🙂",
                "\u2028", "</script>", "a"]


def test_shortcut_reads_the_same_text_as_the_full_parse():
    flavour, shortcut = OpenAIChat(), ContentShortcut()
    shortcut.learn(_openai_event(" first"), " first", flavour)
    assert shortcut.prefix is not None
    for text in TRICKY_TEXTS:
        for ensure_ascii in (True, False):
            event = json.dumps(json.loads(_openai_event(text)), separators=(",", ":"),
                               ensure_ascii=ensure_ascii).encode()
            expected = flavour.decode_event(json.loads(event), RequestResult())
            assert shortcut.text(event) == expected == text


@pytest.mark.parametrize("event", [
    _openai_event("x")[:-3],                                   # truncated
    _openai_event("x").replace(b'"x"', b'"\\u00"'),            # bad escape (the stub's malformed_chunk)
    _openai_event("x").replace(b'"x"', b'"a"b"'),              # two tokens where one string was
    _openai_event("x").replace(b'"x"', b'"a\x01"'),            # raw control character
    _openai_event("x").replace(b'"x"', b'"\xff"'),             # not UTF-8
    _openai_event("x").replace(b'"x"', b'"unterminated'),
])
def test_shortcut_refuses_what_is_not_one_valid_string_and_the_full_path_calls_it_malformed(event):
    flavour, shortcut = OpenAIChat(), ContentShortcut()
    shortcut.learn(_openai_event(" first"), " first", flavour)
    assert shortcut.text(event) is None
    with pytest.raises(ValueError):
        json.loads(event)
    with pytest.raises(ValueError):
        parse_json(event)


def test_shortcut_leaves_a_different_valid_document_to_the_full_path():
    flavour, shortcut = OpenAIChat(), ContentShortcut()
    shortcut.learn(_openai_event(" first"), " first", flavour)
    event = _openai_event("x").replace(b'"x"', b'"a","extra":"b"')
    assert shortcut.text(event) is None
    assert flavour.decode_event(parse_json(event), RequestResult()) == "a"


def test_shortcut_is_not_learned_from_an_ambiguous_event():
    # The text also appears as the id: no unique position, so no template.
    shortcut = ContentShortcut()
    shortcut.learn(_openai_event("chatcmpl-7"), "chatcmpl-7", OpenAIChat())
    assert shortcut.prefix is None
    # A duplicate key: the first "content" is not the one the flavour reads, the probe catches it.
    event = b'{"choices":[{"delta":{"content":"a","content":"b"}}]}'
    shortcut.learn(event, "b", OpenAIChat())
    assert shortcut.prefix is None or shortcut.text(event.replace(b'"a"', b'"z"')) is None
    # An event that also records something (done + usage) is never a template.
    chat = ChatApp(stream_mode="sse", delta_path="delta")
    done = b'{"done":true,"delta":"x","usage":{"completion_tokens":1}}'
    shortcut = ContentShortcut()
    shortcut.learn(done, "x", chat)
    assert shortcut.prefix is None


def test_empty_text_takes_the_full_path():
    # content "" falls back to reasoning_content in OpenAIChat.decode_event; the shortcut must not say "".
    shortcut = ContentShortcut()
    template = b'{"choices":[{"delta":{"content":"a","reasoning_content":"r"}}]}'
    shortcut.learn(template, "a", OpenAIChat())
    event = template.replace(b'"a"', b'""')
    assert shortcut.text(event) is None
    assert OpenAIChat().decode_event(json.loads(event), RequestResult()) == "r"



@pytest.mark.parametrize("payload", [b'{"a": 1}', b' {"a": 1} ', b'[1, 2]', b'"s"', b"3", b"null",
                                     '{"é": "ü"}'.encode(), '{"a": "x"}'.encode("utf-16")])
def test_parse_json_returns_what_json_loads_returns(payload):
    assert parse_json(payload) == json.loads(payload)


@pytest.mark.parametrize("payload", [b"", b"{", b'{"a": 1} x', b'{"a": 1}{"b": 2}', b"\xff", b"nan", b"[1,]"])
def test_parse_json_rejects_what_json_loads_rejects(payload):
    with pytest.raises(ValueError):
        json.loads(payload)
    with pytest.raises(ValueError):
        parse_json(payload)
