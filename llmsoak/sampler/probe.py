"""Read and sum one process tree's resources with psutil (one ``oneshot()`` per process).

Everything here tolerates the races of a live system: a member that exits, turns zombie or
denies access between the listing and the read is skipped (counted in ``denied`` for access),
never raised. Per-process CPU is computed from ``cpu_times`` deltas keyed by (pid, create_time),
so a child that appears mid-interval counts from its birth and a dead child's CPU is not
subtracted from the tree.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import psutil

_LINUX = sys.platform.startswith("linux")


def _read_proc_status(pid: int) -> tuple[int | None, int | None]:
    """(num_threads, swap_bytes) from /proc/PID/status: one small read on Linux."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            data = fh.read()
    except OSError:
        return None, None
    threads = swap = None
    for line in data.split(b"\n"):
        if line.startswith(b"Threads:"):
            threads = int(line.split()[1])
        elif line.startswith(b"VmSwap:"):
            swap = int(line.split()[1]) * 1024
    return threads, swap


@dataclass
class TreeReading:
    """One sample of a watched tree; all sizes in bytes, cpu_percent with 100 = one core."""

    num_procs: int = 0
    rss_bytes: int = 0
    vms_bytes: int = 0
    uss_bytes: int | None = None
    swap_bytes: int | None = None
    cpu_percent: float | None = None
    num_threads: int | None = None
    num_fds: int | None = None
    read_bytes: int | None = None
    write_bytes: int | None = None
    pids: set[int] = field(default_factory=set)
    """Members actually read (alive, not zombie, readable)."""
    denied: int = 0
    """Per-process reads refused (AccessDenied); their cells are sums over the readable part."""


def _add(total: int | None, value: int | None) -> int | None:
    if value is None:
        return total
    return value if total is None else total + value


class TreeProbe:
    """Sums resources over a list of ``psutil.Process`` members, keeping CPU bookkeeping between calls.

    ``uss=True`` reads ``memory_full_info`` (USS and swap from smaps): exact but costly on large
    processes (the kernel walks every page table), hence opt-in.
    """

    def __init__(self, *, uss: bool = False, clock=time.monotonic) -> None:
        self.uss = uss
        self._clock = clock
        self._cpu_prev: dict[tuple[int, float], float] = {}
        self._cpu_prev_at: float | None = None
        self._prev_wall: float | None = None

    def reset(self) -> None:
        """Forget CPU history (a new segment: the first reading's cpu_percent is empty)."""
        self._cpu_prev.clear()
        self._cpu_prev_at = None
        self._prev_wall = None

    def read(self, members: list[psutil.Process]) -> TreeReading:
        reading = TreeReading()
        now = self._clock()
        wall_now = time.time()
        cpu_now: dict[tuple[int, float], float] = {}
        cpu_delta_s = 0.0
        for proc in members:
            try:
                with proc.oneshot():
                    created = proc.create_time()
                    if proc.status() == psutil.STATUS_ZOMBIE:
                        continue
                    mem = proc.memory_info()
                    times = proc.cpu_times()
                    if self.uss:
                        full = proc.memory_full_info()
                        reading.uss_bytes = _add(reading.uss_bytes, full.uss)
                        swap = getattr(full, "swap", None)
                        threads = proc.num_threads()
                    elif _LINUX:
                        threads, swap = _read_proc_status(proc.pid)
                    else:
                        threads, swap = proc.num_threads(), None
                    reading.swap_bytes = _add(reading.swap_bytes, swap)
                    reading.num_threads = _add(reading.num_threads, threads)
                    try:
                        reading.num_fds = _add(reading.num_fds, proc.num_fds())
                    except (psutil.AccessDenied, AttributeError):
                        reading.denied += 1
                    try:
                        io = proc.io_counters()
                        reading.read_bytes = _add(reading.read_bytes, io.read_bytes)
                        reading.write_bytes = _add(reading.write_bytes, io.write_bytes)
                    except (psutil.AccessDenied, AttributeError):
                        reading.denied += 1
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
            except psutil.AccessDenied:
                reading.denied += 1
                continue
            reading.num_procs += 1
            reading.pids.add(proc.pid)
            reading.rss_bytes += mem.rss
            reading.vms_bytes += mem.vms
            key = (proc.pid, created)
            total_cpu_s = times.user + times.system
            cpu_now[key] = total_cpu_s
            if key in self._cpu_prev:
                cpu_delta_s += max(0.0, total_cpu_s - self._cpu_prev[key])
            elif self._prev_wall is not None and created >= self._prev_wall:
                cpu_delta_s += total_cpu_s  # born during this interval: all of its CPU is new
        if self._cpu_prev_at is not None and now > self._cpu_prev_at:
            reading.cpu_percent = round(100.0 * cpu_delta_s / (now - self._cpu_prev_at), 2)
        self._cpu_prev = cpu_now
        self._cpu_prev_at = now
        self._prev_wall = wall_now
        return reading


def host_available_bytes() -> int | None:
    """Memory available to new processes on the host (psutil ``virtual_memory().available``)."""
    try:
        return int(psutil.virtual_memory().available)
    except (OSError, RuntimeError):
        return None
