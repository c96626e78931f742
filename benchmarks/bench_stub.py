"""How many streamed tokens per second can ``llmsoak stub`` serve?

Starts ``llmsoak stub --ttft-ms 0 --itl-ms 0`` (no artificial latency, so only the stub's own
cost limits it), drives it with several client *processes*, each keeping many keep-alive
connections busy with streaming chat completions read by a raw-socket loop (no parsing beyond
finding the end of each chunked response), and reports the tokens the stub streamed per second of
wall time (from its /_stub/stats counters) and per CPU-second of the stub process. Median of
``--runs`` runs.

Usage:
    .venv/bin/python benchmarks/bench_stub.py [--processes 2] [--connections 32] [--seconds 5]
        [--runs 3] [--output-tokens 256] [--itl-ms 0] [--locust]

With ``--itl-ms N`` the stub paces tokens (one timer per token per stream): the figure then shows
how many concurrent paced streams it sustains (ideal: connections × processes × 1000 / N).

``--locust`` also runs one headless Locust process with ``locustfiles/llm_chat.py`` (if present)
against the same stub and reports the tokens per second it consumed, side by side.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
_LISTEN_RE = re.compile(r"listening on http://([\d.]+):(\d+)")


def _request(output_tokens: int) -> bytes:
    body = json.dumps({"model": "bench", "stream": True, "max_tokens": output_tokens,
                       "messages": [{"role": "user", "content": "Tell me a long story."}]}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            b"Accept-Encoding: identity\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body))


def client(host: str, port: int, connections: int, seconds: float, output_tokens: int,
           results: mp.Queue) -> None:
    """One client process: ``connections`` sockets, each sending a new request when one ends."""
    request = _request(output_tokens)
    sel = selectors.DefaultSelector()
    tails: dict[socket.socket, bytes] = {}
    for _ in range(connections):
        sock = socket.create_connection((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        sock.sendall(request)
        sel.register(sock, selectors.EVENT_READ)
        tails[sock] = b""
    responses = 0
    received_bytes = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            sock = key.fileobj
            data = sock.recv(1 << 20)  # type: ignore[union-attr]
            if not data:
                raise SystemExit("stub closed a connection")
            received_bytes += len(data)
            # A response ends with the chunked terminator; look at the last bytes only.
            tail = (tails[sock] + data)[-16:]
            if tail.endswith(b"[DONE]\n\n\r\n0\r\n\r\n"[-12:]):
                responses += 1
                sock.send(request)  # type: ignore[union-attr]
                tail = b""
            tails[sock] = tail
    for sock in tails:
        sock.close()
    results.put((responses, received_bytes))


def start_stub(output_tokens: int, itl_ms: float) -> tuple[subprocess.Popen, str, int]:
    cmd = [sys.executable, "-m", "llmsoak", "stub", "--port", "0", "--ttft-ms", "0", "--itl-ms",
           str(itl_ms), "--output-tokens", str(output_tokens), "--max-concurrency", "1024",
           "--queue-size", "1024", "--itl-slowdown", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    assert proc.stdout is not None
    for line in proc.stdout:
        if m := _LISTEN_RE.search(line):
            return proc, m.group(1), int(m.group(2))
    raise SystemExit("stub did not start")


def stats(host: str, port: int) -> dict:
    with urllib.request.urlopen(f"http://{host}:{port}/_stub/stats", timeout=10) as resp:
        return json.loads(resp.read())


def one_run(host: str, port: int, stub: psutil.Process, args: argparse.Namespace) -> dict:
    results: mp.Queue = mp.Queue()
    before = stats(host, port)
    cpu_before = sum(stub.cpu_times()[:2])
    started = time.monotonic()
    procs = [mp.Process(target=client, args=(host, port, args.connections, args.seconds,
                                             args.output_tokens, results))
             for _ in range(args.processes)]
    for p in procs:
        p.start()
    totals = [results.get(timeout=args.seconds + 60) for _ in procs]
    for p in procs:
        p.join()
    elapsed_s = time.monotonic() - started
    after = stats(host, port)
    cpu_s = sum(stub.cpu_times()[:2]) - cpu_before
    tokens = after["tokens_streamed"] - before["tokens_streamed"]
    return {"tokens_per_s": tokens / elapsed_s, "tokens_per_cpu_s": tokens / cpu_s if cpu_s else 0.0,
            "requests_per_s": sum(r for r, _ in totals) / elapsed_s,
            "mbytes_per_s": sum(b for _, b in totals) / elapsed_s / 1e6,
            "stub_cpu_percent": 100 * cpu_s / elapsed_s}


LOCUST_PROFILE = """\
name: bench-stub
description: "Stress users without think time against the stub: one Locust process's ceiling."
target: {url: "http://%s:%d", flavour: openai, endpoint: chat, model: bench, stream: true, timeout_s: 30}
patterns:
  stress: {weight: 1, prompt_tokens: 20, max_tokens: %d}
