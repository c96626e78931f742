"""``events.csv``: the run's timeline, ``timestamp,kind,detail``, appended by several processes.

Writers (orchestrator, samplers, Locust master, the web UI's alerts) each open the file in append
mode and write one whole line per ``write()``, so lines from different processes never
interleave. ``kind`` is one of :data:`llmsoak.formats.EVENT_KINDS`; ``detail`` is free text for a
person (``"sampler: target pid 812 exited"``). Format: docs/formats.md ("events.csv").
"""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path

from llmsoak.formats import EVENT_KINDS, EVENTS_COLUMNS

HEADER = ",".join(EVENTS_COLUMNS) + "\n"


def append_event(path: str | os.PathLike, kind: str, detail: str = "", timestamp: float | None = None) -> None:
    """Append one event line (creating the file with its header first if needed).

    ``kind`` must be one of EVENT_KINDS (ValueError otherwise: a reader could not know it);
    ``timestamp`` is Unix seconds, now when None.
    """
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r} (one of {', '.join(EVENT_KINDS)})")
    ts = time.time() if timestamp is None else timestamp
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([f"{ts:.3f}", kind, detail.replace("\n", " ")])
    line = buf.getvalue().encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if os.fstat(fd).st_size == 0:
            line = HEADER.encode() + line
        os.write(fd, line)
    finally:
        os.close(fd)


def read_events(path: str | os.PathLike) -> list[dict]:
    """Events as dicts ``{"timestamp": float, "kind": str, "detail": str}``; bad lines are skipped."""
    path = Path(path)
    if not path.exists():
        return []
    events = []
    with path.open(newline="", errors="replace") as fh:
        for row in csv.DictReader(fh):
            try:
                events.append({"timestamp": float(row["timestamp"]), "kind": row["kind"] or "",
                               "detail": row.get("detail") or ""})
            except (KeyError, TypeError, ValueError):
                continue
    return events
