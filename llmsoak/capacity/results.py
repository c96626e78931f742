"""``RUN/capacity.json`` and ``RUN/capacity.csv``: what a sweep measured (docs/formats.md).

capacity.json history: schema 1 (2026-12) — first version.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

from llmsoak import __version__
from llmsoak.capacity.steps import PERCENTILES, Step
from llmsoak.rundir import CAPACITY_CSV, CAPACITY_JSON

SCHEMA = 1

CSV_COLUMNS = ("step", "role", "kind", "load", "window_s", "requests", "failures", "dropped", "achieved_rps",
               "output_tokens_per_s", "error_rate", "good", "goodput_share", "goodput_rps",
               *(f"{m}_p{p}_ms" for m in ("ttft", "itl", "tpot", "e2e") for p in PERCENTILES),
               "lag_p50_ms", "lag_p95_ms", "lag_max_ms", "generator_behind", "superseded", "meets_slo", "reasons")
"""capacity.csv: one row per step in the order measured; latencies in ms, rates per second."""


def to_json(sweep, profile, *, exit_code: int | None, verdict: list[str], processes: int, started_at: float,
            status: str = "finished") -> dict:
    """The capacity.json document; ``status`` ``running`` (rewritten after every step, the
    knee so far, ``exit_code`` null) or ``finished``."""
    cfg = profile.capacity
    slo = profile.slo
    return {
        "schema": SCHEMA,
        "status": status,
        "llmsoak_version": __version__,
        "profile": profile.name,
        "target": profile.target.url,
        "started_at": started_at,
        "ended_at": time.time(),
        "processes": processes,
        "host": os.uname().nodename,
        "settings": {"distribution": cfg.distribution, "burstiness": cfg.burstiness,
                     "max_in_flight": cfg.max_in_flight, "warmup_s": cfg.warmup_s, "measure_s": cfg.measure_s,
                     "steps": cfg.steps, "refine": cfg.refine},
        "slo": {"ttft_p95_ms": slo.ttft_p95_ms, "e2e_p95_ms": slo.e2e_p95_ms, "error_rate": slo.error_rate},
        "synchronous_rps": sweep.synchronous_rps,
        "max_throughput_rps": sweep.max_throughput_rps,
        "knee": {"rate_rps": sweep.rate_knee, "rate_bound": sweep.rate_bound,
                 "rate_next_fail_rps": sweep.rate_next_fail,
                 "users": sweep.users_knee, "users_bound": sweep.users_bound,
                 "users_next_fail": sweep.users_next_fail},
        "targets": {"rate_rps": cfg.target_rate, "users": cfg.target_users},
        "exit_code": exit_code,
        "verdict": verdict,
        "steps": [step.to_json() for step in sweep.steps],
    }


def _csv_row(number: int, step: Step) -> list:
    cells = [number, step.role, step.kind, step.load, step.window_s, step.requests, step.failures,
             step.dropped, step.achieved_rps, step.output_tokens_per_s, step.error_rate, step.good,
             step.goodput_share, step.goodput_rps]
    cells += [step.latency_ms[m][f"p{p}"] for m in ("ttft", "itl", "tpot", "e2e") for p in PERCENTILES]
    cells += [step.lag_ms["p50"], step.lag_ms["p95"], step.lag_ms["max"], int(step.generator_behind),
              int(step.superseded), int(step.meets_slo),
              "; ".join(step.reasons)]
    return ["" if c is None else c for c in cells]


def write(root: Path, doc: dict, steps: list[Step]) -> tuple[Path, Path]:
    """Write capacity.json and capacity.csv into ``root`` (each atomically); return their paths."""
    json_path, csv_path = root / CAPACITY_JSON, root / CAPACITY_CSV
    tmp = json_path.with_suffix(".json.next")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, json_path)
    tmp = csv_path.with_suffix(".csv.next")
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for i, step in enumerate(steps, 1):
            writer.writerow(_csv_row(i, step))
    os.replace(tmp, csv_path)
    return json_path, csv_path
