"""The Capacity view: a live page of a running ``llmsoak capacity`` (``--listen HOST:PORT``).

The sweep runs Locust headless, one run per batch, so this page is served by the capacity command
itself (a small HTTP server in a daemon thread), not by Locust's web UI. It serves a fixed set of
paths, nothing else from the file system:

- ``/`` the page: the answer so far, the two charts, the step table; it polls every 2 s;
- ``/api/capacity.json`` the run directory's ``capacity.json`` (rewritten after every step, with
  ``"status": "running"`` until the end);
- ``/charts/latency_throughput.png`` and ``/charts/goodput_load.png`` (redrawn after every step).

It binds 127.0.0.1 unless told otherwise; off loopback it needs a token (the value of the
environment variable :data:`TOKEN_ENV`), sent as ``Authorization: Bearer TOKEN`` or ``?token=``.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

TOKEN_ENV = "LLMSOAK_CAPACITY_TOKEN"
"""Environment variable holding the token a non-loopback ``--listen`` requires."""
FILES = {"/api/capacity.json": ("capacity.json", "application/json"),
         "/charts/latency_throughput.png": ("charts/latency_throughput.png", "image/png"),
         "/charts/goodput_load.png": ("charts/goodput_load.png", "image/png")}

PAGE = """<!doctype html><meta charset="utf-8"><title>llmsoak capacity</title>
<style>body{font-family:sans-serif;max-width:1100px;margin:1em auto;padding:0 1em}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}
th{background:#f5f5f5}.miss{color:#c62828}.meet{color:#2e7d32}img{max-width:49%;border:1px solid #eee}</style>
<h1>Capacity <span id="status"></span></h1><p id="answer">waiting for the first step…</p>
<div><img id="c1" alt="latency against throughput"><img id="c2" alt="goodput against load"></div>
<table id="steps"></table>
<script>
const q = location.search;  // carries ?token= when the page was opened with one
const esc = s => String(s).replace(/[&<>"']/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));
const f = (v, u="") => v === null || v === undefined ? "–" : (typeof v === "number" ? +v.toPrecision(3) : v) + u;
async function tick() {
  try {
    const r = await fetch("api/capacity.json" + q, {cache: "no-store"});
    if (r.ok) {
      const d = await r.json();
      document.getElementById("status").textContent = d.status === "running" ? "(running)" : "(finished)";
      document.getElementById("answer").textContent = d.summary || "";
      const t = "?t=" + d.steps.length + (q ? "&" + q.slice(1) : "");
      document.getElementById("c1").src = "charts/latency_throughput.png" + t;
      document.getElementById("c2").src = "charts/goodput_load.png" + t;
      const unit = {rate: " req/s", concurrency: " in flight", users: " users"};
      let h = "<tr><th>#</th><th>role</th><th>load</th><th>achieved req/s</th><th>TTFT p95</th><th>E2E p95</th>" +
              "<th>errors</th><th>dropped</th><th>lag p95</th><th>goodput</th><th>SLOs</th></tr>";
      d.steps.forEach((s, i) => {
        h += `<tr><td>${i + 1}</td><td>${esc(s.role)}</td><td>${f(s.load)}${unit[s.kind]}</td><td>${f(s.achieved_rps)}</td>` +
             `<td>${f(s.latency_ms.ttft.p95, " ms")}</td><td>${f(s.latency_ms.e2e.p95, " ms")}</td><td>${f(s.error_rate)}</td>` +
             `<td>${s.dropped}</td><td>${f(s.lag_ms.p95, " ms")}</td><td>${f(s.goodput_share)}</td>` +
             (s.meets_slo ? "<td class=meet>met</td>" : `<td class=miss style="text-align:left">${esc(s.reasons.join("; "))}</td>`) + "</tr>";
      });
      document.getElementById("steps").innerHTML = h;
      if (d.status !== "running") return;
    }
  } catch (e) {}
  setTimeout(tick, 2000);
}
tick();
</script>
"""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` → (host, port); ValueError with one line naming ``--listen``."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--listen: expected HOST:PORT like 127.0.0.1:0, got {value!r}")
    return host, int(port)


class CapacityView:
    """Serves the Capacity view of the run directory ``root``; :meth:`stop` shuts it down."""

    def __init__(self, root: Path, host: str, port: int, token: str | None = None) -> None:
        if not is_loopback(host) and not token:
            raise ValueError(f"--listen {host}: off loopback the Capacity view needs a token: "
                             f"set ${TOKEN_ENV}")
        view = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:  # quiet: the sweep prints its own progress
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                parts = urlsplit(self.path)
                if view.token and not view.authorised(self.headers.get("Authorization"), parts.query):
                    self._send(401, b"token required\n", "text/plain")
                elif parts.path in ("/", "/index.html"):
                    self._send(200, PAGE.encode(), "text/html; charset=utf-8")
                elif parts.path in FILES:
                    name, ctype = FILES[parts.path]
                    try:
                        data = (view.root / name).read_bytes()
                    except OSError:
                        self._send(404, b"not yet\n", "text/plain")
                        return
                    self._send(200, data, ctype)
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

        self.root = root
        self.token = token
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="capacity-view", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"

    def authorised(self, header: str | None, query: str) -> bool:
        given = (header or "").removeprefix("Bearer ").strip() or (parse_qs(query).get("token") or [""])[0]
        return hmac.compare_digest(given.encode(), (self.token or "").encode())

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_view(root: Path, listen: str) -> CapacityView:
    """A running :class:`CapacityView` for ``--listen HOST:PORT`` (ValueError: one line)."""
    host, port = parse_listen(listen)
    try:
        return CapacityView(root, host, port, token=os.environ.get(TOKEN_ENV) or None)
    except OSError as err:
        raise ValueError(f"--listen {listen}: {err.strerror or err}") from None
