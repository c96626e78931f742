"""Shared fixtures: real processes on 127.0.0.1, port 0, always cleaned up.

Helpers live in tests/support/ (processes, Locust runs, synthetic run directories, web UI clients);
this directory is on sys.path, so tests import them as ``from support.processes import spawn``.
Contract relied on here (docs/stub.md): ``llmsoak stub --port 0`` prints a line
``... listening on http://HOST:PORT`` on stdout once it accepts connections.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.processes import RunningProcess, llmsoak_cmd, spawn

# Real engines (vLLM, llama.cpp): session fixtures and the `engines` marker; docs/engines.md.
pytest_plugins = ["support.engine_fixtures"]


@pytest.fixture
def start_stub() -> Iterator:
    """Factory: ``start_stub("--ttft-ms", "50", ...)`` → RunningProcess with ``.url``; stopped after the test."""
    started: list[RunningProcess] = []

    def _start(*knobs: str) -> RunningProcess:
        proc = spawn(llmsoak_cmd("stub", "--host", "127.0.0.1", "--port", "0", *knobs))
        started.append(proc)
        return proc

    yield _start
    for proc in started:
        proc.stop()


@pytest.fixture
def stub(start_stub) -> RunningProcess:
    """A reference target with fast defaults (no leak, no faults)."""
    return start_stub("--ttft-ms", "20", "--itl-ms", "2")
