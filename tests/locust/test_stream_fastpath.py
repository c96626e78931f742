"""The streaming hot path gives the same answers as the plain one, however the bytes arrive.

SSEStream/NDJSONStream (one split per socket read) against the line-by-line reference parsers,
ContentShortcut (text of content events without building their JSON) against json.loads, and
read_stream_chunks' timing and failure classes; body_reader against a real stub over TCP.
"""

from __future__ import annotations

import json
import random

import pytest

from llmsoak.locust.clients import (
    ChatApp,
    ContentShortcut,
    OllamaChat,
    OpenAIChat,
    RequestResult,
    parse_json,
    read_stream_chunks,
)
from llmsoak.locust.streams import DONE, LineSplitter, NDJSONParser, NDJSONStream, SSEParser, SSEStream


def _reference_sse(data: bytes) -> list[bytes]:
    """Line by line through SSEParser: the behaviour before the chunk splitter existed."""
    splitter, parser, out = LineSplitter(), SSEParser(), []
    for line in splitter.feed(data):
        if (payload := parser.feed_line(line)) is not None:
            out.append(payload)
    rest = splitter.finish()
    if rest and (payload := parser.feed_line(rest)) is not None:
        out.append(payload)
    if (payload := parser.finish()) is not None:
        out.append(payload)
    return out


