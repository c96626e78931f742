"""Where the context size comes from (llmsoak.locust.context_window): profile, server, error.

GIVEN small HTTP servers on 127.0.0.1 answering as vLLM (``/v1/models`` with ``max_model_len``),
llama.cpp's ``llama-server`` (``/props``) and llama-cpp-python (neither) do,
WHEN a Locust process asks for the target's window, THEN it gets the right size and source,
once per process; the profile's ``target.context_tokens`` wins; an overflow message teaches it.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmsoak.locust import context_window
from llmsoak.locust.context_window import ContextWindow, ask_server, context_window_for
from llmsoak.profile.model import Target


def _serve(pages: dict[str, object], seen: list[str]):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            seen.append(self.path + " " + self.headers.get("Authorization", ""))
            if self.path not in pages:
                self.send_response(404)
                self.end_headers()
                return
            body = json.dumps(pages[self.path]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def serve():
    servers = []

    def start(pages):
        seen: list[str] = []
        server, url = _serve(pages, seen)
        servers.append(server)
        return url, seen
    context_window.reset()
    yield start
    context_window.reset()
    for server in servers:
        server.shutdown()
        server.server_close()


VLLM_MODELS = {"object": "list", "data": [
    {"id": "other", "object": "model", "max_model_len": 8192},
    {"id": "tiny-llama", "object": "model", "owned_by": "vllm", "max_model_len": 1024}]}


def test_vllm_reports_max_model_len_for_the_served_model(serve):
    url, seen = serve({"/v1/models": VLLM_MODELS})
    assert ask_server(url, "tiny-llama", {}) == (1024, "GET /v1/models max_model_len")
    assert ask_server(url, "other", {}) == (8192, "GET /v1/models max_model_len")
    assert ask_server(url, "missing", {}) is None  # two models, neither named: no guess


def test_llama_server_reports_n_ctx_in_props(serve):
    url, _ = serve({"/v1/models": {"data": [{"id": "m", "meta": {"n_ctx_train": 131072}}]},
                    "/props": {"default_generation_settings": {"n_ctx": 4096}}})
    # n_ctx_train is what the model was trained for, not what the server runs with: not used
    assert ask_server(url, "m", {}) == (4096, "GET /props default_generation_settings.n_ctx")


def test_llama_cpp_python_reports_nothing_and_errors_teach_it(serve):
    url, _ = serve({"/v1/models": {"object": "list", "data": [{"id": "tiny-llama", "object": "model"}]}})
    assert ask_server(url, "tiny-llama", {}) is None
    window = context_window_for(Target(url=url, model="tiny-llama"))
    assert window.tokens is None
    window.learn_from("This model's maximum context length is 1024 tokens. However, you requested 2167 tokens")
    assert (window.tokens, window.source) == (1024, "the server's context-overflow error")
    window.learn_from("Requested tokens (2000) exceed context window of 512")
    assert window.tokens == 512
    window.learn_from("something else entirely")
    assert window.tokens == 512


def test_asked_once_per_process_with_the_targets_credentials(serve, monkeypatch):
    url, seen = serve({"/v1/models": VLLM_MODELS})
    monkeypatch.setenv("CTX_TEST_KEY", "k-123")
    target = Target(url="http://127.0.0.1:9", model="tiny-llama", api_key_env="CTX_TEST_KEY")
    first = context_window_for(target, url)  # the user's host (-H) wins over target.url
    assert context_window_for(target, url + "/") is first
    assert (first.tokens, first.source) == (1024, "GET /v1/models max_model_len")
    assert seen == ["/v1/models Bearer k-123"]


def test_the_profile_overrides_the_server_and_ollama_is_not_asked(serve):
    url, seen = serve({"/v1/models": VLLM_MODELS})
    window = context_window_for(Target(url=url, model="tiny-llama", context_tokens=900))
    assert (window.tokens, window.source) == (900, "target.context_tokens") and seen == []
    window = context_window_for(Target(url=url, flavour="ollama", model="llama3"))
    assert window.tokens is None and seen == []


def test_an_unreachable_server_means_no_window():
    context_window.reset()
    assert ask_server("http://127.0.0.1:9", "m", {}) is None
    assert repr(ContextWindow()) .startswith("ContextWindow(tokens=None")
