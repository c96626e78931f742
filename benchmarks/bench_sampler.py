"""Overhead of ``llmsoak sample`` and of the tracemalloc agent (figures quoted in docs/sampler.md).

Sampler: a tree of 10 processes (a parent and 9 children, ~20 MB each), sampled by a real
``llmsoak sample --pid ROOT --interval 1`` subprocess for ``--duration`` seconds. Reports the
sampler's CPU (percent of one core, after a 5 s start-up), its peak RSS, bytes per CSV row and
the extrapolated size of 168 hours at 1 s.

tracemalloc agent: an allocation-heavy loop (small dicts and lists) timed without tracing, and
under the agent with nframe 1 and nframe 10; each case runs in a fresh interpreter, median of
``--repeats`` runs, reported as a ratio to the untraced run.

Usage::

    .venv/bin/python benchmarks/bench_sampler.py [--duration 60] [--uss] [--skip-tracemalloc]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

TREE_PARENT = """
import subprocess, sys, time
ballast = bytearray(b"\\x01") * 20_000_000
kids = [subprocess.Popen([sys.executable, "-c",
        "import time; b = bytearray(b'\\\\x01') * 20_000_000; time.sleep(3600)"]) for _ in range(9)]
print("ready", flush=True)
time.sleep(3600)
"""

ALLOC_LOOP = """
import sys, time
if sys.argv[1] != "off":
    import llmsoak.tracemalloc_agent as t
    t.start(out=sys.argv[2], interval_s=1.0, nframe=int(sys.argv[1]), warmup_s=0.2)
def work(n):
    keep = []
    for i in range(n):
        d = {"i": i, "s": str(i), "l": [i, i + 1, i + 2]}
        if i % 100 == 0:
            keep.append(d)
    return len(keep)
t0 = time.perf_counter()
work(600_000)
print(time.perf_counter() - t0)
"""


def bench_sampler(duration_s: float, uss: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        parent = subprocess.Popen([sys.executable, "-c", TREE_PARENT], stdout=subprocess.PIPE, text=True)
        assert parent.stdout.readline().strip() == "ready"
        out = Path(tmp) / "bench.csv"
        cmd = [sys.executable, "-m", "llmsoak", "sample", "--pid", str(parent.pid), "--out", str(out),
               "--interval", "1", "--duration", str(duration_s + 6)]
        if uss:
            cmd.append("--uss")
        sampler = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        proc = psutil.Process(sampler.pid)
        try:
            time.sleep(5.0)  # start-up: imports, first attach
            cpu0, wall0 = proc.cpu_times(), time.monotonic()
            rss_peak = 0
            while time.monotonic() - wall0 < duration_s:
                rss_peak = max(rss_peak, proc.memory_info().rss)
                time.sleep(1.0)
            cpu1, wall1 = proc.cpu_times(), time.monotonic()
            sampler.wait(30)
        finally:
            for child in psutil.Process(parent.pid).children(recursive=True):
                child.kill()
            parent.kill()
            parent.wait()
        lines = out.read_bytes().splitlines(keepends=True)
        rows = lines[1:]
        bytes_per_row = sum(map(len, rows)) / len(rows)
        procs = {line.split(b",")[10] for line in rows}
        cpu_s = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
        return {
            "duration_s": round(wall1 - wall0, 1),
            "rows": len(rows),
            "num_procs": sorted(int(p) for p in procs),
            "cpu_percent_of_one_core": round(100 * cpu_s / (wall1 - wall0), 3),
            "rss_peak_mb": round(rss_peak / 1e6, 1),
            "bytes_per_row": round(bytes_per_row, 1),
            "csv_168h_mb": round(bytes_per_row * 168 * 3600 / 1e6, 1),
            "uss": uss,
        }


def bench_tracemalloc(repeats: int) -> dict:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("off", "1", "10"):
            times = []
            for i in range(repeats):
                out = subprocess.run([sys.executable, "-c", ALLOC_LOOP, mode, os.path.join(tmp, f"{mode}-{i}.jsonl")],
                                     capture_output=True, text=True, check=True)
                times.append(float(out.stdout.strip().splitlines()[-1]))
            results[mode] = statistics.median(times)
    return {
        "untraced_s": round(results["off"], 3),
        "nframe1_s": round(results["1"], 3),
        "nframe10_s": round(results["10"], 3),
        "nframe1_ratio": round(results["1"] / results["off"], 2),
        "nframe10_ratio": round(results["10"] / results["off"], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds (default 60)")
    parser.add_argument("--uss", action="store_true", help="sample with --uss (smaps) as well")
    parser.add_argument("--repeats", type=int, default=5, help="tracemalloc runs per case (default 5)")
    parser.add_argument("--skip-tracemalloc", action="store_true")
    args = parser.parse_args()
    try:
        import pynvml  # noqa: F401
        gpu = "nvidia-ml-py installed (NVML path active if a driver is present)"
    except ImportError:
        gpu = "nvidia-ml-py absent: GPU path off (empty gpu_* cells)"
    print(f"host: {psutil.cpu_count()} cpus, python {sys.version.split()[0]}, {gpu}")
    print("sampler, 10-process tree, 1 s:", bench_sampler(args.duration, uss=False), flush=True)
    if args.uss:
        print("sampler with --uss:", bench_sampler(args.duration, uss=True), flush=True)
    if not args.skip_tracemalloc:
        print("tracemalloc agent on an allocation-heavy loop:", bench_tracemalloc(args.repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
