"""Pytest fixtures for the real engines (a plugin loaded by tests/conftest.py).

* ``vllm_server``: vLLM serving the tiny Hugging Face Llama, ``--max-model-len 1024``.
* ``llamacpp_server``: llama-cpp-python's server in its DEFAULT configuration (so
  ``interrupt_requests`` is on: a new request cuts the running stream short), ``--n_ctx 1024``.
* ``start_llamacpp(interrupt_requests=False, ...)``: another llama.cpp server with other settings
  (one per distinct setting, shared by the session).
* ``vllm_python`` / ``llamacpp_python``: the engine venvs' Python; ``tiny_hf_model`` / ``tiny_gguf_model``.

All session-scoped, started on 127.0.0.1 with a free port, the whole process tree stopped at the
end. Every test using one of them gets the ``engines`` marker (``-m "not engines"`` leaves them
out) and, unless it sets its own, a 900 s timeout. Missing engines: skipped with a reason naming ``scripts/engines.sh ensure``, or failed under
``LLMSOAK_REQUIRE_ENGINES=1``. See docs/engines.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.engines import CONTEXT_TOKENS, EngineServer, engine_python, start_vllm, tiny_model
from support.engines import start_llamacpp as _start_llamacpp

ENGINE_FIXTURES = {"vllm_server", "llamacpp_server", "start_llamacpp", "vllm_python", "llamacpp_python",
                   "tiny_hf_model", "tiny_gguf_model"}


ENGINE_TEST_TIMEOUT_S = 900
"""Default pytest-timeout of an engine test: the first one pays vLLM's start-up (1-2 min, more
when the machine is busy) on top of its own run."""


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if ENGINE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.engines)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(ENGINE_TEST_TIMEOUT_S))


@pytest.fixture(scope="session")
def engine_logs(tmp_path_factory) -> Path:
    """Where the engines' own logs go (pytest's temporary directory of the session)."""
    return tmp_path_factory.mktemp("engine-logs")


@pytest.fixture(scope="session")
def vllm_python() -> Path:
    return engine_python("vllm")


@pytest.fixture(scope="session")
def llamacpp_python() -> Path:
    return engine_python("llamacpp")


@pytest.fixture(scope="session")
def tiny_hf_model(vllm_python) -> Path:
    return tiny_model("hf-llama", vllm_python)


@pytest.fixture(scope="session")
def tiny_gguf_model(llamacpp_python) -> Path:
    return tiny_model("gguf", llamacpp_python)


@pytest.fixture(scope="session")
def vllm_server(vllm_python, tiny_hf_model, engine_logs) -> Iterator[EngineServer]:
    """vLLM on 127.0.0.1 (``.url``, ``.model``, ``.context_tokens`` = 1024, ``.pid``); start-up 1-2 min."""
    server = start_vllm(vllm_python, tiny_hf_model, engine_logs / "vllm.log", context_tokens=CONTEXT_TOKENS)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def start_llamacpp(llamacpp_python, tiny_gguf_model, engine_logs) -> Iterator:
    """Factory: ``start_llamacpp(interrupt_requests=True, context_tokens=1024)`` → a shared server."""
    servers: dict[tuple, EngineServer] = {}

    def _start(*, interrupt_requests: bool = True, context_tokens: int = CONTEXT_TOKENS) -> EngineServer:
        key = (interrupt_requests, context_tokens)
        if key not in servers:
            log = engine_logs / f"llamacpp-interrupt{int(interrupt_requests)}-ctx{context_tokens}.log"
            servers[key] = _start_llamacpp(llamacpp_python, tiny_gguf_model, log,
                                           interrupt_requests=interrupt_requests, context_tokens=context_tokens)
        return servers[key]

    yield _start
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="session")
def llamacpp_server(start_llamacpp) -> EngineServer:
    """llama-cpp-python's server in its default configuration (``interrupt_requests`` on)."""
    return start_llamacpp()
