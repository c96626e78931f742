"""What one Locust master carries: N workers on loopback reporting stats, the master's CPU%.

The master is the real thing: ``locust -f locustfiles/llm_chat.py --master --headless`` with
llmsoak's plugin (the worker gate, the merge of the per-minute LLM windows, bounded memory). The
workers are simulated, in one separate process, so that their cost does not count against the
master: each sends llmsoak's hello and Locust's ``client_ready``, then like a real llmsoak worker
a heartbeat every second and every 3 s a ``stats`` report with ``--rows`` stats rows (llmsoak
writes 8 rows per pattern: POST, TTFT, E2E, ITL, TPOT, TOKENS/S, IN_TOKENS, OUT_TOKENS; 4
patterns = 32) holding ``--requests`` requests each, plus its per-minute LLM window
(``llmsoak_minutes``). The master merges every row of every report, so its load is
workers x rows / 3 s **rows/s**; the benchmark reports that and the master's CPU (100 = one core)
over ``--seconds``, after a warm-up.

Run: .venv/bin/python benchmarks/bench_master.py [--workers 10,50,100,200] [--seconds 20]
Figures quoted in deploy/README.md ("What one master carries").
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
REPORT_INTERVAL_S = 3.0
WORKERS_PER_FAKE = 50
"""Simulated workers per helper process."""
TYPES = ("POST", "TTFT", "E2E", "ITL", "TPOT", "TOKENS/S", "IN_TOKENS", "OUT_TOKENS")
PATTERNS = ("active", "casual", "sporadic", "stress")

PROFILE = """name: bench-master
target: {url: "http://127.0.0.1:9", model: m}
patterns:
  active: {users: 1}
