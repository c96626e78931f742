"""The stub's wire formats (OpenAI, Ollama, chat app) and its answers to bad input.

GIVEN a real ``llmsoak stub`` process on 127.0.0.1 (port 0), WHEN a real HTTP client talks to it,
THEN the bytes on the wire look like the real APIs'.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from urllib.parse import urlsplit

import pytest


def _conn(url: str, timeout: float = 10.0) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)


def call(url: str, method: str, path: str, body: object = None, raw: bytes | None = None):
    """One request; returns (status, headers dict, body bytes)."""
    conn = _conn(url)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload


def stream_lines(url: str, path: str, body: object) -> tuple[int, list[str]]:
    """POST and read the streamed body line by line; returns (status, non-empty lines)."""
    conn = _conn(url)
    conn.request("POST", path, body=json.dumps(body).encode(),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    lines = []
    while True:
        line = resp.readline()
        if not line:
            break
        if line.strip():
            lines.append(line.decode().rstrip("\n"))
    conn.close()
    return resp.status, lines


def sse_objects(lines: list[str]) -> tuple[list[dict], bool]:
    """Parsed ``data:`` JSON events and whether ``data: [DONE]`` ended the stream."""
    assert all(line.startswith("data: ") for line in lines), lines
    done = lines[-1] == "data: [DONE]"
    return [json.loads(line[6:]) for line in lines if line != "data: [DONE]"], done


MESSAGES = [{"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Tell me about soak tests, please."}]
PROMPT_TOKENS = (len("You are terse.") + 3) // 4 + (len("Tell me about soak tests, please.") + 3) // 4


@pytest.fixture
def fast_stub(start_stub):
    return start_stub("--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "20", "--model", "stub-m")


def test_openai_chat_stream_has_real_chunk_shapes_and_usage(fast_stub):
    status, lines = stream_lines(fast_stub.url, "/v1/chat/completions", {
        "model": "gpt-test", "messages": MESSAGES, "stream": True, "max_tokens": 7,
        "stream_options": {"include_usage": True}})
    assert status == 200
    events, done = sse_objects(lines)
    assert done
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    content = [e for e in events if e["choices"] and e["choices"][0]["delta"].get("content")]
    assert len(content) == 7
    for e in events:
        assert e["object"] == "chat.completion.chunk"
        assert e["model"] == "gpt-test"
        assert e["id"] == events[0]["id"] and e["id"].startswith("chatcmpl-")
        assert isinstance(e["created"], int)
    finals = [e for e in events if e["choices"] and e["choices"][0]["finish_reason"]]
    assert [f["choices"][0]["finish_reason"] for f in finals] == ["length"]
    assert events[-1]["choices"] == []
    assert events[-1]["usage"] == {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": 7,
                                   "total_tokens": PROMPT_TOKENS + 7}


def test_openai_chat_without_limit_stops_at_cap_and_non_stream_has_usage(fast_stub):
    status, lines = stream_lines(fast_stub.url, "/v1/chat/completions",
                                 {"messages": MESSAGES, "stream": True})
    events, done = sse_objects(lines)
    assert done and all("usage" not in e for e in events)
    assert sum(1 for e in events if e["choices"][0]["delta"].get("content")) == 20
    assert events[-1]["choices"][0]["finish_reason"] == "stop"

    status, _, body = call(fast_stub.url, "POST", "/v1/chat/completions",
                           {"messages": MESSAGES, "max_completion_tokens": 5})
    obj = json.loads(body)
    assert status == 200 and obj["object"] == "chat.completion" and obj["model"] == "stub-m"
    assert obj["choices"][0]["message"]["role"] == "assistant"
    assert obj["choices"][0]["message"]["content"].strip()
    assert obj["choices"][0]["finish_reason"] == "length"
    assert obj["usage"] == {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": 5,
                            "total_tokens": PROMPT_TOKENS + 5}


def test_openai_completions_stream_and_body(fast_stub):
    status, lines = stream_lines(fast_stub.url, "/v1/completions",
                                 {"prompt": "abcdefgh", "max_tokens": 4, "stream": True})
    events, done = sse_objects(lines)
    assert status == 200 and done
    assert all(e["object"] == "text_completion" for e in events)
    assert sum(1 for e in events if e["choices"][0]["text"]) == 4
    assert events[-1]["choices"][0]["finish_reason"] == "length"

    status, _, body = call(fast_stub.url, "POST", "/v1/completions", {"prompt": "abcdefgh", "max_tokens": 3})
    obj = json.loads(body)
    assert obj["object"] == "text_completion" and obj["choices"][0]["text"]
    assert obj["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}


def test_openai_models_and_embeddings(fast_stub):
    status, _, body = call(fast_stub.url, "GET", "/v1/models")
    assert status == 200 and json.loads(body)["data"][0]["id"] == "stub-m"
    status, _, body = call(fast_stub.url, "POST", "/v1/embeddings", {"input": ["abcd", "efgh"]})
    obj = json.loads(body)
    assert status == 200 and obj["object"] == "list" and len(obj["data"]) == 2
    assert obj["data"][1]["index"] == 1 and len(obj["data"][0]["embedding"]) == 64
    assert obj["usage"] == {"prompt_tokens": 2, "total_tokens": 2}


def test_ollama_chat_ndjson_stream_and_final_stats(fast_stub):
    status, lines = stream_lines(fast_stub.url, "/api/chat", {
        "model": "llama3", "messages": MESSAGES, "options": {"num_predict": 6}})
    assert status == 200
    objs = [json.loads(line) for line in lines]
    assert [o["done"] for o in objs] == [False] * 6 + [True]
    assert all(o["model"] == "llama3" and o["created_at"].endswith("Z") for o in objs)
    assert all(o["message"]["role"] == "assistant" and o["message"]["content"] for o in objs[:-1])
    final = objs[-1]
    assert final["eval_count"] == 6 and final["prompt_eval_count"] == PROMPT_TOKENS
    assert final["done_reason"] == "length"
    for key in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(final[key], int) and final[key] >= 0
    # 5 ms TTFT and 5 gaps of 1 ms: durations are in nanoseconds
    assert final["prompt_eval_duration"] >= 4_000_000
    assert final["total_duration"] >= final["eval_duration"] + final["prompt_eval_duration"]


def test_ollama_generate_non_stream_and_tags(fast_stub):
    status, _, body = call(fast_stub.url, "POST", "/api/generate",
                           {"model": "llama3", "prompt": "abcdefgh", "stream": False})
    obj = json.loads(body)
    assert status == 200 and obj["done"] is True and obj["response"].strip()
    assert obj["eval_count"] == 20 and obj["prompt_eval_count"] == 2 and obj["done_reason"] == "stop"
    status, _, body = call(fast_stub.url, "GET", "/api/tags")
    assert status == 200 and json.loads(body)["models"][0]["name"] == "stub-m"


def test_chat_app_history_grows_and_delete_forgets(fast_stub):
    url = fast_stub.url
    first = json.loads(call(url, "POST", "/chat", {"session_id": "s1", "message": "hello there"})[2])
    assert first["session_id"] == "s1" and first["turn"] == 1 and first["reply"]
    assert first["usage"] == {"prompt_tokens": 3, "completion_tokens": 20}
    status, lines = stream_lines(url, "/chat", {"session_id": "s1", "message": "and more", "stream": "sse"})
    assert status == 200 and lines[-1] == "data: [DONE]"
    events = [json.loads(line[6:]) for line in lines[:-1]]
    reply = "".join(e["delta"] for e in events[:-1])
    assert len(events) == 21 and events[-1]["done"] is True
    # turn 2's prompt is the whole history (message 1 + reply 1) plus the new message
    expected_prompt = 3 + (len(first["reply"]) + 3) // 4 + 2
    assert events[-1]["usage"] == {"prompt_tokens": expected_prompt, "completion_tokens": 20}
    status, lines = stream_lines(url, "/chat", {"session_id": "s1", "message": "x", "stream": "ndjson",
                                                "max_tokens": 3})
    objs = [json.loads(line) for line in lines]
    assert [o.get("delta") is not None for o in objs] == [True, True, True, False]
    assert objs[-1]["done"] is True and objs[-1]["turn"] == 3
    assert objs[-1]["usage"]["prompt_tokens"] == expected_prompt + (len(reply) + 3) // 4 + 1
    assert fast_stub.get_json("/_stub/stats")["active_sessions"] == 1

    assert call(url, "DELETE", "/chat/s1")[0] == 204
    status, _, body = call(url, "DELETE", "/chat/s1")
    assert status == 404 and "error" in json.loads(body)
    again = json.loads(call(url, "POST", "/chat", {"session_id": "s1", "message": "hello there"})[2])
    assert again["turn"] == 1 and again["usage"]["prompt_tokens"] == 3


def test_chat_sessions_expire_when_idle(start_stub):
    stub = start_stub("--ttft-ms", "1", "--itl-ms", "0", "--output-tokens", "2", "--session-idle-s", "0.3")
    assert call(stub.url, "POST", "/chat", {"session_id": "idle", "message": "hi"})[0] == 200
    deadline = time.monotonic() + 10
    while stub.get_json("/_stub/stats")["active_sessions"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stub.get_json("/_stub/stats")["active_sessions"] == 0
    assert call(stub.url, "DELETE", "/chat/idle")[0] == 404


@pytest.mark.parametrize("path,body,param", [
    ("/v1/chat/completions", {"model": "m"}, "messages"),
    ("/v1/chat/completions", {"messages": "hi"}, "messages"),
    ("/v1/chat/completions", {"messages": MESSAGES, "max_tokens": "ten"}, "max_tokens"),
    ("/v1/chat/completions", {"messages": MESSAGES, "stream": "yes"}, "stream"),
    ("/v1/chat/completions", {"messages": [{"content": "no role"}]}, "messages[0].role"),
    ("/v1/completions", {"max_tokens": 3}, "prompt"),
    ("/v1/embeddings", {"model": "m"}, "input"),
])
def test_openai_bad_requests_get_400_with_openai_error_shape(fast_stub, path, body, param):
    status, headers, payload = call(fast_stub.url, "POST", path, body)
    err = json.loads(payload)["error"]
    assert status == 400 and headers["content-type"] == "application/json"
    assert err["type"] == "invalid_request_error" and err["param"] == param
    assert set(err) == {"message", "type", "param", "code"} and err["message"]


def test_malformed_json_and_wrong_types_across_families(fast_stub):
    url = fast_stub.url
    status, _, body = call(url, "POST", "/v1/chat/completions", raw=b"{not json")
    assert status == 400 and json.loads(body)["error"]["type"] == "invalid_request_error"
    status, _, body = call(url, "POST", "/v1/chat/completions", raw=b"[1, 2]")
    assert status == 400 and json.loads(body)["error"]["code"] == "invalid_type"
    for bad in (b"{not json", b'{"messages": []}', b'{"model": "m", "stream": "x"}',
                b'{"model": "m", "options": {"num_predict": "many"}}'):
        status, _, body = call(url, "POST", "/api/chat", raw=bad)
        assert status == 400 and isinstance(json.loads(body)["error"], str), bad
    for bad in (b"{}", b'{"session_id": "s"}', b'{"session_id": 3, "message": "x"}',
                b'{"session_id": "s", "message": "x", "stream": "xml"}', b"nope"):
        status, _, body = call(url, "POST", "/chat", raw=bad)
        assert status == 400 and isinstance(json.loads(body)["error"], str), bad


def test_unknown_routes_and_methods_answer_in_the_family_style(fast_stub):
    url = fast_stub.url
    status, _, body = call(url, "GET", "/v1/nothing")
    assert status == 404 and json.loads(body)["error"]["code"] == "unknown_url"
    status, headers, body = call(url, "GET", "/api/nothing")
    assert status == 404 and body == b"404 page not found"
    status, _, body = call(url, "GET", "/nothing")
    assert status == 404 and "error" in json.loads(body)
    status, headers, body = call(url, "GET", "/v1/chat/completions")
    assert status == 405 and headers["allow"] == "POST" and json.loads(body)["error"]["message"]
    assert call(url, "PUT", "/api/chat")[0] == 405
    assert call(url, "GET", "/chat/s1")[0] == 405
    stats = fast_stub.get_json("/_stub/stats")
    assert stats["requests_total"] == 0  # none of these were model-serving requests


def test_garbage_on_the_wire_gets_400_and_the_server_keeps_serving(fast_stub):
    parts = urlsplit(fast_stub.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400 ")
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{")
        sock.shutdown(socket.SHUT_WR)  # client gives up half-way through the body
    status, _, body = call(fast_stub.url, "POST", "/v1/chat/completions", {"messages": MESSAGES, "max_tokens": 1})
    assert status == 200 and json.loads(body)["usage"]["completion_tokens"] == 1


def test_keep_alive_serves_several_requests_on_one_connection(fast_stub):
    conn = _conn(fast_stub.url)
    for n in (1, 2, 3):
        conn.request("POST", "/v1/chat/completions",
                     body=json.dumps({"messages": MESSAGES, "max_tokens": n, "stream": True}))
        resp = conn.getresponse()
        events, done = sse_objects([ln for ln in resp.read().decode().split("\n") if ln])
        assert done and sum(1 for e in events if e["choices"][0]["delta"].get("content")) == n
    conn.close()
    stats = fast_stub.get_json("/_stub/stats")
    assert stats["requests_by_endpoint"] == {"/v1/chat/completions": 3}
    assert stats["responses_by_status"] == {"200": 3} and stats["tokens_streamed"] == 6


def test_expect_100_continue_is_answered_before_the_body(fast_stub):
    parts = urlsplit(fast_stub.url)
    body = json.dumps({"messages": MESSAGES, "max_tokens": 2}).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))
        assert sock.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        reply = b""
        while b"total_tokens" not in reply:
            chunk = sock.recv(65536)
            assert chunk
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")


def test_http_1_0_client_gets_a_stream_that_ends_at_close(fast_stub):
    parts = urlsplit(fast_stub.url)
    body = json.dumps({"messages": MESSAGES, "max_tokens": 3, "stream": True}).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.0\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body))
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, payload = reply.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head and b"Connection: close" in head
    events, done = sse_objects([ln for ln in payload.decode().split("\n") if ln])
    assert done and sum(1 for e in events if e["choices"][0]["delta"].get("content")) == 3
