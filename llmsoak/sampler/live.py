"""The live endpoint (``--listen 127.0.0.1:PORT``): latest samples as JSON and Prometheus text.

Routes (documented in docs/formats.md, "Sampler live endpoint", and docs/sampler.md):
``/api/latest``, ``/api/samples?since=UNIX_TS``, ``/api/rows?since=UNIX_TS&limit=N`` (rows read
from the samples FILE, for a remote ``llmsoak run`` to pull), ``/api/history``,
``/api/events?since=UNIX_TS``, ``/metrics``.
Memory is bounded for a week: the full-resolution ring holds at most one hour (and at most
36,000 rows), the per-minute history at most 10,080 rows (7 days), events at most 1,000;
``/api/rows`` reads one bounded page from the file per request.

Off loopback the endpoint requires a token: the sampler refuses to listen beyond 127.0.0.1/::1
unless ``$LLMSOAK_SAMPLER_TOKEN`` is set, and then answers 401 to any request without
``Authorization: Bearer <token>``. The token is read from the environment only and never
printed or written.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import math
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from llmsoak.errors import EXIT_BAD_INPUT, CommandError
from llmsoak.formats import HISTORY_EXTRA_COLUMNS, SAMPLES_ID_COLUMNS, SERVER_METRICS_COLUMNS
from llmsoak.sampler.rows_page import PAGE_ROWS_DEFAULT, PAGE_ROWS_MAX, events_after, read_page

RING_SECONDS = 3600
RING_MAX_ROWS = 36_000
HISTORY_MAX_ROWS = 10_080
EVENTS_MAX = 1000
TOKEN_ENV = "LLMSOAK_SAMPLER_TOKEN"
"""Environment variable holding the bearer token the endpoint requires off loopback."""
HEADER_RECEIVED = "X-Llmsoak-Received"
"""Reply header: the sampler's clock (Unix s) when the request arrived (for clock offsets)."""
HEADER_SENT = "X-Llmsoak-Sent"
"""Reply header: the sampler's clock (Unix s) when the reply's headers were sent."""
HEADER_MORE = "X-Llmsoak-More"
"""``/api/rows`` reply header: ``1`` when rows after this page exist (ask again at once)."""


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
        self.samples_path: str | os.PathLike | None = None
        """The samples CSV that ``/api/rows`` reads (the sampler's ``--out``)."""
        self.events_path: str | os.PathLike | None = None
        """The events.csv that ``/api/events?since=`` reads (so a restart loses none); None: memory."""
        self.token: str | None = None
        """Bearer token every request must carry (set off loopback); never logged."""

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

    def events(self, since: float | None = None) -> dict:
        """The last events from memory; with ``since``, those after it — read from the events
        FILE when the sampler writes one (also what an earlier sampler process wrote there),
        at most EVENTS_MAX per reply, oldest first."""
        if since is not None and self.events_path is not None:
            try:
                return {"events": [{**e, "timestamp": round(e["timestamp"], 3)}
                                   for e in events_after(self.events_path, since, EVENTS_MAX)]}
            except OSError:
                pass  # unreadable now: the memory ring still answers
        with self._lock:
            return {"events": [dict(e) for e in self._events if since is None or e["timestamp"] > since]}

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

        def _clock_headers(self) -> None:
            self.send_header(HEADER_RECEIVED, f"{self._received:.6f}")
            self.send_header(HEADER_SENT, f"{time.time():.6f}")

        def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
            self.send_response(status)
            self._clock_headers()
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Access-Control-Allow-Origin", "*")  # the Locust web UI fetches it
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, obj: object, status: int = 200) -> None:
            self._send(status, json.dumps(obj, allow_nan=False, default=str).encode(), "application/json")

        def _authorized(self) -> bool:
            if state.token is None:
                return True
            given = self.headers.get("Authorization", "")
            scheme, _, value = given.partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), state.token.encode()):
                return True
            self._send(401, json.dumps({"error": "missing or wrong token: send Authorization: Bearer "
                                                 f"${TOKEN_ENV}"}).encode(), "application/json",
                       {"WWW-Authenticate": 'Bearer realm="llmsoak-sample"'})
            return False

        def _since(self, query: dict) -> tuple[bool, float | None]:
            since_text = query.get("since", [None])[0]
            try:
                return True, (float(since_text) if since_text not in (None, "") else None)
            except ValueError:
                self._json({"error": f"since must be a Unix timestamp, got {since_text!r}"}, 400)
                return False, None

        def _rows(self, query: dict) -> None:
            ok, since = self._since(query)
            if not ok:
                return
            limit_text = query.get("limit", [None])[0]
            try:
                limit = PAGE_ROWS_DEFAULT if limit_text in (None, "") else int(limit_text)
                if not 1 <= limit <= PAGE_ROWS_MAX:
                    raise ValueError
            except ValueError:
                self._json({"error": f"limit must be 1-{PAGE_ROWS_MAX}, got {limit_text!r}"}, 400)
                return
            if state.samples_path is None:
                self._json({"error": "this sampler has no samples file"}, 404)
                return
            try:
                header, rows, more = read_page(state.samples_path, since, limit)
            except OSError as err:
                self._json({"error": f"cannot read the samples file: {err.strerror}"}, 503)
                return
            self.send_response(200)
            self._clock_headers()
            self.send_header(HEADER_MORE, "1" if more else "0")
            self.send_header("Content-Type", "text/csv; charset=utf-8")
            self.send_header("Content-Length", str(len(header) + sum(len(r) for r in rows)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(header)
            for start in range(0, len(rows), 500):  # a page goes out in chunks, not one big bytes
                self.wfile.write(b"".join(rows[start:start + 500]))

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            self._received = time.time()
            if not self._authorized():
                return
            url = urlparse(self.path)
            query = parse_qs(url.query)
            if url.path == "/api/latest":
                self._json(state.latest())
            elif url.path in ("/api/samples", "/api/server"):
                ok, since = self._since(query)
                if ok:
                    self._json(state.samples(since) if url.path == "/api/samples" else state.server(since))
            elif url.path == "/api/rows":
                self._rows(query)
            elif url.path == "/api/history":
                self._json(state.history())
            elif url.path == "/api/events":
                ok, since = self._since(query)
                if ok:
                    self._json(state.events(since))
            elif url.path == "/metrics":
                self._send(200, state.prometheus().encode(), "text/plain; version=0.0.4; charset=utf-8")
            elif url.path == "/":
                self._json({"routes": ["/api/latest", "/api/samples?since=UNIX_TS",
                                       "/api/rows?since=UNIX_TS&limit=N", "/api/history",
                                       "/api/events?since=UNIX_TS", "/api/server?since=UNIX_TS", "/metrics"]})
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


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; False for 0.0.0.0, :: and any other address."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve off loopback


def listen_token(listen: str, environ: dict | None = None) -> str | None:
    """The token the endpoint on ``listen`` requires: None on loopback (the Locust web UI on the
    same host fetches it), ``$LLMSOAK_SAMPLER_TOKEN`` off loopback — exit 2 with one line when unset."""
    environ = os.environ if environ is None else environ
    host, _ = parse_listen(listen)
    if is_loopback(host):
        return None
    token = environ.get(TOKEN_ENV) or None
    if token is None:
        raise CommandError(f"--listen {listen}: listening beyond loopback requires a token; set "
                           f"{TOKEN_ENV} in the environment", EXIT_BAD_INPUT)
    return token


def start_live_server(listen: str, state: LiveState, token: str | None = None) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``state`` on ``listen`` in a daemon thread; return the server and its URL.

    ``token``: every request must carry it (``Authorization: Bearer``), else 401.
    """
    host, port = parse_listen(listen)
    state.token = token
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
