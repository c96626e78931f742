"""Synthetic run directories for the analysis tests: realistic files, known ground truth.

``make_run_dir(path, leak_mib_per_hour=...)`` writes what ``llmsoak run`` leaves behind:
samples/<target>.csv (every sampler column, GC sawtooth and AR(1) noise on RSS, optional
restarts), samples/locust.csv, events.csv, llm_timeseries.csv (per minute, per pattern and
"all", busy/quiet load cycles), locust/stats.csv + stats_history.csv, profile.yaml and optionally
tracemalloc/*.jsonl. When ``leak_follows_load`` the leak is a fixed number of bytes per request,
so memory only grows while requests are served.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

MIB = 1024 * 1024
T0 = 1_790_000_000.0
PATTERNS = ("active", "casual")


def _ar1(n: int, phi: float, sigma: float, rng: np.random.Generator) -> np.ndarray:
    e = rng.normal(0.0, sigma, n)
    out = np.empty(n)
    acc = 0.0
    for i in range(n):  # n is small in tests (a few thousand)
        acc = phi * acc + e[i]
        out[i] = acc
    return out


def make_run_dir(root: Path, *, hours: float = 6.0, interval_s: float = 10.0,
                 leak_mib_per_hour: float = 0.0, leak_follows_load: bool = True,
                 restarts_at_h: tuple[float, ...] = (), with_llm: bool = True, with_locust: bool = True,
                 with_generator: bool = True, with_tracemalloc: bool = False, target: str = "stub",
                 seed: int = 1, limit: str | None = None) -> Path:
    """Write a complete synthetic run directory at ``root`` and return it."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "samples").mkdir(parents=True, exist_ok=True)
    t = T0 + np.arange(0.0, hours * 3600.0, interval_s)
    n = len(t)
    minutes = T0 + np.arange(0.0, hours * 3600.0, 60.0)
    # Load: 40 busy minutes, then 20 quiet minutes with a trickle of requests.
    busy = ((minutes - T0) // 60 % 60) < 40
    req_per_min = np.where(busy, 600.0, 6.0) * rng.uniform(0.9, 1.1, len(minutes))

    # Restarts: new pid/create_time; memory starts from the base again.
    seg = np.searchsorted(np.array(restarts_at_h) * 3600.0 + T0, t, side="right")
    seg_start = np.concatenate([[T0], np.array(restarts_at_h) * 3600.0 + T0])[seg]
    pid = 4000 + seg
    create_time = seg_start - 2.0

    base = 400 * MIB
    if leak_mib_per_hour:
        if leak_follows_load:
            minute_idx = np.clip(((t - T0) // 60).astype(int), 0, len(minutes) - 1)
            cum_req = np.cumsum(req_per_min)
            mean_rate = req_per_min.mean() * 60.0  # requests per hour
            per_req = leak_mib_per_hour * MIB / mean_rate
            seg_req0 = np.interp(seg_start, minutes, cum_req)
            growth = per_req * (cum_req[minute_idx] - seg_req0)
        else:
            growth = leak_mib_per_hour * MIB * (t - seg_start) / 3600.0
    else:
        growth = np.zeros(n)
    gc = 30 * MIB * (((t - T0) % 300.0) / 300.0)  # 5-minute GC sawtooth
    noise = _ar1(n, 0.8, 0.5 * MIB, rng)
    rss = base + growth + gc + noise
    df = pd.DataFrame({
        "timestamp": t, "pid": pid, "create_time": create_time, "rss_bytes": rss.round(),
        "uss_bytes": (rss - 40 * MIB).round(), "vms_bytes": (rss * 3).round(), "swap_bytes": 0,
        "cpu_percent": np.clip(np.interp(t, minutes, np.where(busy, 85.0, 4.0)) + rng.normal(0, 3, n), 0, None).round(1),
        "num_threads": 24 + (rng.random(n) < 0.05), "num_fds": 40 + rng.integers(0, 3, n), "num_procs": 1,
        "read_bytes": np.cumsum(rng.integers(0, 4096, n)), "write_bytes": np.cumsum(rng.integers(0, 4096, n)),
        "host_available_bytes": 20 * 1024 * MIB, "cgroup_memory_bytes": "", "gpu_memory_bytes": "",
        "gpu_util_percent": "",
    })
    df.to_csv(root / "samples" / f"{target}.csv", index=False)
    if with_generator:
        pd.DataFrame({"timestamp": t, "pid": 9000, "create_time": T0 - 5, "rss_bytes": (120 * MIB + rng.normal(0, MIB, n)).round(),
                      "cpu_percent": np.clip(rng.normal(30, 5, n), 0, None).round(1)}).to_csv(
            root / "samples" / "locust.csv", index=False)

    events = ["timestamp,kind,detail", f"{T0:.3f},start,run started"]
    events += [f"{T0 + h * 3600:.3f},restart,target restarted" for h in restarts_at_h]
    events.append(f"{t[-1]:.3f},stop,run finished")
    (root / "events.csv").write_text("\n".join(events) + "\n")

    if with_llm:
        rows = []
        for i, m in enumerate(minutes):
            total = req_per_min[i]
            users = 50 if busy[i] else 2
            ttft = 120.0 + 10 * rng.standard_normal()
            for name, share in (("active", 0.7), ("casual", 0.3), ("all", 1.0)):
                reqs = round(total * share)
                fails = int(rng.poisson(reqs * 0.01))
                rows.append({
                    "timestamp": m, "pattern": name, "users": round(users * share), "requests": reqs,
                    "failures": fails, "fail_http": fails // 2, "fail_timeout": fails - fails // 2,
                    "fail_disconnect": 0, "fail_malformed": 0, "fail_empty": 0, "fail_other": 0,
                    "ttft_p50_ms": ttft, "ttft_p95_ms": ttft * 2, "ttft_p99_ms": ttft * 3,
                    "itl_p50_ms": 12.0, "itl_p95_ms": 25.0, "tpot_p50_ms": 13.0,
                    "e2e_p50_ms": 900.0, "e2e_p95_ms": 1800.0, "e2e_p99_ms": 2500.0,
                    "input_tokens": reqs * 200, "output_tokens": reqs * 64,
                    "tokens_per_s": reqs * 64 / 60.0})
        pd.DataFrame(rows).to_csv(root / "llm_timeseries.csv", index=False)
    if with_locust:
        (root / "locust").mkdir(exist_ok=True)
        total_req = int(req_per_min.sum())
        pd.DataFrame([
            {"Type": "POST", "Name": "/chat", "Request Count": total_req - 500, "Failure Count": 10},
            {"Type": "DELETE", "Name": "/chat/{session_id}", "Request Count": 500, "Failure Count": 0},
            {"Type": "", "Name": "Aggregated", "Request Count": total_req, "Failure Count": 10},
        ]).to_csv(root / "locust" / "stats.csv", index=False)
        hist_t = T0 + np.arange(0.0, hours * 3600.0, 5.0)
        cum = np.interp(hist_t, minutes, np.cumsum(req_per_min))
        pd.DataFrame({"Timestamp": hist_t.astype(int), "User Count": 50, "Type": "", "Name": "Aggregated",
                      "Requests/s": 10.0, "Failures/s": 0.0, "50%": 900, "95%": 1800, "99%": 2500,
                      "Total Request Count": cum.astype(int), "Total Failure Count": 0}).to_csv(
            root / "locust" / "stats_history.csv", index=False)
    # A resolved profile as `llmsoak run` writes it validates; the analysis reads it with load_profile.
    profile = "name: synthetic\ntarget: {url: 'http://127.0.0.1:8000', model: m}\nslo:\n"
    profile += f"  memory_limit_bytes: {limit}\n" if limit else "  ttft_p95_ms: 2000\n"
    (root / "profile.yaml").write_text(profile)
    (root / "run.json").write_text(json.dumps({"schema": 1, "profile": "synthetic", "start": T0}))
    if with_tracemalloc:
        (root / "tracemalloc").mkdir(exist_ok=True)
        lines = []
        for k in range(1, 13):
            el = k * 1800.0
            lines.append(json.dumps({"timestamp": T0 + el, "elapsed_s": el, "traced_bytes": 50 * MIB + k * 2 * MIB,
                                     "top": [{"file": "app/sessions.py", "line": 42, "size_diff_bytes": k * 2 * MIB,
                                              "count_diff": k * 1000, "size_bytes": 10 * MIB + k * 2 * MIB},
                                             {"file": "app/cache.py", "line": 7, "size_diff_bytes": 4096,
                                              "count_diff": 3, "size_bytes": MIB}]}))
        lines.append("{not json")
        (root / "tracemalloc" / "app.jsonl").write_text("\n".join(lines) + "\n")
    return root
