"""Client CPU per 1,000 streamed tokens: llmsoak's Locust streaming user vs a minimal aiohttp client.

    .venv/bin/python benchmarks/bench_client.py [--reps 3] [--seconds 12] [--concurrency 16]

Starts ``llmsoak stub --ttft-ms 0 --itl-ms 0`` (tokens as fast as it can), then alternately runs
(a) one headless Locust process (locustfiles/llm_chat.py, StressUser, OpenAI chat streaming with
include_usage) and (b) a minimal asyncio + aiohttp streaming client in the style of vLLM's serving
benchmark (readline per SSE line, json.loads per chunk, a perf_counter per content chunk), each
with the same concurrency and duration. Client CPU is the child's user+system time from
``os.wait4`` (start-up included for both); tokens are the stub's ``tokens_streamed`` for that
run. Prints per-run figures, medians, the ratio (Locust / aiohttp), and Locust's tokens/s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

AIOHTTP_CLIENT = r'''
import asyncio, json, sys, time
import aiohttp
URL, CONC, SECONDS = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
BODY = {"model": "m", "messages": [{"role": "user", "content": "Tell me a story about a benchmark."}],
        "stream": True, "max_tokens": 256, "stream_options": {"include_usage": True}}
async def worker(session, deadline, out):
    while time.perf_counter() < deadline:
        t0 = time.perf_counter(); ttft = None; last = t0; itl = []; n = 0
        async with session.post(URL + "/v1/chat/completions", json=BODY) as resp:
            async for raw in resp.content:
                line = raw.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    continue
                obj = json.loads(data)
                choices = obj.get("choices")
                if choices and choices[0].get("delta", {}).get("content"):
                    now = time.perf_counter()
                    if ttft is None: ttft = now - t0
                    else: itl.append(now - last)
                    last = now; n += 1
        out.append(n)
async def main():
    out = []
    deadline = time.perf_counter() + SECONDS
    conn = aiohttp.TCPConnector(limit=CONC)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=None)) as s:
        await asyncio.gather(*(worker(s, deadline, out) for _ in range(CONC)))
    print(json.dumps({"requests": len(out), "tokens": sum(out)}))
asyncio.run(main())
'''

PROFILE = """name: bench
description: benchmark
target: {url: http://127.0.0.1:9, flavour: openai, endpoint: chat, model: m, stream: true, timeout_s: 30}
patterns:
  stress: {users: CONC, max_tokens: 256, prompt_tokens: 10, turns_per_session: 1}
load: {shape: none}
"""


def _stub() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "llmsoak", "stub", "--port", "0", "--ttft-ms", "0",
                             "--itl-ms", "0", "--output-tokens", "256", "--max-concurrency", "256"],
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    for _ in range(100):
        line = proc.stdout.readline()
        if m := re.search(r"listening on (http://\S+)", line):
            return proc, m.group(1).rstrip("/")
    proc.kill()
    raise SystemExit("stub did not start")


def _get(url: str, path: str, post: bool = False) -> dict:
    req = urllib.request.Request(url + path, data=b"{}" if post else None, method="POST" if post else "GET")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"{}")


def _run_child(argv: list[str], cwd: str) -> tuple[float, float]:
    """(cpu_s, wall_s) of a child process, from os.wait4's rusage."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed with {proc.returncode}")
    return usage.ru_utime + usage.ru_stime, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=12)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    stub, url = _stub()
    rows = {"locust": [], "aiohttp": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            profile = Path(tmp) / "bench.yaml"
            profile.write_text(PROFILE.replace("CONC", str(args.concurrency)))
            client = Path(tmp) / "aiohttp_client.py"
            client.write_text(AIOHTTP_CLIENT)
            runs = {
                "locust": [sys.executable, "-m", "locust", "-f", str(REPO / "locustfiles" / "llm_chat.py"),
                           "--headless", "--profile", str(profile), "-H", url, "-u", str(args.concurrency),
                           "-r", str(args.concurrency), "-t", f"{args.seconds}s", "--only-summary",
                           "--stop-timeout", "5", "--llm-timeseries", str(Path(tmp) / "ts.csv")],
                "aiohttp": [sys.executable, str(client), url, str(args.concurrency), str(args.seconds)],
            }
            for rep in range(args.reps):
                for name, argv in runs.items():
                    _get(url, "/_stub/reset", post=True)
                    cpu_s, wall_s = _run_child(argv, tmp)
                    tokens = _get(url, "/_stub/stats")["tokens_streamed"]
                    per_1k = cpu_s / tokens * 1000 if tokens else float("nan")
                    rows[name].append((per_1k, tokens / args.seconds, cpu_s, tokens))
                    print(f"rep {rep + 1} {name:8s} cpu {cpu_s:6.2f} s  tokens {tokens:8d}  "
                          f"cpu per 1k tokens {per_1k * 1000:7.2f} ms  tokens/s {tokens / args.seconds:9.0f}",
                          flush=True)
    finally:
        stub.terminate()
        stub.wait(10)
    med = {name: statistics.median(r[0] for r in rs) for name, rs in rows.items()}
    print(f"\nmedian client CPU per 1,000 streamed tokens: locust {med['locust'] * 1000:.2f} ms, "
          f"aiohttp {med['aiohttp'] * 1000:.2f} ms, ratio locust/aiohttp {med['locust'] / med['aiohttp']:.2f}")
    print(f"locust streamed tokens/s (one process, max over reps): {max(r[1] for r in rows['locust']):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
