"""The stub server: shared state (:class:`StubApp`), routing, 404/405 styles, and the lifecycle."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable

from llmsoak.errors import EXIT_BAD_INPUT, CommandError
from llmsoak.stub import admin_api, chat_app, ollama_api, openai_api
from llmsoak.stub.admission import Admission
from llmsoak.stub.chat_app import SessionStore
from llmsoak.stub.config import StubConfig
from llmsoak.stub.faults import FaultInjector
from llmsoak.stub.generation import Pacing, TokenSource
from llmsoak.stub.http import HttpProtocol, Request, Responder
from llmsoak.stub.memory import MemoryModel
from llmsoak.stub.stats import StubStats
from llmsoak.stub.timings import RequestTimings

Route = Callable[["StubApp", Request, Responder], Awaitable[None]]

MODEL_ENDPOINTS = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/embeddings",
                             "/api/chat", "/api/generate", "/chat"})
"""Paths counted in requests_total / responses_by_status (model-serving requests)."""

ROUTES: dict[str, dict[str, Route]] = {
    "/v1/models": {"GET": openai_api.models},
    "/v1/chat/completions": {"POST": openai_api.chat_completions},
    "/v1/completions": {"POST": openai_api.completions},
    "/v1/embeddings": {"POST": openai_api.embeddings},
    "/api/tags": {"GET": ollama_api.tags},
    "/api/version": {"GET": ollama_api.version},
    "/api/chat": {"POST": ollama_api.chat},
    "/api/generate": {"POST": ollama_api.generate},
    "/chat": {"POST": chat_app.chat},
    "/_stub/stats": {"GET": admin_api.stats},
    "/_stub/faults": {"GET": admin_api.get_faults, "POST": admin_api.set_faults},
    "/_stub/reset": {"POST": admin_api.reset},
    "/_stub/timings": {"GET": admin_api.timings},
}

SESSION_SWEEP_MAX_S = 5.0
"""Longest pause between sweeps for idle chat sessions."""


class StubApp:
    """Everything the request handlers share: config, pacing, faults, memory, sessions, stats."""

    def __init__(self, config: StubConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.tokens = TokenSource(config.seed)
        self.pacing = Pacing.from_config(config)
        self.faults = FaultInjector(config.faults, self.rng)
        self.admission = Admission(config.max_concurrency, config.queue_size)
        self.memory = MemoryModel(config.kv_bytes_per_token, config.leak_kb_per_request * 1024)
        self.sessions = SessionStore(config.session_idle_s)
        self.stats = StubStats()
        self.timings = RequestTimings()
        """Stub-side timings of requests that carried x-llmsoak-request-id (GET /_stub/timings)."""

    def stats_json(self) -> dict:
        return self.stats.to_json(active=self.admission.active, queued=self.admission.queued,
                                  sessions=len(self.sessions), leaked_bytes=self.memory.leaked_bytes,
                                  in_flight_bytes=self.memory.in_flight_bytes,
                                  faults=self.faults.rates)

    async def handle(self, request: Request, resp: Responder) -> None:
        """Route one request; count model requests and their status codes."""
        path, method = request.path, request.method
        counted = method == "POST" and path in MODEL_ENDPOINTS
        started = time.monotonic() if self.config.access_log else 0.0
        if counted:
            self.stats.request(path)
        try:
            methods = ROUTES.get(path)
            if methods is None and path.startswith("/chat/") and len(path) > 6:
                if method == "DELETE":
                    await chat_app.delete_session(self, request, resp, path[6:])
                else:
                    _method_not_allowed(resp, path, method, ("DELETE",))
            elif methods is None:
                _not_found(resp, path, method)
            elif method not in methods:
                _method_not_allowed(resp, path, method, tuple(methods))
            else:
                await methods[method](self, request, resp)
        finally:
            if counted and resp.status is not None:
                self.stats.responses_by_status[str(resp.status)] += 1
            if self.config.access_log:
                print(f"{method} {path} {resp.status or '-'} {1000 * (time.monotonic() - started):.1f}ms",
                      flush=True)


def _family(path: str) -> str:
    if path.startswith("/v1/") or path == "/v1":
        return "openai"
    if path.startswith("/api/") or path == "/api":
        return "ollama"
    return "plain"


def _not_found(resp: Responder, path: str, method: str) -> None:
    family = _family(path)
    if family == "openai":
        resp.send(404, openai_api.error_body(404, f"Unknown request URL: {method} {path}. Please "
                                             "check the URL for typos.", code="unknown_url"))
    elif family == "ollama":  # Ollama's router (gin) answers in plain text
        resp.send(404, b"404 page not found", "text/plain")
    else:
        resp.send(404, json.dumps({"error": f"not found: {method} {path}"}).encode())


def _method_not_allowed(resp: Responder, path: str, method: str, allowed: tuple[str, ...]) -> None:
    family = _family(path)
    allow = (("Allow", ", ".join(allowed)),)
    if family == "openai":
        body = openai_api.error_body(405, f"Method {method} is not allowed for {path}; use "
                                     f"{' or '.join(allowed)}.", code="method_not_allowed")
        resp.send(405, body, extra_headers=allow)
    elif family == "ollama":
        resp.send(405, b"405 method not allowed", "text/plain", extra_headers=allow)
    else:
        resp.send(405, json.dumps({"error": f"method {method} not allowed for {path}"}).encode(),
                  extra_headers=allow)


async def _sweep_sessions(app: StubApp) -> None:
    interval_s = max(0.05, min(SESSION_SWEEP_MAX_S, app.config.session_idle_s / 4))
    while True:
        await asyncio.sleep(interval_s)
        app.sessions.expire()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def serve(config: StubConfig) -> int:
    """Run the stub until SIGTERM/SIGINT; returns the exit status (0)."""
    loop = asyncio.get_running_loop()
    app = StubApp(config)
    connections: set[HttpProtocol] = set()
    try:
        server = await loop.create_server(lambda: HttpProtocol(app.handle, connections),
                                          config.host, config.port, reuse_address=True, backlog=2048)
    except OSError as err:
        reason = err.strerror or str(err)
        raise CommandError(f"cannot listen on {config.host}:{config.port}: {reason}",
                           EXIT_BAD_INPUT) from None
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sweeper = loop.create_task(_sweep_sessions(app))
    print(f"llmsoak stub: listening on http://{_url_host(config.host)}:{port}", flush=True)
    print(config.summary(), flush=True)
    try:
        await stop.wait()
    finally:
        sweeper.cancel()
        server.close()
        for conn in list(connections):
            conn.close()
        print("llmsoak stub: stopped", file=sys.stderr, flush=True)
    return 0


def run(config: StubConfig) -> int:
    """Blocking entry point used by the CLI."""
    return asyncio.run(serve(config))
