"""The stub as a process: real RSS growth with --leak-kb-per-request, flat without; CLI errors;
clean exit on SIGTERM."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import threading
import time
from urllib.parse import urlsplit

from support.processes import llmsoak_cmd

CHAT = json.dumps({"messages": [{"role": "user", "content": "hello"}]}).encode()


def drive(url: str, requests: int) -> None:
    """``requests`` non-streamed chat completions over one keep-alive connection."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    for _ in range(requests):
        conn.request("POST", "/v1/chat/completions", body=CHAT)
        resp = conn.getresponse()
        assert resp.status == 200
        resp.read()
    conn.close()


FAST = ("--ttft-ms", "0", "--itl-ms", "0", "--output-tokens", "16")


def test_leak_grows_rss_by_what_it_keeps(start_stub):
    stub = start_stub(*FAST, "--leak-kb-per-request", "512")
    drive(stub.url, 10)  # warm up allocator and code paths
    before = stub.get_json("/_stub/stats")
    drive(stub.url, 200)
    after = stub.get_json("/_stub/stats")
    assert after["leaked_bytes"] - before["leaked_bytes"] == 200 * 512 * 1024
    assert after["rss_bytes"] - before["rss_bytes"] >= 80 * 2**20, (before["rss_bytes"], after["rss_bytes"])


def test_rss_stays_flat_without_leak(start_stub):
    stub = start_stub(*FAST)
    drive(stub.url, 10)
    before = stub.get_json("/_stub/stats")
    drive(stub.url, 200)
    after = stub.get_json("/_stub/stats")
    assert after["leaked_bytes"] == 0 and after["in_flight_buffer_bytes"] == 0
    assert after["rss_bytes"] - before["rss_bytes"] < 15 * 2**20, (before["rss_bytes"], after["rss_bytes"])


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(llmsoak_cmd("stub", *args), capture_output=True, text=True, timeout=30)


def test_bad_fault_spec_exits_2_with_one_line():
    for spec in ("nope=0.1", "http_500", "http_500=abc", "http_500=1.5"):
        done = run_cli("--port", "0", "--fault", spec)
        assert done.returncode == 2, spec
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "--fault" in lines[0] and "Traceback" not in done.stderr, done.stderr
    done = run_cli("--port", "0", "--fault", "http_500=0.6", "--fault", "stall=0.6")
    assert done.returncode == 2 and "add up" in done.stderr
    done = run_cli("--itl-ms", "-1")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1


def test_port_in_use_exits_2_naming_host_and_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_cli("--port", str(port))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0], done.stderr


def test_sigterm_stops_quickly_even_mid_stream(start_stub):
    stub = start_stub("--ttft-ms", "0", "--itl-ms", "50", "--output-tokens", "1000")
    parts = urlsplit(stub.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("POST", "/v1/chat/completions",
                 body=json.dumps({"messages": [{"role": "user", "content": "x"}], "stream": True}))
    resp = conn.getresponse()
    assert resp.readline().startswith(b"data: ")
    reader = threading.Thread(target=lambda: _drain_quietly(resp), daemon=True)
    reader.start()
    started = time.monotonic()
    stub.proc.send_signal(signal.SIGTERM)
    assert stub.proc.wait(5) == 0
    assert time.monotonic() - started < 3
    assert any("listening on http://127.0.0.1:" in line for line in stub.lines)
    assert not any("Traceback" in line for line in stub.lines)


def _drain_quietly(resp: http.client.HTTPResponse) -> None:
    try:
        resp.read()
    except Exception:
        pass
