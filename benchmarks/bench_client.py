"""Client CPU per 1,000 streamed tokens: llmsoak's Locust streaming user vs a minimal aiohttp client.

    .venv/bin/python benchmarks/bench_client.py [--reps 3] [--seconds 12] [--concurrency 16]

    .venv/bin/python benchmarks/bench_client.py --itl-ms 1 --concurrency 64   # one event per read
    .venv/bin/python benchmarks/bench_client.py --paced --seconds 30          # 200 streams, 20 ms apart

``--paced`` is the realistic case: 200 concurrent streams of tokens 20 ms apart (50 tokens/s
each, 10,000 tokens/s in all), so every socket read carries one event and the per-read cost
(wake-up, recv, HTTP parser) dominates. It is short for ``--itl-ms 20 --concurrency 200``.

Starts ``llmsoak stub --ttft-ms 0 --itl-ms 0`` (tokens as fast as it can; ``--itl-ms`` paces
them), then alternately runs
(a) one headless Locust process (locustfiles/llm_chat.py, StressUser, OpenAI chat streaming with
include_usage) and (b) a minimal asyncio + aiohttp streaming client doing per chunk what vLLM's
serving benchmark does (a line per SSE line, strip, decode, drop ``data: ``, a perf_counter and
``json.loads`` per chunk, ``choices[0].delta.content``, usage), each with the same concurrency
and duration. Tokens are the stub's ``tokens_streamed``. Two figures per run:

* whole process: the child's user+system CPU from ``os.wait4`` (start-up and shutdown included,
  which costs Locust more: its imports are heavier) over all tokens streamed during the run;
* steady state: the child's CPU (/proc/PID/stat) and the stub's token counter sampled together
  ``--warmup`` seconds after the start and at ``--seconds``, with every stream in flight.

Prints per-run figures, medians and the ratios (Locust / aiohttp), and tokens/s.
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
# A minimal streaming client doing per chunk what vLLM's serving benchmark does
# (benchmarks/backend_request_func.py, async_request_openai_chat_completions): iterate the
# response line by line, strip, skip empty lines, decode, remove the "data: " prefix, skip
# [DONE], take a timestamp, json.loads, choices[0]["delta"]["content"] (first chunk → TTFT,
# later ones → ITL, text appended), else the usage chunk's completion_tokens. One shared session
# with a connection pool (vLLM's current version passes one session to every request).
import asyncio, json, sys, time
import aiohttp
URL, CONC, SECONDS = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
BODY = {"model": "m", "messages": [{"role": "user", "content": "Tell me a story about a benchmark."}],
        "stream": True, "max_tokens": 256, "stream_options": {"include_usage": True}}
HEADERS = {"Content-Type": "application/json"}
async def request(session):
    st = time.perf_counter(); most_recent = st; ttft = 0.0; itl = []; text = ""; out_tokens = None
    async with session.post(URL + "/v1/chat/completions", json=BODY, headers=HEADERS) as response:
        if response.status != 200:
            return 0
        async for chunk_bytes in response.content:
            chunk_bytes = chunk_bytes.strip()
            if not chunk_bytes:
                continue
            chunk = chunk_bytes.decode("utf-8").removeprefix("data: ")
            if chunk.startswith(":") or chunk == "[DONE]":
                continue
            timestamp = time.perf_counter()
            data = json.loads(chunk)
            if choices := data.get("choices"):
                content = choices[0]["delta"].get("content")
                if ttft == 0.0:
                    ttft = timestamp - st
                else:
                    itl.append(timestamp - most_recent)
                text += content or ""
                most_recent = timestamp
            elif usage := data.get("usage"):
                out_tokens = usage.get("completion_tokens")
    return out_tokens or len(itl) + 1
async def worker(session, deadline, out):
    while time.perf_counter() < deadline:
        out.append(await request(session))
async def main():
    out = []
    deadline = time.perf_counter() + SECONDS
    conn = aiohttp.TCPConnector(limit=CONC)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=6 * 3600)) as s:
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


def _stub(itl_ms: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "llmsoak", "stub", "--port", "0", "--ttft-ms", "0",
                             "--itl-ms", str(itl_ms), "--itl-slowdown", "0", "--output-tokens", "256",
                             "--max-concurrency", "1024"],
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


def _proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process so far (/proc/PID/stat, clock-tick resolution)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_child(argv: list[str], cwd: str, url: str, seconds: int, warmup_s: float) -> dict:
    """Run one client; CPU and streamed tokens over its whole life and over its steady window.

    Whole: the child's user+system time from os.wait4 (start-up and shutdown included) and the
    stub's tokens_streamed at the end. Steady: the child's CPU (/proc) and the stub's token
    counter sampled together ``warmup_s`` after the start and again ``seconds`` after the start
    (both clients are streaming at full concurrency in between), so imports and ramp-up are out.
    """
    _get(url, "/_stub/reset", post=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marks = []
    for at in (warmup_s, float(seconds)):
        time.sleep(max(0.0, t0 + at - time.perf_counter()))
        marks.append((_proc_cpu_s(proc.pid), _get(url, "/_stub/stats")["tokens_streamed"], time.perf_counter()))
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed with {proc.returncode}")
    (cpu0, tok0, w0), (cpu1, tok1, w1) = marks
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "tokens": _get(url, "/_stub/stats")["tokens_streamed"],
            "steady_cpu_s": cpu1 - cpu0, "steady_tokens": tok1 - tok0, "steady_wall_s": w1 - w0}


def _ms_per_1k(cpu_s: float, tokens: int) -> float:
    return cpu_s / tokens * 1e6 if tokens else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=12)
    ap.add_argument("--concurrency", type=int, default=None, help="concurrent streams (default 16; --paced: 200)")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds after start before the steady window (default 3)")
    ap.add_argument("--paced", action="store_true",
                    help="200 streams, tokens 20 ms apart: one event per read (--itl-ms 20 --concurrency 200)")
    ap.add_argument("--itl-ms", type=float, default=None,
                    help="the stub's gap between tokens (default 0: as fast as it can, so several events "
                         "arrive per read; 1 or more: about one event per read)")
    args = ap.parse_args()
    if args.concurrency is None:
        args.concurrency = 200 if args.paced else 16
    if args.itl_ms is None:
        args.itl_ms = 20.0 if args.paced else 0.0
    if args.seconds < args.warmup + 3:
        raise SystemExit("--seconds must be at least --warmup + 3")
    stub, url = _stub(args.itl_ms)
    rows: dict[str, list[dict]] = {"locust": [], "aiohttp": []}
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
                    r = _run_child(argv, tmp, url, args.seconds, args.warmup)
                    r["per_1k_ms"] = _ms_per_1k(r["cpu_s"], r["tokens"])
                    r["steady_per_1k_ms"] = _ms_per_1k(r["steady_cpu_s"], r["steady_tokens"])
                    r["steady_tokens_per_s"] = r["steady_tokens"] / r["steady_wall_s"]
                    rows[name].append(r)
                    print(f"rep {rep + 1} {name:8s} whole: cpu {r['cpu_s']:6.2f} s tokens {r['tokens']:8d} "
                          f"→ {r['per_1k_ms']:6.2f} ms/1k | steady: cpu {r['steady_cpu_s']:5.2f} s "
                          f"tokens {r['steady_tokens']:8d} → {r['steady_per_1k_ms']:6.2f} ms/1k, "
                          f"{r['steady_tokens_per_s']:7.0f} tokens/s", flush=True)
    finally:
        stub.terminate()
        stub.wait(10)
    print()
    for key, what in (("per_1k_ms", "whole process (start-up included)"), ("steady_per_1k_ms", "steady state")):
        med = {name: statistics.median(r[key] for r in rs) for name, rs in rows.items()}
        print(f"median client CPU per 1,000 streamed tokens, {what}: locust {med['locust']:.2f} ms, "
              f"aiohttp {med['aiohttp']:.2f} ms, ratio locust/aiohttp {med['locust'] / med['aiohttp']:.2f}")
    for name, rs in rows.items():
        print(f"{name} streamed tokens/s in the steady window (one process, median): "
              f"{statistics.median(r['steady_tokens_per_s'] for r in rs):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
