"""Serve a real engine with its tiny model until stopped: for recordings, benchmarks and trying things.

Run with llmsoak's venv (it uses tests/support/engines.py, like the test fixtures)::

    .venv/bin/python tests/support/serve_engine.py vllm [--port 8000] [--leak-bytes-per-request N]
    .venv/bin/python tests/support/serve_engine.py llamacpp [--no-interrupt] [--context-tokens 1024]

Prints ``<engine> listening on <url> pid <root pid> model <name> log <file>`` once the server
answers ``/v1/models``, then waits; SIGTERM or Ctrl-C stops the engine's whole process tree.
``--leak-bytes-per-request N`` injects a real leak (tests/support/leak_inject/sitecustomize.py).
Needs ``scripts/engines.sh ensure <engine>``; docs/engines.md.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.engines import CONTEXT_TOKENS, engine_status, start_llamacpp, start_vllm, tiny_model  # noqa: E402

LEAK_INJECT = Path(__file__).resolve().parent / "leak_inject"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("engine", choices=["vllm", "llamacpp"])
    parser.add_argument("--port", type=int, default=0, help="0 = a free port")
    parser.add_argument("--context-tokens", type=int, default=CONTEXT_TOKENS)
    parser.add_argument("--no-interrupt", action="store_true", help="llamacpp: --interrupt_requests False")
    parser.add_argument("--leak-bytes-per-request", type=int, default=0)
    parser.add_argument("--log", type=Path, help="the engine's log (default: a temporary file)")
    parser.add_argument("--ready-timeout-s", type=float, default=600.0)
    args = parser.parse_args(argv)

    state, venv = engine_status()[args.engine]
    if state != "ready":
        print(f"serve_engine: {args.engine} is {state} at {venv}: run scripts/engines.sh ensure {args.engine}",
              file=sys.stderr)
        return 2
    python = venv / "bin" / "python"
    env = {}
    if args.leak_bytes_per_request:
        env = {"PYTHONPATH": str(LEAK_INJECT), "LLMSOAK_LEAK_BYTES_PER_REQUEST": str(args.leak_bytes_per_request)}
    log = args.log or Path(tempfile.mkdtemp(prefix="llmsoak-engine-")) / f"{args.engine}.log"
    if args.engine == "vllm":
        server = start_vllm(python, tiny_model("hf-llama", python), log, context_tokens=args.context_tokens,
                            env=env, port=args.port, ready_timeout_s=args.ready_timeout_s)
    else:
        server = start_llamacpp(python, tiny_model("gguf", python), log, context_tokens=args.context_tokens,
                                interrupt_requests=not args.no_interrupt, env=env, port=args.port,
                                ready_timeout_s=args.ready_timeout_s)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"{server.name} listening on {server.url} pid {server.pid} model {server.model} log {log}", flush=True)
    try:
        while not stop.wait(1.0):
            if server.process.poll() is not None:
                print(f"serve_engine: {server.name} exited with {server.process.returncode}:\n{server.log_tail()}",
                      file=sys.stderr)
                return 1
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
