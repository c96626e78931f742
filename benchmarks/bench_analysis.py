"""Benchmark: reading and analysing a 7-day, 1-s samples CSV (604,800 rows), and 1/4 and 1/2 of it.

Each size runs in a fresh subprocess (so peak RSS is per size, from ru_maxrss):
  1. ``core``: read_samples + analyze_metric on every metric column (this package's statistics);
  2. ``full``: ``llmsoak analyze RUN_DIR`` end to end (all metrics, charts, report); its peak RSS
     is that of the child process;
  3. ``floor``: a fresh Python that imports pandas and matplotlib (Agg, pyplot) and reads the same
     file with ``pandas.read_csv`` -- what any analysis with charts must pay -- run side by side
     with ``full`` (alternating), so the ratio full / floor compares like with like on a shared
     machine. The goal (docs/leak-statistics.md): full within 3x the floor at 7 days.
Run: .venv/bin/python benchmarks/bench_analysis.py [--sizes 151200,302400,604800] [--repeat 3]
Prints one line per size and stage: rows, median wall seconds, peak RSS MiB; then full / floor per
size and the ratio of seconds per row at the largest size to the smallest (1.0 = linear).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METRICS = ("rss_bytes", "uss_bytes", "vms_bytes", "cpu_percent", "num_threads", "num_fds")


def write_csv(path: Path, rows: int, seed: int = 0) -> None:
    """A sampler-like CSV at 1 s: a 2 MB/h leak under GC sawtooth and AR(1) noise, one restart."""
    import numpy as np
    import pandas as pd

    from llmsoak.analysis.corpus import ar1, sawtooth

    rng = np.random.default_rng(seed)
    t = np.arange(rows, dtype=float)
    restart = rows * 2 // 3
    pid = np.where(t < restart, 4242, 4343)
    create = np.where(t < restart, 1.7e9 - 60, 1.7e9 + restart - 1)
    since = np.where(t < restart, t, t - restart)
    rss = 8e8 + 2e6 * since / 3600 + sawtooth(t, 300, 3e7) + ar1(rows, 0.9, 2e6, rng)
    df = pd.DataFrame({
        "timestamp": 1.7e9 + t, "pid": pid, "create_time": create,
        "rss_bytes": rss.round(), "uss_bytes": (rss * 0.9).round(), "vms_bytes": (rss * 3).round(),
        "cpu_percent": (35 + 5 * rng.standard_normal(rows)).round(1),
        "num_threads": 24 + (rng.random(rows) < 0.01), "num_fds": 57 + (rng.random(rows) < 0.02),
    })
    df.to_csv(path, index=False)


def _core(csv_path: str) -> dict:
    t_imp = time.perf_counter()
    import pandas  # noqa: F401  (import cost reported apart: it is paid once per process)

    from llmsoak.analysis import analyze_metric, read_samples

    t0 = time.perf_counter()
    t_imp = t0 - t_imp

    frame = read_samples(csv_path)
    t_read = time.perf_counter() - t0
    verdicts = {m: analyze_metric(frame.df, m).verdict for m in METRICS}
    total = time.perf_counter() - t0
    return {"import_s": t_imp, "read_s": t_read, "total_s": total, "verdicts": verdicts,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


FLOOR_CODE = ("import resource,sys,time;t=time.perf_counter();import pandas,matplotlib;matplotlib.use('Agg');"
              "import matplotlib.pyplot;pandas.read_csv(sys.argv[1]);"
              "print(time.perf_counter()-t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024)")


def _child(stage: str, csv_path: str) -> dict:
    if stage == "floor":
        code = ("import resource,subprocess,sys,time;t=time.perf_counter();"
                "r=subprocess.run(sys.argv[1:],capture_output=True,text=True,check=True);"
                "print(time.perf_counter()-t, r.stdout.split()[1])")
        out = subprocess.run([sys.executable, "-c", code, sys.executable, "-c", FLOOR_CODE, csv_path],
                             capture_output=True, text=True, check=True)
        wall, rss = out.stdout.split()
        return {"total_s": float(wall), "peak_rss_mib": float(rss)}
    if stage == "core":
        out = subprocess.run([sys.executable, __file__, "--child", csv_path], check=True,
                             capture_output=True, text=True)
        return json.loads(out.stdout)
    run_dir = Path(csv_path).parent / "run"
    (run_dir / "samples").mkdir(parents=True, exist_ok=True)
    target = run_dir / "samples" / "target.csv"
    if not target.exists():
        os.link(csv_path, target)
    code = ("import resource,subprocess,sys,time;t=time.perf_counter();"
            "r=subprocess.run(sys.argv[1:],capture_output=True,text=True);"
            "print(r.returncode, time.perf_counter()-t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024);"
            "print(r.stderr[-500:], file=sys.stderr)")
    cmd = [sys.executable, "-c", code, sys.executable, "-m", "llmsoak", "analyze", str(run_dir),
           "--out", str(run_dir / "analysis")]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    rc, wall, rss = out.stdout.split()
    if int(rc) not in (0, 1, 3):
        return {"error": out.stderr.strip().splitlines()[-1:] or [f"exit {rc}"]}
    return {"total_s": float(wall), "peak_rss_mib": float(rss), "exit": int(rc)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="151200,302400,604800", help="comma-separated row counts")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size and stage (median reported)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_core(args.child)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    per_row = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rows in sizes:
            d = Path(tmp) / str(rows)
            d.mkdir()
            csv_path = d / "target.csv"
            t0 = time.perf_counter()
            write_csv(csv_path, rows)
            print(f"# wrote {rows} rows ({csv_path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f} s")
            # full and floor alternate, so that both see the same share of a busy machine
            measured = {"core": [_child("core", str(csv_path)) for _ in range(args.repeat)],
                        "full": [], "floor": []}
            for _ in range(args.repeat):
                for stage in ("full", "floor"):
                    measured[stage].append(_child(stage, str(csv_path)))
            walls = {}
            for stage, runs in measured.items():
                if "error" in runs[0]:
                    print(f"{stage:5s} rows={rows:7d}  not measured: {runs[0]['error']}")
                    continue
                wall = walls[stage] = statistics.median(r["total_s"] for r in runs)
                rss = max(r["peak_rss_mib"] for r in runs)
                extra = (f" (read={statistics.median(r['read_s'] for r in runs):.2f}s,"
                         f" +import {statistics.median(r['import_s'] for r in runs):.2f}s)") if stage == "core" else ""
                print(f"{stage:5s} rows={rows:7d}  wall={wall:6.2f}s{extra}  peak_rss={rss:6.0f} MiB")
                per_row.setdefault(stage, []).append(wall / rows)
            if "full" in walls and "floor" in walls:
                print(f"full / floor at rows={rows}: {walls['full'] / walls['floor']:.2f} (goal <= 3 at 604800)")
    for stage, values in per_row.items():
        if len(values) > 1:
            print(f"{stage}: seconds per row at {sizes[-1]} rows / at {sizes[0]} rows = {values[-1] / values[0]:.2f} (1.0 = linear)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
