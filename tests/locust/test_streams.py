"""SSE and NDJSON splitting (llmsoak.locust.streams), fed bytes as a server would send them.

The line parsers follow the WHATWG event-stream rules; the chunk splitters (one split per socket
read) give the same payloads as the line parsers however the bytes are cut.
"""

from __future__ import annotations

import random

import pytest

from llmsoak.locust.streams import (
    DONE,
    LineSplitter,
    NDJSONParser,
    NDJSONStream,
    SSEParser,
    SSEStream,
    parse_ndjson,
    parse_sse,
)


def test_sse_joins_multiline_data_and_skips_comments_and_fields():
    stream = b": keep-alive\nevent: message\nid: 7\ndata: {\"a\":\ndata: 1}\n\ndata:[DONE]\n\n"
    assert parse_sse([stream]) == [b'{"a":\n1}', DONE]


def test_sse_split_at_every_byte_gives_the_same_events():
    stream = b'data: {"x": 1}\r\n\r\ndata: {"x": 2}\n\n: c\n\ndata: [DONE]\n\n'
    whole = parse_sse([stream])
    bytewise = parse_sse([stream[i:i + 1] for i in range(len(stream))])
    assert whole == bytewise == [b'{"x": 1}', b'{"x": 2}', DONE]


def test_sse_trailing_event_without_blank_line_is_delivered():
    assert parse_sse([b'data: {"last": true}']) == [b'{"last": true}']


def test_sse_parser_returns_payload_only_on_blank_line():
    parser = SSEParser()
    assert parser.feed_line(b"data: one\n") is None
    assert parser.feed_line(b"\n") == b"one"
    assert parser.feed_line(b"\n") is None  # blank line without data dispatches nothing


def test_ndjson_lines_and_blank_lines():
    assert parse_ndjson([b'{"a":1}\n\n{"b"', b':2}\n{"c":3}']) == [b'{"a":1}', b'{"b":2}', b'{"c":3}']
    assert NDJSONParser().feed_line(b"  \n") is None


def test_line_splitter_keeps_partial_line():
    s = LineSplitter()
    assert s.feed(b"ab") == []
    assert s.feed(b"c\nd") == [b"abc\n"]
    assert s.finish() == b"d"


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
