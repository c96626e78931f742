"""A stand-in for an engine's Prometheus ``/metrics`` (vLLM's names), served on 127.0.0.1:0.

``serve_metrics(mode)`` returns a started :class:`FakeMetrics` (``.url``, ``.scrapes``,
``.stop()``). Modes: ``"busy"`` (a queue that grows by one waiting request every 4 scrapes, KV
cache at 97 %, one preemption every 5 scrapes), ``"404"`` (the server's 404), ``"unknown"`` (metrics, none of them an engine's), ``"silent"``
(accepts the connection, never answers). The text is what vLLM 0.32 writes (its help and type
lines, labels ``engine``/``model_name``), so the scraper meets the real shape.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def vllm_text(waiting: int, running: int, kv_fraction: float, preemptions: int) -> str:
    labels = 'engine="0",model_name="tiny-llama"'
    return (
        "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
        "# TYPE vllm:num_requests_running gauge\n"
        f"vllm:num_requests_running{{{labels}}} {float(running)}\n"
        "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
        "# TYPE vllm:num_requests_waiting gauge\n"
        f"vllm:num_requests_waiting{{{labels}}} {float(waiting)}\n"
        "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n"
        "# TYPE vllm:kv_cache_usage_perc gauge\n"
        f"vllm:kv_cache_usage_perc{{{labels}}} {kv_fraction}\n"
        "# HELP vllm:num_preemptions_total Cumulative number of preemption from the engine.\n"
        "# TYPE vllm:num_preemptions_total counter\n"
        f"vllm:num_preemptions_total{{{labels}}} {float(preemptions)}\n"
        f"vllm:num_preemptions_created{{{labels}}} 1.7e9\n"
        "# TYPE vllm:e2e_request_latency_seconds histogram\n"
        f'vllm:e2e_request_latency_seconds_bucket{{{labels},le="0.3"}} 3.0\n'
        f"vllm:e2e_request_latency_seconds_sum{{{labels}}} 1.5\n"
    )


class FakeMetrics:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.scrapes = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                fake.scrapes += 1
                if fake.mode == "silent":
                    time.sleep(30)
                    return
                if fake.mode == "404" or self.path != "/metrics":
                    body, status = b'{"detail":"Not Found"}', 404
                elif fake.mode == "unknown":
                    body, status = b"# TYPE other_metric gauge\nother_metric 1\n", 200
                else:
                    n = fake.scrapes
                    body, status = vllm_text(n // 4, 4, 0.97, n // 5).encode(), 200
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/metrics"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_metrics(mode: str = "busy") -> FakeMetrics:
    return FakeMetrics(mode)
