"""The live endpoint (``--listen 127.0.0.1:PORT``): latest samples as JSON and Prometheus text.

Routes (documented in docs/formats.md, "Sampler live endpoint", and docs/sampler.md):
``/api/latest``, ``/api/samples?since=UNIX_TS``, ``/api/history``, ``/api/events``, ``/metrics``.
Memory is bounded for a week: the full-resolution ring holds at most one hour (and at most
36,000 rows), the per-minute history at most 10,080 rows (7 days), events at most 1,000.
"""

from __future__ import annotations

import json
import math
import socket
import threading
from collections import deque
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from llmsoak.errors import EXIT_BAD_INPUT, CommandError
from llmsoak.formats import HISTORY_EXTRA_COLUMNS, SAMPLES_ID_COLUMNS, SERVER_METRICS_COLUMNS

RING_SECONDS = 3600
RING_MAX_ROWS = 36_000
HISTORY_MAX_ROWS = 10_080
EVENTS_MAX = 1000


class LiveState:
    """Thread-safe, bounded view of the sampler's recent output."""

    def __init__(self, name: str, selector: str, interval_s: float, columns: Sequence[str]) -> None:
        self.name = name
        self.selector = selector
        self.interval_s = interval_s
        self.columns = list(columns)
        self.history_columns = self.columns + list(HISTORY_EXTRA_COLUMNS)
        self.status = "waiting"
        self.pid: int | None = None
        self.segment = 0
        self._lock = threading.Lock()
        self._ring: deque[list] = deque(maxlen=min(RING_MAX_ROWS, max(1, math.ceil(RING_SECONDS / interval_s))))
        self._history: deque[list] = deque(maxlen=HISTORY_MAX_ROWS)
        self._minute: int | None = None
        self._minute_row: list | None = None
        self._minute_rss_min: float | None = None
        self._events: deque[dict] = deque(maxlen=EVENTS_MAX)
        self._latest: dict | None = None
        self.server_columns = list(SERVER_METRICS_COLUMNS)
        self.server_enabled = False
        """True when the sampler scrapes the target's /metrics (``--metrics-format server``)."""
        self._server_ring: deque[list] = deque(maxlen=self._ring.maxlen)
        self._server_latest: dict | None = None

    def set_status(self, status: str, pid: int | None, segment: int) -> None:
        with self._lock:
            self.status, self.pid, self.segment = status, pid, segment

    def add_event(self, timestamp: float, kind: str, detail: str) -> None:
        with self._lock:
            self._events.append({"timestamp": round(timestamp, 3), "kind": kind, "detail": detail})

    def add_sample(self, sample: dict) -> None:
        row = [sample.get(c) for c in self.columns]
        minute = int(sample["timestamp"] // 60)
        rss = sample.get("rss_bytes")
        with self._lock:
            self._latest = dict(zip(self.columns, row, strict=True))
            self._ring.append(row)
            if self._minute is not None and minute != self._minute and self._minute_row is not None:
                self._history.append(self._minute_row + [self._minute_rss_min])
                self._minute_rss_min = None
            self._minute, self._minute_row = minute, row
            if rss is not None and (self._minute_rss_min is None or rss < self._minute_rss_min):
                self._minute_rss_min = rss

    def add_server_row(self, row: dict) -> None:
        """One row of the target's own gauges (SERVER_METRICS_COLUMNS), as written to server_metrics.csv."""
        values = [row.get(c) for c in self.server_columns]
        with self._lock:
            self._server_latest = dict(zip(self.server_columns, values, strict=True))
            self._server_ring.append(values)

    def latest(self) -> dict:
        with self._lock:
            out = {"name": self.name, "selector": self.selector, "status": self.status,
                   "pid": self.pid, "interval_s": self.interval_s, "segment": self.segment,
                   "sample": dict(self._latest) if self._latest else None}
            if self.server_enabled:
                out["server"] = dict(self._server_latest) if self._server_latest else None
            return out

    def server(self, since: float | None) -> dict:
        """The target's gauges of the last hour (``/api/server``), rows newer than ``since``."""
        with self._lock:
            rows = [list(r) for r in self._server_ring if since is None or r[0] > since]
        return {"name": self.name, "columns": self.server_columns, "rows": rows}

    def samples(self, since: float | None) -> dict:
        with self._lock:
            rows = [list(r) for r in self._ring if since is None or r[0] > since]
        return {"name": self.name, "columns": self.columns, "rows": rows}

    def history(self) -> dict:
        with self._lock:
            rows = [list(r) for r in self._history]
            if self._minute_row is not None:
                rows.append(self._minute_row + [self._minute_rss_min])  # the minute in progress
        return {"name": self.name, "columns": self.history_columns, "rows": rows}

    def events(self) -> dict:
        with self._lock:
            return {"events": list(self._events)}

    def prometheus(self) -> str:
        """Prometheus text exposition: one gauge per numeric sample column, plus ``_up``."""
        label = self.name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
        with self._lock:
            latest = dict(self._latest) if self._latest else {}
            up = 1 if self.status == "attached" else 0
            segment = self.segment
        lines = ["# HELP llmsoak_sampler_up 1 while the sampler is attached to its target.",
                 "# TYPE llmsoak_sampler_up gauge",
                 f'llmsoak_sampler_up{{target="{label}"}} {up}',
                 "# TYPE llmsoak_sampler_segment gauge",
                 f'llmsoak_sampler_segment{{target="{label}"}} {segment}']
        if up:
            for column in self.columns:
                value = latest.get(column)
                if column in SAMPLES_ID_COLUMNS or value is None:
                    continue
                lines.append(f"# TYPE llmsoak_target_{column} gauge")
                lines.append(f'llmsoak_target_{column}{{target="{label}"}} {value}')
            if latest.get("timestamp") is not None:
                lines.append("# TYPE llmsoak_target_sample_timestamp_seconds gauge")
                lines.append(f'llmsoak_target_sample_timestamp_seconds{{target="{label}"}} {latest["timestamp"]:.3f}')
        return "\n".join(lines) + "\n"


def _make_handler(state: LiveState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "llmsoak-sample"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
            pass  # a week of polling must not fill the sampler's stderr

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Access-Control-Allow-Origin", "*")  # the Locust web UI fetches it
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, obj: object, status: int = 200) -> None:
            self._send(status, json.dumps(obj, allow_nan=False, default=str).encode(), "application/json")

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            url = urlparse(self.path)
            if url.path == "/api/latest":
                self._json(state.latest())
            elif url.path in ("/api/samples", "/api/server"):
                since_text = parse_qs(url.query).get("since", [None])[0]
                try:
                    since = float(since_text) if since_text not in (None, "") else None
                except ValueError:
                    self._json({"error": f"since must be a Unix timestamp, got {since_text!r}"}, 400)
                    return
                self._json(state.samples(since) if url.path == "/api/samples" else state.server(since))
            elif url.path == "/api/history":
                self._json(state.history())
            elif url.path == "/api/events":
                self._json(state.events())
            elif url.path == "/metrics":
                self._send(200, state.prometheus().encode(), "text/plain; version=0.0.4; charset=utf-8")
            elif url.path == "/":
                self._json({"routes": ["/api/latest", "/api/samples?since=UNIX_TS", "/api/history",
                                       "/api/events", "/api/server?since=UNIX_TS", "/metrics"]})
            else:
                self._json({"error": f"no route {url.path}"}, 404)

    return Handler


def parse_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:8089"``, ``"[::1]:0"`` or ``":8089"`` (loopback) → (host, port); exit 2 if malformed."""
    host, sep, port_text = listen.rpartition(":")
    if not sep:
        host, port_text = "", listen
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise CommandError(f"--listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:9464", EXIT_BAD_INPUT) from None
    if not 0 <= port < 65536:
        raise CommandError(f"--listen {listen!r}: port must be 0-65535", EXIT_BAD_INPUT)
    return host, port


def start_live_server(listen: str, state: LiveState) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``state`` on ``listen`` in a daemon thread; return the server and its URL."""
    host, port = parse_listen(listen)
    server_class = ThreadingHTTPServer
    if ":" in host:
        server_class = type("ThreadingHTTPServerV6", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
    try:
        server = server_class((host, port), _make_handler(state))
    except OSError as err:
        raise CommandError(f"--listen {listen}: cannot listen ({err.strerror})", EXIT_BAD_INPUT) from err
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                     name="sampler-live", daemon=True).start()
    bound_host, bound_port = server.server_address[:2]
    shown = f"[{bound_host}]" if ":" in str(bound_host) else bound_host
    return server, f"http://{shown}:{bound_port}"