def _split_randomly(data: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 12))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def _feed_all(stream, chunks: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for chunk in chunks:
        out += stream.feed(chunk)
    return out + stream.finish()


SSE_SAMPLES = [
    b'data: {"a": 1}\n\ndata: {"a": 2}\n\ndata: [DONE]\n\n',
    b': keep-alive\n\nevent: message\nid: 3\ndata: {"x":\ndata: 1}\n\n\n\ndata:{"nospace": 1}\n\n',
    b'data: {"a": 1}\n\ndata: {"crlf": 2}\r\n\r\ndata: {"after": 3}\n\n',  # \r switches to line mode
    b'data: {"a": 1}\n\nretry: 10\n\ndata: {"last": true}',  # no final blank line
    b'data: {"a": 1}\n\ndata: {"last": true}\n',
    b'\n\ndata: {"lead": 1}\n\n:comment only\n\n',
]


@pytest.mark.parametrize("data", SSE_SAMPLES)
def test_sse_stream_matches_line_parser_for_any_chunking(data):
    expected = _reference_sse(data)
    assert expected  # every sample has events
    rng = random.Random(data)
    for _ in range(200):
        assert _feed_all(SSEStream(), _split_randomly(data, rng)) == expected
    assert _feed_all(SSEStream(), [data[i:i + 1] for i in range(len(data))]) == expected


def test_ndjson_stream_matches_line_parser_for_any_chunking():
    data = b'{"a": 1}\n\n  {"b": 2}  \r\n{"c": 3}\n{"tail": 4}'
    parser = NDJSONParser()
    expected = [p for line in data.split(b"\n") if (p := parser.feed_line(line)) is not None]
    rng = random.Random(5)
    for _ in range(200):
        assert _feed_all(NDJSONStream(), _split_randomly(data, rng)) == expected


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


def _sse(*events: bytes) -> bytes:
    return b"".join(b"data: " + e + b"\n\n" for e in events)


def _usage_event(n: int) -> bytes:
    return json.dumps({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": n}}).encode()


def _reader(chunks: list[bytes], error: BaseException | None = None):
    chunks = list(chunks)

    def read_chunk() -> bytes:
        if chunks:
            return chunks.pop(0)
        if error is not None:
            raise error
        return b""
    return read_chunk


def test_events_in_one_read_share_its_timestamp():
    texts = [f" t{i}" for i in range(6)]
    body = _sse(*(_openai_event(t) for t in texts), _usage_event(6), b"[DONE]")
    r = read_stream_chunks(_reader([body]), OpenAIChat(), RequestResult(status=200), 0.0)
    assert r.ok and r.text == "".join(texts) and r.output_tokens == 6 and r.content_chunks == 6
    assert r.itl_ms == [0.0] * 5  # all in one TCP read: no gap the client could see
    per_event = [_sse(_openai_event(t)) for t in texts] + [_sse(_usage_event(6), b"[DONE]")]
    r = read_stream_chunks(_reader(per_event), OpenAIChat(), RequestResult(status=200), 0.0)
    assert r.ok and len(r.itl_ms) == 5 and all(v > 0 for v in r.itl_ms)


@pytest.mark.parametrize("bad", [b'{"choices":[{"index":0,"delta":{"content":"\\u00', b"{not json", b'"just a string"'])
def test_a_malformed_event_among_shortcut_events_is_detected(bad):
    events = [_openai_event(f" t{i}") for i in range(5)]
    events.insert(3, bad)
    body = _sse(*events, _usage_event(5), b"[DONE]")
    rng = random.Random(bad)
    for chunks in ([body], _split_randomly(body, rng), _split_randomly(body, rng)):
        r = read_stream_chunks(_reader(chunks), OpenAIChat(), RequestResult(status=200), 0.0)
        assert r.failure_class == "malformed", chunks


def test_ndjson_stream_through_the_chunk_reader():
    lines = [{"model": "m", "created_at": f"2025-01-01T00:00:0{i}Z", "message": {"role": "assistant", "content": c},
              "done": False} for i, c in enumerate(["a", "b", "c"])]
    lines.append({"model": "m", "message": {"content": ""}, "done": True, "eval_count": 3, "prompt_eval_count": 2})
    body = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    r = read_stream_chunks(_reader(_split_randomly(body, random.Random(1))), OllamaChat(),
                           RequestResult(status=200), 0.0)
    assert r.ok and r.text == "abc" and (r.input_tokens, r.output_tokens) == (2, 3)


def test_cut_off_and_reset_streams():
    body = _sse(_openai_event(" a"), _openai_event(" b"))
    r = read_stream_chunks(_reader([body]), OpenAIChat(), RequestResult(status=200), 0.0)
    assert r.failure_class == "disconnect"  # no [DONE]
    r = read_stream_chunks(_reader([body], ConnectionResetError(104, "reset")), OpenAIChat(),
                           RequestResult(status=200), 0.0)
    assert r.failure_class == "disconnect"
    r = read_stream_chunks(_reader([_sse(b"[DONE]")]), OpenAIChat(), RequestResult(status=200), 0.0)
    assert r.failure_class == "empty"
    assert DONE == b"[DONE]"


def _post_stream(url: str, max_tokens: int, client=None, network_timeout: float = 10):
    from geventhttpclient import URL, HTTPClient

    u = URL(url)
    client = client or HTTPClient(u.host, u.port, network_timeout=network_timeout, connection_timeout=5)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True,
                       "max_tokens": max_tokens, "stream_options": {"include_usage": True}})
    resp = client.request("POST", "/v1/chat/completions", body=body,
                          headers={"Content-Type": "application/json", "Accept-Encoding": "identity"})
    return client, resp


def test_body_reader_against_the_stub_over_tcp(start_stub):
    from llmsoak.locust.users import body_reader

    stub = start_stub("--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "40")
    client, resp = _post_stream(stub.url, 40)
    try:
        assert resp.status_code == 200 and resp.get("transfer-encoding") == "chunked"
        r = read_stream_chunks(body_reader(resp), OpenAIChat(), RequestResult(status=200), 0.0)
        assert r.ok and r.output_tokens == 40 and r.content_chunks == 40 and len(r.itl_ms) == 39
        assert any(v > 0.5 for v in r.itl_ms)  # 1 ms apart on the wire: real gaps, not one batch
    finally:
        client.close()


@pytest.mark.parametrize("fault,cls", [("reset_mid_stream", "disconnect"), ("malformed_chunk", "malformed"),
                                       ("empty_response", "empty")])
def test_body_reader_classifies_stub_faults(start_stub, fault, cls):
    from llmsoak.locust.users import body_reader

    stub = start_stub("--ttft-ms", "1", "--itl-ms", "0", "--fault", f"{fault}=1.0")
    client, resp = _post_stream(stub.url, 30)
    try:
        r = read_stream_chunks(body_reader(resp), OpenAIChat(), RequestResult(status=200), 0.0)
        assert r.failure_class == cls, r.failure_message
    finally:
        client.close()


def test_a_stalled_stream_times_out_and_its_connection_is_not_reused(start_stub):
    import urllib.request

    from llmsoak.locust.users import body_reader

    stub = start_stub("--ttft-ms", "1", "--itl-ms", "0", "--fault", "stall=1.0", "--stall-s", "30")
    client, resp = _post_stream(stub.url, 20, network_timeout=1.0)
    try:
        r = read_stream_chunks(body_reader(resp), OpenAIChat(), RequestResult(status=200), 0.0)
        assert r.failure_class == "timeout", r.failure_message
        faults_off = urllib.request.Request(stub.url + "/_stub/faults", data=b"{}", method="POST",
                                            headers={"Content-Type": "application/json"})
        urllib.request.urlopen(faults_off, timeout=5).close()
        # Same client, one connection slot: were the stalled socket back in the pool, this
        # request would go to the stalled response's connection and time out too.
        _, resp = _post_stream(stub.url, 20, client=client)
        r = read_stream_chunks(body_reader(resp), OpenAIChat(), RequestResult(status=200), 0.0)
        assert r.ok and r.output_tokens == 20
    finally:
        client.close()