load: {shape: constant, users: 1, spawn_rate: 1}
run: {duration: 1h}
"""


def fake_workers(host: str, port: int, n: int, rows: int, requests: int, first: int = 0) -> None:
    """Child process: ``n`` simulated llmsoak workers (gevent), reporting until killed."""
    import gevent
    from locust import __version__ as locust_version
    from locust.stats import RequestStats

    from llmsoak.locust import internals
    from llmsoak.locust.results import RequestResult
    from llmsoak.locust.timeseries import REPORT_KEY, LLMState
    from llmsoak.locust.worker_auth import TOKEN_ENV, credentials
    from llmsoak.locust.worker_join import HELLO

    token = os.environ.get(TOKEN_ENV)
    names = [(t, f"/v1/chat/completions [{PATTERNS[i // len(TYPES) % len(PATTERNS)]}]")
             for i, t in enumerate(TYPES * ((rows + len(TYPES) - 1) // len(TYPES)))][:rows]

    def report(stats: RequestStats, state: LLMState) -> dict:
        rnd = random.Random()
        for method, name in names:
            for _ in range(requests):
                stats.log_request(method, name, rnd.uniform(5, 3000), 0)
        for pattern in PATTERNS:
            for _ in range(max(1, requests // 4)):
                state.record(pattern, RequestResult(status=200, ttft_ms=rnd.uniform(5, 500), e2e_ms=rnd.uniform(50, 3000),
                                                    itl_ms=[rnd.uniform(1, 30) for _ in range(16)], content_chunks=16,
                                                    input_tokens=200, output_tokens=16, finished=True))
        data = {"stats": stats.serialize_stats(), "stats_total": stats.total.get_stripped_report(),
                "errors": stats.serialize_errors(), "user_count": 4,
                "user_classes_count": {"ActiveUser": 4}, REPORT_KEY: state.take_report()}
        stats.errors = {}
        return data

    def worker(index: int) -> None:
        client_id = f"{socket.gethostname()}_bench{index:04d}"
        client = internals.rpc_client(host, port, client_id)
        client.send(internals.rpc_message(HELLO, credentials(HELLO, client_id, token), client_id))
        client.send(internals.rpc_message("client_ready", locust_version, client_id))
        stats, state = RequestStats(), LLMState(list(PATTERNS), role="worker")

        def drain() -> None:
            while True:
                client.recv()  # ack, spawn, heartbeats: read and ignore

        gevent.spawn(drain)
        gevent.sleep(random.uniform(0, REPORT_INTERVAL_S))  # real workers are not in phase
        ticks = 0
        while True:
            client.send(internals.rpc_message("heartbeat", {"state": "ready", "current_cpu_usage": 10.0,
                                                            "current_memory_usage": 50_000_000}, client_id))
            if ticks % int(REPORT_INTERVAL_S) == 0:
                client.send(internals.rpc_message("stats", report(stats, state), client_id))
            ticks += 1
            gevent.sleep(1.0)

    gevent.joinall([gevent.spawn(worker, first + i) for i in range(n)])


def merged_requests(path: Path) -> int:
    """The master's Aggregated request count (proof that it merged the reports)."""
    import csv

    try:
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("Name") == "Aggregated":
                    return int(row["Request Count"])
    except (OSError, ValueError, KeyError):
        pass
    return 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure(n: int, rows: int, requests: int, seconds: float, warmup_s: float) -> dict:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp) / "bench.yaml"
        profile.write_text(PROFILE)
        env = {**os.environ, "LLMSOAK_RUN_DIR": tmp, "PYTHONUNBUFFERED": "1"}
        master = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(REPO / "locustfiles" / "llm_chat.py"), "--profile",
             str(profile), "--master", "--headless", "--expect-workers", str(n), "--master-bind-host", "127.0.0.1",
             "--master-bind-port", str(port), "--run-time", "1h", "--only-summary", "--loglevel", os.environ.get("BENCH_LOGLEVEL", "WARNING"),
             "--csv", str(Path(tmp) / "stats")],
            env=env, stdout=subprocess.DEVNULL, stderr=open(Path(tmp) / "master.log", "w"), cwd=REPO)
        # the simulated workers in several processes (at most WORKERS_PER_FAKE each), so they keep up
        fakes = [subprocess.Popen([sys.executable, __file__, "--_fake", f"127.0.0.1:{port}", str(len(chunk)),
                                   str(rows), str(requests), str(chunk[0])], env=env, cwd=REPO)
                 for chunk in (range(n)[i:i + WORKERS_PER_FAKE] for i in range(0, n, WORKERS_PER_FAKE))]
        try:
            time.sleep(warmup_s)
            proc = psutil.Process(master.pid)
            mem0 = proc.memory_info().rss
            merged0 = merged_requests(Path(tmp) / "stats_stats.csv")
            cpu0 = proc.cpu_times()
            t0 = time.monotonic()
            time.sleep(seconds)
            cpu1 = proc.cpu_times()
            elapsed = time.monotonic() - t0
            merged1 = merged_requests(Path(tmp) / "stats_stats.csv")
            mem1 = proc.memory_info().rss
            alive = master.poll() is None and all(f.poll() is None for f in fakes)
            cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / elapsed * 100
            log = (Path(tmp) / "master.log").read_text(errors="replace")
            if os.environ.get("BENCH_LOGLEVEL"):
                print(log[-3000:])
        finally:
            for p in (*fakes, master):
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in (*fakes, master):
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    # What the master really merged (the simulated workers may fall behind their schedule):
    # requests counted in its Aggregated row during the window, / requests per row = rows.
    merged_per_s = (merged1 - merged0) / elapsed
    return {"workers": n, "nominal_rows_per_s": n * rows / REPORT_INTERVAL_S,
            "rows_per_s": merged_per_s / requests, "requests_per_s": merged_per_s, "cpu_percent": cpu,
            "rss_mib": mem1 / 2**20, "rss_growth_mib": (mem1 - mem0) / 2**20, "ok": alive,
            "warnings": sum("cpu threshold" in line or "Traceback" in line for line in log.splitlines())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="10,50,100,200", help="comma-separated worker counts")
    parser.add_argument("--rows", type=int, default=32, help="stats rows per worker report (32 = 4 patterns)")
    parser.add_argument("--requests", type=int, default=10, help="requests per row per report")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--_fake", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._fake:
        host, _, port = args._fake[0].rpartition(":")
        fake_workers(host, int(port), *(int(x) for x in args._fake[1:]))
        return 0
    print(f"master on this machine: {os.cpu_count()} cores; {args.rows} rows x {args.requests} requests "
          f"per worker report every {REPORT_INTERVAL_S:g} s; {args.seconds:g} s measured after {args.warmup:g} s")
    print(f"{'workers':>8} {'nominal rows/s':>15} {'merged rows/s':>14} {'requests/s':>11} {'master CPU %':>13} "
          f"{'RSS MiB':>8} {'RSS +MiB':>9} ok")
    for n in (int(x) for x in args.workers.split(",")):
        r = measure(n, args.rows, args.requests, args.seconds, args.warmup)
        print(f"{r['workers']:>8} {r['nominal_rows_per_s']:>15.0f} {r['rows_per_s']:>14.0f} {r['requests_per_s']:>11.0f} "
              f"{r['cpu_percent']:>13.1f} {r['rss_mib']:>8.1f} {r['rss_growth_mib']:>9.1f} "
              f"{'yes' if r['ok'] else 'NO'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