prompts: {source: builtin}
load: {shape: constant, users: %d, spawn_rate: %d}
run: {duration: %ds, workers: 0}
"""


def run_locust(host: str, port: int, args: argparse.Namespace) -> dict | None:
    """One headless Locust process with locustfiles/llm_chat.py; tokens/s it made the stub stream."""
    locustfile = REPO / "locustfiles" / "llm_chat.py"
    locust = REPO / ".venv" / "bin" / "locust"
    if not locustfile.exists() or not locust.exists():
        print("locust: locustfiles/llm_chat.py or .venv/bin/locust missing; skipped")
        return None
    seconds = int(args.seconds * 2)
    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp) / "bench-stub.yaml"
        profile.write_text(LOCUST_PROFILE % (host, port, args.output_tokens, args.locust_users,
                                             args.locust_users, seconds + 5))
        cmd = [str(locust), "-f", str(locustfile), "--profile", str(profile), "--headless",
               "-u", str(args.locust_users), "-r", str(args.locust_users), "-t", f"{seconds + 5}s",
               "--only-summary", "--loglevel", "WARNING"]
        done = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
        time.sleep(5)  # ramp-up and imports; measure the steady part only
        before = stats(host, port)
        started = time.monotonic()
        time.sleep(seconds)
        after = stats(host, port)
        elapsed_s = time.monotonic() - started
        output, _ = done.communicate(timeout=120)
    tokens = after["tokens_streamed"] - before["tokens_streamed"]
    print("locust command:", " ".join(cmd), f"(exit {done.returncode})")
    if done.returncode not in (0, 1):
        print(output[-2000:])
    return {"tokens_per_s": tokens / elapsed_s,
            "requests_per_s": (after["requests_total"] - before["requests_total"]) / elapsed_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32, help="per client process")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output-tokens", type=int, default=256)
    parser.add_argument("--itl-ms", type=float, default=0.0,
                        help="pace tokens (default 0: as fast as the stub can write)")
    parser.add_argument("--locust", action="store_true", help="also measure one headless Locust process")
    parser.add_argument("--locust-users", type=int, default=64, help="users of that Locust process")
    args = parser.parse_args()
    proc, host, port = start_stub(args.output_tokens, args.itl_ms)
    try:
        stub = psutil.Process(proc.pid)
        runs = [one_run(host, port, stub, args) for _ in range(args.runs)]
        print(f"command: {' '.join(sys.argv)}")
        print(f"machine: {os.cpu_count()} CPUs, {sys.platform}, Python {sys.version.split()[0]}")
        for i, r in enumerate(runs, 1):
            print(f"run {i}: {r['tokens_per_s']:,.0f} tokens/s, {r['requests_per_s']:,.0f} req/s, "
                  f"{r['mbytes_per_s']:.1f} MB/s, stub CPU {r['stub_cpu_percent']:.0f}%, "
                  f"{r['tokens_per_cpu_s']:,.0f} tokens per stub CPU-second")
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"median: {med['tokens_per_s']:,.0f} streamed tokens/s served "
              f"({med['requests_per_s']:,.0f} req/s of {args.output_tokens} tokens; "
              f"{med['tokens_per_cpu_s']:,.0f} tokens per stub CPU-second)")
        if args.locust:
            result = run_locust(host, port, args)
            if result:
                print(f"one Locust process consumed {result['tokens_per_s']:,.0f} tokens/s "
                      f"({result['requests_per_s']:,.0f} req/s); stub/locust ratio "
                      f"{med['tokens_per_s'] / max(1.0, result['tokens_per_s']):.1f}x")
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
