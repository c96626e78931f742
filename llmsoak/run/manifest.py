"""``run.json``: the run's manifest, rewritten atomically (temp file + rename) on every change.

Schema 1 (keys; times are Unix seconds, durations seconds)::

    schema, id, profile_name, profile_source, status ("running" | "finished" | "stopped" |
    "failed"), created_at, ended_at, heartbeat_at, duration_s, checkpoint_interval_s,
    overrides {cli flag: value}, orchestrator {pid, create_time, hostname},
    segments [{index, started_at, ended_at, end_reason, locust_dir}],
    processes {name: {pid, create_time, argv, url?, started_by_us?}},
    checkpoints (count), last_checkpoint {...}, restarts {name: n},
    remote_sampler {url, offset_s, last_offset_s, rows_pulled, outages} (sampler.remote only),
    versions {llmsoak, locust, python, psutil, pandas}, host {hostname, platform, cpu_count,
    memory_bytes}, result {exit_code, verdict, slo [...]} (at the end)

The manifest stays small: per-checkpoint history lives in events.csv, not here.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import tempfile
import time
from pathlib import Path

SCHEMA_VERSION = 1


def write_json_atomic(path: str | os.PathLike, data: dict) -> None:
    """Write ``data`` as JSON to ``path`` so a reader (or a crash) never sees half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=False, default=str)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_json(path: str | os.PathLike) -> dict | None:
    """The JSON object in ``path``, or None when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def versions() -> dict:
    """Versions of what produced the run's numbers."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("llmsoak", "locust", "psutil", "pandas", "gevent", "geventhttpclient"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def host_info() -> dict:
    """Where the run ran: hostname, platform, cores, memory in bytes."""
    try:
        import psutil

        memory_bytes = int(psutil.virtual_memory().total)
    except Exception:  # psutil is a dependency; stay usable without it anyway
        memory_bytes = None
    return {"hostname": socket.gethostname(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "memory_bytes": memory_bytes}


def new_manifest(run_id: str, profile_name: str, profile_source: str, duration_s: float,
                 checkpoint_interval_s: float, overrides: dict) -> dict:
    """A fresh manifest for a run that is about to start."""
    now = time.time()
    return {
        "schema": SCHEMA_VERSION, "id": run_id, "profile_name": profile_name,
        "profile_source": profile_source, "status": "running", "created_at": now, "ended_at": None,
        "heartbeat_at": now, "duration_s": duration_s, "checkpoint_interval_s": checkpoint_interval_s,
        "overrides": overrides, "orchestrator": {}, "segments": [], "processes": {},
        "checkpoints": 0, "last_checkpoint": None, "restarts": {}, "resumes": 0,
        "versions": versions(), "host": host_info(), "result": None,
    }


def load_elapsed_s(manifest: dict, now: float | None = None) -> float:
    """Seconds of load so far: the sum of the segments' lengths (an open one counts up to ``now``)."""
    now = time.time() if now is None else now
    total = 0.0
    for seg in manifest.get("segments", []):
        start = seg.get("started_at")
        if start is None:
            continue
        end = seg.get("ended_at") or now
        total += max(0.0, float(end) - float(start))
    return total
