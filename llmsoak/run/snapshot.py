"""Where a run stands, read only from its files (and the sampler's live endpoint): what the
progress line, ``--status`` and checkpoints show. Cheap: reads file tails, never whole files."""

from __future__ import annotations

import csv
import io
import json
import time
import urllib.request
from pathlib import Path

from llmsoak.run.manifest import load_elapsed_s, read_json
from llmsoak.run.processes import same_process
from llmsoak.rundir import LOCUST_SEGMENT_HISTORY, LOCUST_SEGMENT_STATS, RunDir

_TAIL_BYTES = 16 * 1024


def last_csv_rows(path: Path, n: int = 1) -> tuple[list[str], list[dict]]:
    """The header and the last ``n`` complete rows of a CSV (reads the head line and the tail only)."""
    try:
        with open(path, "rb") as fh:
            header_line = fh.readline().decode("utf-8", "replace")
            fh.seek(0, 2)
            size = fh.tell()
            start = max(len(header_line.encode()), size - _TAIL_BYTES)
            fh.seek(start)
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        return [], []
    header = next(csv.reader([header_line]), [])
    lines = tail.split("\n")
    if start > len(header_line.encode()):
        lines = lines[1:]  # first line of the window may be cut
    if lines and not tail.endswith("\n"):
        lines = lines[:-1]  # a row being written
    rows = [r for r in csv.reader(io.StringIO("\n".join(line for line in lines if line.strip())))]
    out = [dict(zip(header, r, strict=False)) for r in rows if len(r) == len(header)]
    return header, out[-n:]


def _float(value) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def locust_now(run: RunDir, manifest: dict) -> dict:
    """Users, req/s, failures/s and totals from the current segment's ``stats_history.csv``."""
    segments = manifest.get("segments") or []
    if not segments:
        return {}
    seg_dir = run.root / segments[-1].get("locust_dir", "")
    _, rows = last_csv_rows(seg_dir / LOCUST_SEGMENT_HISTORY, 5)
    rows = [r for r in rows if r.get("Name") == "Aggregated"]
    if not rows:
        return {}
    row = rows[-1]
    # Totals over all segments: finished segments' totals were recorded when they ended.
    done_requests = sum(s.get("requests") or 0 for s in segments[:-1])
    done_failures = sum(s.get("failures") or 0 for s in segments[:-1])
    total_req = _float(row.get("Total Request Count")) or 0.0
    total_fail = _float(row.get("Total Failure Count")) or 0.0
    return {"users": _float(row.get("User Count")), "rps": _float(row.get("Requests/s")),
            "fail_per_s": _float(row.get("Failures/s")),
            "requests_total": done_requests + total_req, "failures_total": done_failures + total_fail}


def segment_totals(seg_dir: Path) -> dict:
    """Requests and failures a finished segment served: Locust's final ``stats_stats.csv`` (written
    at its end), else the last Aggregated row of its history (a Locust that was killed)."""
    _, rows = last_csv_rows(seg_dir / LOCUST_SEGMENT_STATS, 1)
    rows = [r for r in rows if r.get("Name") == "Aggregated"]
    if rows and _float(rows[-1].get("Request Count")) is not None:
        return {"requests": int(_float(rows[-1].get("Request Count")) or 0),
                "failures": int(_float(rows[-1].get("Failure Count")) or 0)}
    _, rows = last_csv_rows(seg_dir / LOCUST_SEGMENT_HISTORY, 5)
    rows = [r for r in rows if r.get("Name") == "Aggregated"]
    if not rows:
        return {"requests": 0, "failures": 0}
    return {"requests": int(_float(rows[-1].get("Total Request Count")) or 0),
            "failures": int(_float(rows[-1].get("Total Failure Count")) or 0)}


def target_memory_now(run: RunDir, manifest: dict) -> dict:
    """The target's latest sample: from the sampler's live endpoint, else the samples CSV's tail."""
    rec = (manifest.get("processes") or {}).get("sampler_target") or {}
    url = rec.get("url")
    if url and same_process(rec.get("pid"), rec.get("create_time")):
        try:
            with urllib.request.urlopen(url + "/api/latest", timeout=1.0) as resp:
                sample = json.loads(resp.read()).get("sample") or {}
            if sample.get("rss_bytes") is not None:
                return {"rss_bytes": _float(sample.get("rss_bytes")), "at": _float(sample.get("timestamp"))}
        except (OSError, ValueError, AttributeError):
            pass
    _, rows = last_csv_rows(run.target_samples, 1)
    if rows:
        return {"rss_bytes": _float(rows[-1].get("rss_bytes")), "at": _float(rows[-1].get("timestamp"))}
    return {}


def snapshot(run: RunDir, manifest: dict | None = None) -> dict:
    """Everything ``--status`` prints, as a dict (times in s, memory in bytes)."""
    manifest = manifest if manifest is not None else (read_json(run.manifest) or {})
    now = time.time()
    duration_s = float(manifest.get("duration_s") or 0.0)
    status = manifest.get("status")
    elapsed_s = load_elapsed_s(manifest, now if status == "running" else manifest.get("heartbeat_at") or now)
    orch = manifest.get("orchestrator") or {}
    alive = same_process(orch.get("pid"), orch.get("create_time"))
    if status == "running" and not alive:
        status = "interrupted (orchestrator not running: resume it)"
    checkpoint = read_json(run.checkpoint) or {}
    final = read_json(run.verdict) if manifest.get("status") in ("finished", "stopped") else None
    if final:  # an ended run: its final analysis, not the last interim one
        checkpoint = {"timestamp": manifest.get("ended_at"), "verdict": final}
    result = manifest.get("result") or {}
    metric = ((checkpoint.get("verdict") or {}).get("metrics") or {}).get("rss_bytes") or {}
    return {
        "id": manifest.get("id"), "profile": manifest.get("profile_name"), "status": status,
        "elapsed_s": elapsed_s, "remaining_s": max(0.0, duration_s - elapsed_s), "duration_s": duration_s,
        "segments": len(manifest.get("segments") or []), "restarts": manifest.get("restarts") or {},
        **locust_now(run, manifest),
        # An ended run: the final totals (the ones its SLO gate judged), not the last history row.
        **({"requests_total": result["requests"], "failures_total": result.get("failures")}
           if result.get("requests") is not None else {}),
        "memory_now_bytes": target_memory_now(run, manifest).get("rss_bytes"),
        "checkpoint_at": checkpoint.get("timestamp"),
        "verdict": (checkpoint.get("verdict") or {}).get("verdict"),
        "slope_per_hour": metric.get("slope_per_hour"), "projected_7d": metric.get("projected_7d"),
        "result": manifest.get("result"), "running": status == "running",
    }
