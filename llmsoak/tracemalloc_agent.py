"""tracemalloc agent for Python targets: the top allocation sites by growth, to JSONL.

Start it inside the target in one of three ways (docs/sampler.md, "tracemalloc agent")::

    import llmsoak.tracemalloc_agent as t; t.start(out="runs/x/tracemalloc/app.jsonl")
    python -m llmsoak.tracemalloc_agent --out app.jsonl -- app.py --its --args
    LLMSOAK_TRACEMALLOC=app.jsonl python -m llmsoak.tracemalloc_agent -- app.py

(importing this module with ``LLMSOAK_TRACEMALLOC`` set also starts it, so a target that already
imports llmsoak needs no code change). Tracing starts at once; after ``warmup_s`` a *baseline*
snapshot is taken; then every ``interval_s`` a snapshot is compared to it and one JSON line is
appended::

    {"timestamp": 1790000000.0, "elapsed_s": 3600.0, "traced_bytes": 123456,
     "top": [{"file": "app.py", "line": 42, "size_diff_bytes": 1048576, "count_diff": 1024,
              "size_bytes": 2097152}, ...]}

sorted by ``size_diff_bytes`` (growth since the baseline), largest first; with nframe > 1 each
entry also carries ``"traceback": ["file:line", ...]`` (newest frame first). Environment knobs:
``LLMSOAK_TRACEMALLOC_INTERVAL`` (span, default 5m), ``LLMSOAK_TRACEMALLOC_NFRAME`` (default 1),
``LLMSOAK_TRACEMALLOC_WARMUP`` (span, default 60s), ``LLMSOAK_TRACEMALLOC_TOP`` (default 25).
The file is bounded: past ``max_bytes`` (default 50 MB) it is rotated once to ``FILE.1``.
Cost: tracing slows allocation-heavy code (measured in docs/sampler.md); keep nframe at 1 unless
the growing line alone is not enough.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path

from llmsoak.units import parse_timespan

ENV_OUT = "LLMSOAK_TRACEMALLOC"
DEFAULT_INTERVAL_S = 300.0
DEFAULT_WARMUP_S = 60.0
DEFAULT_NFRAME = 1
DEFAULT_TOP = 25
DEFAULT_MAX_BYTES = 50 * 1024 * 1024

_agent: Agent | None = None
_lock = threading.Lock()


def _env_span(name: str, default: float) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return parse_timespan(value)
    except ValueError:
        print(f"llmsoak.tracemalloc_agent: ignoring {name}={value!r} (not a duration)", file=sys.stderr)
        return default


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return int(value) if value else default
    except ValueError:
        print(f"llmsoak.tracemalloc_agent: ignoring {name}={value!r} (not an integer)", file=sys.stderr)
        return default


class Agent:
    """Background thread: baseline after warm-up, then a growth record every interval."""

    def __init__(self, out: str | os.PathLike, *, interval_s: float, nframe: int, warmup_s: float,
                 top: int, max_bytes: int) -> None:
        if interval_s <= 0 or nframe < 1 or warmup_s < 0 or top < 1:
            raise ValueError("tracemalloc agent: interval_s > 0, nframe >= 1, warmup_s >= 0, top >= 1")
        self.out = Path(out)
        self.interval_s = interval_s
        self.nframe = nframe
        self.warmup_s = warmup_s
        self.top = top
        self.max_bytes = max_bytes
        self.records_written = 0
        self._stop = threading.Event()
        self._started_at = time.monotonic()
        self._baseline: tracemalloc.Snapshot | None = None
        self._filters = [tracemalloc.Filter(False, tracemalloc.__file__),
                         tracemalloc.Filter(False, __file__),
                         tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
                         tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
                         tracemalloc.Filter(False, "<unknown>")]
        self._thread = threading.Thread(target=self._run, name="llmsoak-tracemalloc", daemon=True)

    def start(self) -> Agent:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        if not tracemalloc.is_tracing():
            tracemalloc.start(self.nframe)
        self._started_at = time.monotonic()
        self._thread.start()
        return self

    def stop(self, *, final_dump: bool = True) -> None:
        """Stop the thread; write one last record first when a baseline exists."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(5.0)
        if final_dump and self._baseline is not None:
            self.dump()

    def _snapshot(self) -> tracemalloc.Snapshot:
        return tracemalloc.take_snapshot().filter_traces(self._filters)

    def _run(self) -> None:
        if self._stop.wait(self.warmup_s):
            return
        self._baseline = self._snapshot()
        while not self._stop.wait(self.interval_s):
            try:
                self.dump()
            except OSError as err:  # the target must never die of its profiler: say it, stop dumping
                print(f"llmsoak.tracemalloc_agent: cannot write {self.out}: {err.strerror}; stopped",
                      file=sys.stderr)
                return

    def dump(self) -> dict:
        """Compare a snapshot to the baseline, append one JSON line, return the record."""
        if self._baseline is None:
            self._baseline = self._snapshot()
        key = "traceback" if self.nframe > 1 else "lineno"
        stats = self._snapshot().compare_to(self._baseline, key)
        stats.sort(key=lambda s: s.size_diff, reverse=True)
        top = []
        for stat in stats[: self.top]:
            frame = stat.traceback[-1]  # frames run oldest → newest: the last one allocated
            entry = {"file": frame.filename, "line": frame.lineno, "size_diff_bytes": stat.size_diff,
                     "count_diff": stat.count_diff, "size_bytes": stat.size}
            if self.nframe > 1:
                entry["traceback"] = [f"{f.filename}:{f.lineno}" for f in reversed(stat.traceback)]
            top.append(entry)
        record = {"timestamp": round(time.time(), 3),
                  "elapsed_s": round(time.monotonic() - self._started_at, 3),
                  "traced_bytes": tracemalloc.get_traced_memory()[0], "top": top}
        line = (json.dumps(record) + "\n").encode()
        self._rotate_if_full(len(line))
        fd = os.open(self.out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        self.records_written += 1
        return record

    def _rotate_if_full(self, incoming: int) -> None:
        try:
            size = self.out.stat().st_size
        except FileNotFoundError:
            return
        if size + incoming > self.max_bytes:
            os.replace(self.out, self.out.with_name(self.out.name + ".1"))


def start(out: str | os.PathLike | None = None, *, interval_s: float | None = None,
          nframe: int | None = None, warmup_s: float | None = None, top: int | None = None,
          max_bytes: int = DEFAULT_MAX_BYTES) -> Agent:
    """Start tracing and the dump thread (once per process; later calls return the same agent).

    Unset arguments come from the LLMSOAK_TRACEMALLOC* environment variables, then the defaults.
    ``out`` is required one way or the other.
    """
    global _agent
    with _lock:
        if _agent is not None:
            return _agent
        out = out or os.environ.get(ENV_OUT)
        if not out:
            raise ValueError(f"tracemalloc agent: give out= or set {ENV_OUT}=PATH.jsonl")
        _agent = Agent(
            out,
            interval_s=interval_s if interval_s is not None else _env_span(f"{ENV_OUT}_INTERVAL", DEFAULT_INTERVAL_S),
            nframe=nframe if nframe is not None else _env_int(f"{ENV_OUT}_NFRAME", DEFAULT_NFRAME),
            warmup_s=warmup_s if warmup_s is not None else _env_span(f"{ENV_OUT}_WARMUP", DEFAULT_WARMUP_S),
            top=top if top is not None else _env_int(f"{ENV_OUT}_TOP", DEFAULT_TOP),
            max_bytes=max_bytes,
        ).start()
        return _agent


def stop() -> None:
    """Stop the agent started by :func:`start` (a final record is written)."""
    global _agent
    with _lock:
        agent, _agent = _agent, None
    if agent is not None:
        agent.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m llmsoak.tracemalloc_agent [--out F] [--interval S] ... -- script.py|-m module args``."""
    import argparse
    import runpy

    parser = argparse.ArgumentParser(
        prog="python -m llmsoak.tracemalloc_agent",
        description="Run a Python program with the llmsoak tracemalloc agent started.")
    parser.add_argument("--out", help=f"JSONL output (default: ${ENV_OUT})")
    parser.add_argument("--interval", help="span between records (default 5m)")
    parser.add_argument("--nframe", type=int, help="frames per traceback (default 1)")
    parser.add_argument("--warmup", help="span before the baseline snapshot (default 60s)")
    parser.add_argument("--top", type=int, help="sites per record (default 25)")
    parser.add_argument("target", nargs=argparse.REMAINDER, help="-- script.py args | -- -m module args")
    args = parser.parse_args(argv)
    target = args.target[1:] if args.target[:1] == ["--"] else args.target
    if not target:
        parser.error("give the program to run after --")
    try:
        start(args.out, interval_s=parse_timespan(args.interval) if args.interval else None,
              nframe=args.nframe, warmup_s=parse_timespan(args.warmup) if args.warmup else None,
              top=args.top)
    except ValueError as err:
        parser.error(str(err))
    import atexit

    atexit.register(stop)
    if target[0] == "-m":
        if len(target) < 2:
            parser.error("-m needs a module name")
        sys.argv = target[1:]
        runpy.run_module(target[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(target)
        sys.path.insert(0, str(Path(target[0]).resolve().parent))
        runpy.run_path(target[0], run_name="__main__")
    return 0


if os.environ.get(ENV_OUT) and __name__ != "__main__":
    start()

if __name__ == "__main__":
    # the target may import llmsoak.tracemalloc_agent itself: make that the same module (one agent)
    sys.modules.setdefault("llmsoak.tracemalloc_agent", sys.modules[__name__])
    sys.exit(main())
