"""Reading a samples CSV from a timestamp on, for the live endpoint's ``/api/rows?since=TS``.

The file is the sampler's own (append-only, one row per line, timestamps strictly increasing:
see samples_writer.py), so the first row after ``since`` is found by bisecting byte offsets, and
a page is read line by line from there: the cost is O(log size + page), never the whole file,
and nothing of the file is held in memory beyond one page's lines being sent.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from typing import BinaryIO

PAGE_ROWS_DEFAULT = 2000
"""Rows per ``/api/rows`` reply when the client does not say (``limit``)."""
PAGE_ROWS_MAX = 10_000
"""Most rows one reply carries; the client asks again from the last row it got."""
_LINEAR_SCAN_BYTES = 8192
EVENTS_SLACK_S = 60.0
"""events.csv has several writers, each stamping its line just before writing it: lines are in
time order only to within this (generous) margin, so a search for ``since`` starts this much earlier."""


def _timestamp(line: bytes) -> float | None:
    try:
        return float(line.split(b",", 1)[0])
    except ValueError:
        return None


def offset_after(fh: BinaryIO, since: float | None) -> int:
    """Byte offset of the first whole row whose timestamp is > ``since`` (after the header)."""
    fh.seek(0)
    header = fh.readline()
    lo = len(header)
    size = os.fstat(fh.fileno()).st_size
    if since is None:
        return lo
    hi = size  # invariant: lo and hi are line starts (or the end); the answer lies in [lo, hi]
    while hi - lo > _LINEAR_SCAN_BYTES:
        mid = (lo + hi) // 2
        fh.seek(mid)
        fh.readline()  # to the next line start
        start = fh.tell()
        if start >= hi:
            break
        line = fh.readline()
        if not line.endswith(b"\n"):
            hi = start  # a partial last line: nothing complete from here
            continue
        ts = _timestamp(line)
        if ts is None or ts <= since:
            lo = start + len(line)
        else:
            hi = start
    fh.seek(lo)
    pos = lo
    while pos < hi:
        line = fh.readline()
        if not line.endswith(b"\n"):
            return pos
        ts = _timestamp(line)
        if ts is not None and ts > since:
            return pos
        pos += len(line)
    return pos


def read_page(path: str | os.PathLike, since: float | None, limit: int) -> tuple[bytes, list[bytes], bool]:
    """``(header line, up to limit row lines after since, more)``; ``more`` when rows were left.

    Only complete lines (ending in a newline) are returned: a row the sampler is writing right
    now comes with the next page. Raises OSError when the file cannot be read.
    """
    with open(path, "rb") as fh:
        start = offset_after(fh, since)
        fh.seek(0)
        header = fh.readline()
        fh.seek(start)
        rows: list[bytes] = []
        for line in _whole_lines(fh):
            if len(rows) >= limit:
                return header, rows, True
            if _timestamp(line) is None:
                continue  # a damaged row: the writer never produces one, a copied file might
            rows.append(line)
        return header, rows, False


def _whole_lines(fh: BinaryIO) -> Iterator[bytes]:
    while True:
        line = fh.readline()
        if not line.endswith(b"\n"):
            return
        yield line


def events_after(path: str | os.PathLike, since: float, limit: int) -> list[dict]:
    """Up to ``limit`` events of an events.csv (``timestamp,kind,detail``) after ``since``,
    oldest first, as ``{"timestamp", "kind", "detail"}``; [] when the file does not exist."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return []
    events: list[dict] = []
    with fh:
        fh.seek(offset_after(fh, since - EVENTS_SLACK_S))
        for line in _whole_lines(fh):
            try:
                ts_text, kind, detail = next(csv.reader([line.decode(errors="replace")]))
                ts = float(ts_text)
            except (ValueError, StopIteration):
                continue
            if ts > since:
                events.append({"timestamp": ts, "kind": kind, "detail": detail})
                if len(events) >= limit:
                    break
    return events
