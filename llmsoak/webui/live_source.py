"""The sampler's live endpoint, read from the Locust master: latest sample, recent ring, history.

The sampler (``llmsoak sample --listen 127.0.0.1:PORT``) serves ``/api/latest``,
``/api/samples?since=UNIX_TS``, ``/api/history`` and ``/api/events`` (docs/formats.md, "Sampler
live endpoint"). This module
polls it with short timeouts and keeps what the Soak page needs, bounded for a week-long run:

- recent samples at full resolution for at most ``RECENT_WINDOW_S`` (fetched incrementally with
  ``since=`` so each poll moves only the new rows);
- the per-minute history (refetched at most once a minute; the sampler caps it at 7 days and so
  do we);
- the sampler's last events (at most ``EVENTS_MAX``);
- the target's own gauges (``/api/server``, when the sampler scrapes its /metrics): the last hour
  at full resolution, then one row per minute for 7 days, kept here as they arrive.

Only the columns the page draws are kept (``KEEP_COLUMNS``), as tuples, not dicts.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections import deque
from urllib.parse import urlsplit

from llmsoak.formats import HISTORY_EXTRA_COLUMNS, SAMPLES_ID_COLUMNS

RECENT_WINDOW_S = 3600.0
RECENT_MAX_ROWS = 36_000
HISTORY_MAX_ROWS = 10_080
HISTORY_REFRESH_S = 60.0
EVENTS_MAX = 200
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
"""A week of per-minute history is about 2 MB of JSON; anything far larger is not a sampler."""

KEEP_COLUMNS = (*SAMPLES_ID_COLUMNS, "rss_bytes", "uss_bytes", "cpu_percent", "cgroup_memory_bytes",
                "gpu_memory_bytes", "gpu_util_percent", "num_threads", "num_fds")
"""The samples columns (llmsoak/formats.py) the Soak page draws."""


def normalise_sampler_url(url: str) -> str:
    """``127.0.0.1:9100`` or ``http://127.0.0.1:9100/`` → ``http://127.0.0.1:9100`` (no trailing slash).

    Raises ValueError naming the problem for anything that is not an http(s) URL with a port.
    """
    url = (url or "").strip()
    if not url:
        raise ValueError("sampler URL is empty")
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"sampler URL {url!r} is not an http://HOST:PORT address")
    try:
        port = parts.port
    except ValueError as err:
        raise ValueError(f"sampler URL {url!r} has a bad port") from err
    if port in (None, 0):
        raise ValueError(f"sampler URL {url!r} needs a port other than 0 (the sampler prints its real port)")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _select(columns: list, rows: list, wanted: tuple[str, ...]) -> tuple[tuple[str, ...], list[tuple]]:
    """Project ``rows`` (lists in ``columns`` order) onto the ``wanted`` columns that exist."""
    index = [(name, columns.index(name)) for name in wanted if name in columns]
    names = tuple(name for name, _ in index)
    out = []
    for row in rows:
        if not isinstance(row, (list, tuple)):
            continue
        out.append(tuple(row[i] if i < len(row) else None for _, i in index))
    return names, out


class SamplerSource:
    """Polls one sampler live endpoint; every public attribute is safe to read between polls.

    ``status`` is ``"unconfigured"`` (no URL), ``"unreachable"`` (last poll failed, see ``error``)
    or the sampler's own status (``"attached"``/``"waiting"``).
    """

    def __init__(self, url: str | None, *, timeout_s: float = 2.0, clock=time.time) -> None:
        self.url = normalise_sampler_url(url) if url else None
        self.timeout_s = timeout_s
        self._clock = clock
        self.status = "unconfigured" if self.url is None else "waiting"
        self.error: str | None = None
        self.latest: dict | None = None
        """The sampler's ``/api/latest`` object (name, status, pid, interval_s, segment, sample)."""
        self.recent_columns: tuple[str, ...] = ()
        self.recent: deque[tuple] = deque(maxlen=RECENT_MAX_ROWS)
        self.history_columns: tuple[str, ...] = ()
        self.history: list[tuple] = []
        self.events: deque[dict] = deque(maxlen=EVENTS_MAX)
        self.server_columns: tuple[str, ...] = ()
        self.server_recent: deque[tuple] = deque(maxlen=RECENT_MAX_ROWS)
        self.server_minutes: deque[tuple] = deque(maxlen=HISTORY_MAX_ROWS)
        """The last row of each minute that left the recent window (7 days)."""
        self._server_ts: float | None = None
        self.polls = 0
        self.failures = 0
        self._last_ts: float | None = None
        self._history_at = 0.0

    # ------------------------------------------------------------------ fetching
    def _get(self, path: str) -> dict:
        assert self.url is not None
        headers = {"Accept": "application/json"}
        if os.environ.get("LLMSOAK_SAMPLER_TOKEN"):  # a sampler off loopback requires it (docs/sampler.md)
            headers["Authorization"] = "Bearer " + os.environ["LLMSOAK_SAMPLER_TOKEN"]
        req = urllib.request.Request(self.url + path, headers=headers)
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 - http(s) only
            body = resp.read(MAX_RESPONSE_BYTES + 1)
        if len(body) > MAX_RESPONSE_BYTES:
            raise ValueError(f"{path} answered more than {MAX_RESPONSE_BYTES} bytes")
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError(f"{path} did not answer a JSON object")
        return data

    def poll(self) -> bool:
        """Fetch what is new; returns True when the sampler answered. Never raises for network errors."""
        if self.url is None:
            return False
        self.polls += 1
        try:
            self.latest = self._get("/api/latest")
            since = "" if self._last_ts is None else f"?since={self._last_ts!r}"
            self._add_recent(self._get("/api/samples" + since))
            if "server" in self.latest:  # the sampler scrapes the target's /metrics
                server_since = "" if self._server_ts is None else f"?since={self._server_ts!r}"
                self._add_server(self._get("/api/server" + server_since))
            now = self._clock()
            if now - self._history_at >= HISTORY_REFRESH_S or not self.history:
                self._set_history(self._get("/api/history"))
                self._set_events(self._get("/api/events"))
                self._history_at = now
        except (OSError, ValueError, urllib.error.URLError) as err:  # JSONDecodeError is a ValueError
            self.failures += 1
            self.status = "unreachable"
            self.error = f"sampler at {self.url} did not answer: {getattr(err, 'reason', err)}"
            return False
        self.status = str(self.latest.get("status") or "waiting")
        self.error = None
        return True

    def _add_recent(self, data: dict) -> None:
        columns, rows = _select(list(data.get("columns") or []), list(data.get("rows") or []), KEEP_COLUMNS)
        if "timestamp" not in columns:
            return
        if columns != self.recent_columns:
            self.recent.clear()
            self.recent_columns = columns
        ti = columns.index("timestamp")
        for row in rows:
            ts = row[ti]
            if not isinstance(ts, (int, float)) or (self._last_ts is not None and ts <= self._last_ts):
                continue
            self.recent.append(row)
            self._last_ts = float(ts)
        horizon = self._clock() - RECENT_WINDOW_S
        while self.recent and (self.recent[0][ti] or 0) < horizon:
            self.recent.popleft()

    def _add_server(self, data: dict) -> None:
        columns = tuple(data.get("columns") or ())
        if "timestamp" not in columns:
            return
        if columns != self.server_columns:
            self.server_recent.clear()
            self.server_minutes.clear()
            self.server_columns = columns
        for row in data.get("rows") or []:
            if not isinstance(row, (list, tuple)) or len(row) != len(columns):
                continue
            ts = row[0]
            if not isinstance(ts, (int, float)) or (self._server_ts is not None and ts <= self._server_ts):
                continue
            self.server_recent.append(tuple(row))
            self._server_ts = float(ts)
        horizon = self._clock() - RECENT_WINDOW_S
        while self.server_recent and (self.server_recent[0][0] or 0) < horizon:
            old = self.server_recent.popleft()
            if self.server_minutes and int(self.server_minutes[-1][0] // 60) == int(old[0] // 60):
                self.server_minutes[-1] = old  # keep the minute's last row
            else:
                self.server_minutes.append(old)

    def server_latest(self) -> dict | None:
        """The target's newest gauges ``{column: value}``; None when the sampler does not scrape them."""
        if not self.latest or "server" not in self.latest:
            return None
        row = self.latest.get("server")
        return dict(row) if isinstance(row, dict) else {}

    def server_series(self, column: str, *, max_points: int = 1500) -> list[list]:
        """``[[timestamp, value], ...]`` of one server gauge: per-minute rows, then the last hour."""
        if column not in self.server_columns:
            return []
        ci = self.server_columns.index(column)
        points = [[r[0], r[ci]] for rows in (self.server_minutes, self.server_recent) for r in rows
                  if r[ci] is not None]
        if len(points) > max_points:
            step = -(-len(points) // max_points)
            points = points[::step] + ([points[-1]] if (len(points) - 1) % step else [])
        return points

    def _set_history(self, data: dict) -> None:
        columns, rows = _select(list(data.get("columns") or []), list(data.get("rows") or []),
                                KEEP_COLUMNS + HISTORY_EXTRA_COLUMNS)
        self.history_columns = columns
        self.history = rows[-HISTORY_MAX_ROWS:]

    def _set_events(self, data: dict) -> None:
        events = data.get("events") or []
        self.events.clear()
        for event in events[-EVENTS_MAX:]:
            if isinstance(event, dict):
                self.events.append({"timestamp": event.get("timestamp"), "kind": str(event.get("kind", "")),
                                    "detail": str(event.get("detail", ""))[:500]})

    # ------------------------------------------------------------------ views
    def latest_sample(self) -> dict:
        """The newest sample as ``{column: value}`` (empty when none yet)."""
        sample = (self.latest or {}).get("sample")
        return dict(sample) if isinstance(sample, dict) else {}

    def series(self, column: str, *, max_points: int = 1500) -> list[list]:
        """``[[timestamp, value], ...]`` for ``column``: the history before the recent ring, then the ring.

        Thinned by striding to at most ``max_points`` so a week draws quickly in a browser.
        """
        points: list[list] = []
        first_recent = None
        if "timestamp" in self.recent_columns and column in self.recent_columns:
            ti, ci = self.recent_columns.index("timestamp"), self.recent_columns.index(column)
            recent = [[r[ti], r[ci]] for r in self.recent if r[ci] is not None]
            first_recent = recent[0][0] if recent else None
        else:
            recent = []
        if "timestamp" in self.history_columns and column in self.history_columns:
            ti, ci = self.history_columns.index("timestamp"), self.history_columns.index(column)
            points = [[r[ti], r[ci]] for r in self.history
                      if r[ci] is not None and (first_recent is None or r[ti] < first_recent)]
        points.extend(recent)
        if len(points) > max_points:
            step = -(-len(points) // max_points)
            points = points[::step] + ([points[-1]] if (len(points) - 1) % step else [])
        return points

    def frame_rows(self) -> tuple[tuple[str, ...], list[tuple]]:
        """Rows for the trend: the per-minute history when it spans more than the recent ring, else the ring."""
        if len(self.history) >= 30 and "rss_bytes" in self.history_columns:
            return self.history_columns, list(self.history)
        return self.recent_columns, list(self.recent)
