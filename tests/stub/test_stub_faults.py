"""Every fault kind at rate 1.0, as a real client sees it, switched at run time via /_stub/faults."""

from __future__ import annotations

import http.client
import json
import socket
import time
from urllib.parse import urlsplit

import pytest
from support.processes import RunningProcess

CHAT = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 10}


def set_faults(stub: RunningProcess, rates: dict) -> dict:
    parts = urlsplit(stub.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    conn.request("POST", "/_stub/faults", body=json.dumps(rates))
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    return {"status": resp.status, **body}


def attempt(stub: RunningProcess, path: str, body: dict, timeout: float = 5.0) -> dict:
    """One request read line by line; returns what happened (status, lines, error kind)."""
    parts = urlsplit(stub.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    out: dict = {"status": None, "lines": [], "error": None, "body": b""}
    try:
        conn.request("POST", path, body=json.dumps(body).encode())
        resp = conn.getresponse()
        out["status"] = resp.status
        if body.get("stream", path == "/api/chat"):
            while line := resp.readline():
                if line.strip():
                    out["lines"].append(line.decode().strip())
        else:
            out["body"] = resp.read()
    except (ConnectionResetError, http.client.RemoteDisconnected):
        out["error"] = "reset"
    except http.client.IncompleteRead:
        out["error"] = "incomplete"
    except TimeoutError:
        out["error"] = "timeout"
    finally:
        conn.close()
    return out


def _valid_json(line: str) -> bool:
    try:
        json.loads(line.removeprefix("data: "))
        return True
    except ValueError:
        return False


@pytest.fixture
def fault_stub(start_stub):
    return start_stub("--ttft-ms", "2", "--itl-ms", "1", "--output-tokens", "10", "--stall-s", "1.5")


def test_admin_endpoint_replaces_rates_and_validates(fault_stub):
    assert fault_stub.get_json("/_stub/faults") == dict.fromkeys(
        ["http_429", "http_500", "http_503", "reset_before_headers", "reset_mid_stream", "stall",
         "malformed_chunk", "empty_response", "context_overflow", "error_event", "interrupted"], 0.0)
    reply = set_faults(fault_stub, {"http_500": 0.25, "stall": 0.5})
    assert reply["status"] == 200 and reply["http_500"] == 0.25 and reply["stall"] == 0.5
    reply = set_faults(fault_stub, {"http_503": 1})  # replaces: unnamed faults go back to 0
    assert fault_stub.get_json("/_stub/faults")["http_500"] == 0.0
    assert fault_stub.get_json("/_stub/faults")["http_503"] == 1.0
    for bad in ({"nope": 0.1}, {"http_500": 2}, {"http_500": "x"}, [1], {"http_500": 0.7, "stall": 0.6}):
        reply = set_faults(fault_stub, bad)
        assert reply["status"] == 400 and reply["error"]
    assert fault_stub.get_json("/_stub/faults")["http_503"] == 1.0  # unchanged by bad posts


@pytest.mark.parametrize("fault,status", [("http_429", 429), ("http_500", 500), ("http_503", 503)])
def test_http_faults_answer_with_the_family_error_shape(fault_stub, fault, status):
    set_faults(fault_stub, {fault: 1.0})
    out = attempt(fault_stub, "/v1/chat/completions", {**CHAT, "stream": True})
    assert out["status"] == status
    assert json.loads(out["lines"][0])["error"]["message"]
    out = attempt(fault_stub, "/api/generate", {"model": "m", "prompt": "x", "stream": False})
    assert out["status"] == status and isinstance(json.loads(out["body"])["error"], str)
    stats = fault_stub.get_json("/_stub/stats")
    assert stats["faults_injected"] == {fault: 2}
    assert stats["responses_by_status"] == {str(status): 2}


def test_reset_before_headers_and_mid_stream(fault_stub):
    set_faults(fault_stub, {"reset_before_headers": 1.0})
    out = attempt(fault_stub, "/v1/chat/completions", {**CHAT, "stream": True})
    assert out["status"] is None and out["error"] == "reset"

    set_faults(fault_stub, {"reset_mid_stream": 1.0})
    out = attempt(fault_stub, "/v1/chat/completions", {**CHAT, "stream": True})
    assert out["status"] == 200 and out["error"] in ("reset", "incomplete")
    content = [ln for ln in out["lines"] if '"content":"' in ln and '"content":""' not in ln]
    assert 1 <= len(content) < 10 and "data: [DONE]" not in out["lines"]
    out = attempt(fault_stub, "/v1/chat/completions", CHAT)  # non-stream: half a body
    assert out["status"] == 200 and out["error"] in ("reset", "incomplete")
    stats = fault_stub.get_json("/_stub/stats")
    assert stats["faults_injected"] == {"reset_before_headers": 1, "reset_mid_stream": 2}
    assert stats["responses_by_status"] == {"200": 2}  # the reset before headers sent no status


def test_stall_sends_headers_then_nothing_until_stall_s(fault_stub):
    set_faults(fault_stub, {"stall": 1.0})
    out = attempt(fault_stub, "/v1/chat/completions", {**CHAT, "stream": True}, timeout=0.5)
    assert out["status"] == 200 and out["error"] == "timeout" and out["lines"] == []
    started = time.monotonic()
    out = attempt(fault_stub, "/api/chat", {"model": "m", "messages": []}, timeout=10)
    waited_s = time.monotonic() - started
    assert out["status"] == 200 and out["lines"] == []
    assert 1.3 <= waited_s <= 5.0  # closed after --stall-s 1.5
    assert fault_stub.get_json("/_stub/stats")["faults_injected"] == {"stall": 2}


def test_malformed_chunk_breaks_exactly_one_event(fault_stub):
    set_faults(fault_stub, {"malformed_chunk": 1.0})
    out = attempt(fault_stub, "/v1/chat/completions", {**CHAT, "stream": True})
    assert out["status"] == 200 and out["lines"][-1] == "data: [DONE]"
    assert sum(not _valid_json(ln) for ln in out["lines"][:-1]) == 1
    out = attempt(fault_stub, "/api/chat", {"model": "m", "messages": []})
    assert sum(not _valid_json(ln) for ln in out["lines"]) == 1
    assert json.loads(out["lines"][-1])["done"] is True
    out = attempt(fault_stub, "/chat", {"session_id": "s", "message": "hi", "stream": "ndjson"})
    assert sum(not _valid_json(ln) for ln in out["lines"]) == 1
    out = attempt(fault_stub, "/v1/chat/completions", CHAT)
    assert out["status"] == 200 and not _valid_json(out["body"].decode())


def test_empty_response_is_a_clean_empty_200(fault_stub):
    set_faults(fault_stub, {"empty_response": 1.0})
    out = attempt(fault_stub, "/v1/chat/completions", {**CHAT, "stream": True})
    assert out == {"status": 200, "lines": [], "error": None, "body": b""}
    out = attempt(fault_stub, "/v1/chat/completions", CHAT)
    assert out == {"status": 200, "lines": [], "error": None, "body": b""}
    set_faults(fault_stub, {})
    out = attempt(fault_stub, "/v1/chat/completions", CHAT)  # faults off again
    assert json.loads(out["body"])["usage"]["completion_tokens"] == 10
    stats = fault_stub.get_json("/_stub/stats")
    assert stats["faults_injected"] == {"empty_response": 2} and stats["requests_total"] == 3


def test_context_overflow_answers_400_in_vllms_words(fault_stub):
    set_faults(fault_stub, {"context_overflow": 1.0})
    out = attempt(fault_stub, "/v1/chat/completions", {**CHAT, "stream": True})
    message = json.loads(out["body"] or out["lines"][0])["error"]["message"]
    assert out["status"] == 400 and message.startswith("This model's maximum context length is 4096 tokens.")
    out = attempt(fault_stub, "/api/chat", {"model": "m", "messages": [], "stream": False})
    assert out["status"] == 400 and "maximum context length" in json.loads(out["body"])["error"]


def test_error_event_ends_a_200_stream_with_the_apis_error(fault_stub):
    set_faults(fault_stub, {"error_event": 1.0})
    out = attempt(fault_stub, "/v1/chat/completions", {**CHAT, "stream": True})
    assert out["status"] == 200 and out["error"] is None
    last = json.loads(out["lines"][-1].removeprefix("data: "))
    assert last["error"]["code"] == 500 and "error_event" in last["error"]["message"]
    assert not any("finish_reason\": \"" in ln for ln in out["lines"])
    out = attempt(fault_stub, "/api/chat", {"model": "m", "messages": []})
    assert out["status"] == 200 and "error_event" in json.loads(out["lines"][-1])["error"]
    out = attempt(fault_stub, "/v1/chat/completions", CHAT)  # non-streamed: a 500
    assert out["status"] == 500 and "error_event" in json.loads(out["body"])["error"]["message"]


def test_interrupted_sends_done_without_finish_reason_then_closes(fault_stub):
    set_faults(fault_stub, {"interrupted": 1.0})
    out = attempt(fault_stub, "/v1/chat/completions", {**CHAT, "stream": True})
    assert out["status"] == 200 and out["lines"][-1] == "data: [DONE]"
    parts = urlsplit(fault_stub.url)
    body = json.dumps({**CHAT, "stream": True}).encode()
    raw = b""
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))
        while data := sock.recv(65536):  # the server closes: no keep-alive after it
            raw += data
    assert raw.endswith(b"data: [DONE]\n\n\r\n")  # the chunked body's last chunk (0) never came
    assert all(json.loads(ln[6:])["choices"][0]["finish_reason"] is None for ln in out["lines"][:-1])
    out = attempt(fault_stub, "/api/chat", {"model": "m", "messages": []})
    assert out["status"] == 200 and out["error"] is None and out["lines"]
    assert not any(json.loads(ln)["done"] for ln in out["lines"])


def test_reset_zeroes_counters(fault_stub):
    attempt(fault_stub, "/v1/chat/completions", CHAT)
    assert fault_stub.get_json("/_stub/stats")["requests_total"] == 1
    parts = urlsplit(fault_stub.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(b"POST /_stub/reset HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
    stats = fault_stub.get_json("/_stub/stats")
    assert stats["requests_total"] == 0 and stats["tokens_generated"] == 0
    assert stats["uptime_s"] > 0 and stats["rss_bytes"] > 10_000_000


def test_fault_draws_are_reproducible_with_a_seed(start_stub):
    outcomes = []
    for _ in range(2):
        stub = start_stub("--ttft-ms", "0", "--itl-ms", "0", "--output-tokens", "3", "--seed", "7",
                          "--fault", "http_500=0.3", "--fault", "http_503=0.3")
        statuses = [attempt(stub, "/v1/completions", {"prompt": "x"})["status"] for _ in range(20)]
        outcomes.append(statuses)
        stub.stop()
    assert outcomes[0] == outcomes[1] and len(set(outcomes[0])) == 3
