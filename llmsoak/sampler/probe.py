"""Read and sum one process tree's resources with psutil (one ``oneshot()`` per process).

Everything here tolerates the races of a live system: a member that exits, turns zombie or
denies access between the listing and the read is skipped (counted in ``denied`` for access),
never raised. Per-process CPU is computed from ``cpu_times`` deltas keyed by (pid, create_time),
so a child that appears mid-interval counts from its birth and a dead child's CPU is not
subtracted from the tree.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import psutil

_LINUX = sys.platform.startswith("linux")


def _status_field(data: bytes, key: bytes) -> int | None:
    """The integer after ``key`` in a /proc key-value file (find, not a per-line loop: this runs
    per process per tick)."""
    at = data.find(key)
    if at < 0:
        return None
    end = data.find(b"\n", at + 1)
    try:
        return int(data[at + len(key):end if end > 0 else None].split()[0])
    except (ValueError, IndexError):
        return None


def _kib_field(data: bytes, key: bytes) -> int | None:
    value = _status_field(data, key)
    return None if value is None else value * 1024


_CLK_TCK = os.sysconf("SC_CLK_TCK") if _LINUX else 100
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if _LINUX else 4096


class _Gone(Exception):
    """The process exited (or is a zombie) between listing and reading."""


def _read_linux(pid: int) -> tuple[float, float, int, int, int, int | None, int | None, int | None, int | None, int]:
    """Direct /proc reads for one process, without psutil's per-call machinery (this runs for every
    member every tick): (start_ticks, cpu_s, rss_bytes, vms_bytes, num_threads, swap_bytes,
    num_fds, read_bytes, write_bytes, denied). Raises _Gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        fields = stat[stat.rfind(b")") + 2:].split()
        if fields[0] in (b"Z", b"X"):
            raise _Gone
        cpu_s = (int(fields[11]) + int(fields[12])) / _CLK_TCK
        start_ticks = float(fields[19])
        vms, rss, threads = int(fields[20]), int(fields[21]) * _PAGE_BYTES, int(fields[17])
        with open(f"/proc/{pid}/status", "rb") as fh:
            swap = _kib_field(fh.read(), b"\nVmSwap:")
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        raise _Gone from None
    denied = 0
    num_fds = read_bytes = write_bytes = None
    try:
        num_fds = len(os.listdir(f"/proc/{pid}/fd"))
    except PermissionError:
        denied += 1
    except FileNotFoundError:
        raise _Gone from None
    try:
        with open(f"/proc/{pid}/io", "rb") as fh:
            io = fh.read()
        read_bytes, write_bytes = _status_field(io, b"read_bytes:"), _status_field(io, b"write_bytes:")
    except PermissionError:
        denied += 1
    except (FileNotFoundError, ProcessLookupError):
        raise _Gone from None
    return start_ticks, cpu_s, rss, vms, threads, swap, num_fds, read_bytes, write_bytes, denied


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
            if _LINUX and not self.uss:
                try:
                    (start_ticks, total_cpu_s, rss, vms, threads, swap, fds, rbytes, wbytes,
                     denied) = _read_linux(proc.pid)
                except _Gone:
                    continue
                reading.num_procs += 1
                reading.pids.add(proc.pid)
                reading.rss_bytes += rss
                reading.vms_bytes += vms
                reading.num_threads = _add(reading.num_threads, threads)
                reading.swap_bytes = _add(reading.swap_bytes, swap)
                reading.num_fds = _add(reading.num_fds, fds)
                reading.read_bytes = _add(reading.read_bytes, rbytes)
                reading.write_bytes = _add(reading.write_bytes, wbytes)
                reading.denied += denied
                key = (proc.pid, start_ticks)
                cpu_now[key] = total_cpu_s
                if key in self._cpu_prev:
                    cpu_delta_s += max(0.0, total_cpu_s - self._cpu_prev[key])
                elif self._prev_wall is not None and _boot_time() + start_ticks / _CLK_TCK >= self._prev_wall:
                    cpu_delta_s += total_cpu_s  # born during this interval: all of its CPU is new
                continue
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


_BOOT_TIME: list[float] = []


def _boot_time() -> float:
    if not _BOOT_TIME:
        _BOOT_TIME.append(psutil.boot_time())
    return _BOOT_TIME[0]


def host_available_bytes() -> int | None:
    """Memory available to new processes on the host (psutil ``virtual_memory().available``)."""
    try:
        return int(psutil.virtual_memory().available)
    except (OSError, RuntimeError):
        return None
