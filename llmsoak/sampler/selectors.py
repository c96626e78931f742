"""What to watch: ``--pid``, ``--match``, ``--port`` or ``--cgroup`` → the root processes of a tree.

A selector answers two questions: which processes are the *roots* now (``resolve``), and which
processes make up the watched tree given those roots (``members``). The sampler sums the members.
``resolve`` may be costly (``--match`` lists every process's command line, ``--port`` scans
sockets), so the sampler calls it only while waiting for the target and when a root has exited;
``members`` runs every few seconds.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import psutil

from llmsoak.errors import EXIT_BAD_INPUT, EXIT_TARGET_UNAVAILABLE, CommandError

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _ancestor_pids(pid: int) -> set[int]:
    """``pid`` and its ancestors: the sampler, its shell, its launcher must never be matched."""
    pids = {pid}
    try:
        proc = psutil.Process(pid)
        for parent in proc.parents():
            pids.add(parent.pid)
    except psutil.Error:
        pass
    return pids


def _sort_by_age(procs: list[psutil.Process]) -> list[psutil.Process]:
    def key(p: psutil.Process) -> tuple[float, int]:
        try:
            return (p.create_time(), p.pid)
        except psutil.Error:
            return (float("inf"), p.pid)
    return sorted(procs, key=key)


def _roots_of(procs: dict[int, psutil.Process], ppid_of: dict[int, int]) -> list[psutil.Process]:
    """Processes in ``procs`` none of whose ancestors is in ``procs`` (oldest first)."""
    roots = []
    for pid, proc in procs.items():
        parent, seen = ppid_of.get(pid), 0
        while parent and parent not in procs and seen < 64:
            parent, seen = ppid_of.get(parent), seen + 1
        if not parent or parent not in procs:
            roots.append(proc)
    return _sort_by_age(roots)


def tree_members(roots: list[psutil.Process], exclude: set[int]) -> list[psutil.Process]:
    """The roots and all their living descendants (without ``exclude``), each pid once."""
    members: dict[int, psutil.Process] = {}
    for root in roots:
        if root.pid in exclude:
            continue
        members.setdefault(root.pid, root)
        try:
            for child in root.children(recursive=True):
                if child.pid not in exclude:
                    members.setdefault(child.pid, child)
        except psutil.Error:
            continue  # the root exited or vanished between calls: the sampler notices next tick
    return list(members.values())


class Selector:
    """Base class: ``resolve()`` → roots (oldest first, [] when nothing is there)."""

    kind = "selector"
    follows_restarts = True
    """False for --pid: a pid never comes back, so the sampler ends when it exits."""
    cgroup_dir: Path | None = None
    """The cgroup directory whose memory counter fills cgroup_memory_bytes (None: not by cgroup)."""

    def __init__(self) -> None:
        self.exclude: set[int] = set()
        """Pids never counted (the sampler itself with --exclude-self or --match)."""

    def resolve(self) -> list[psutil.Process]:
        raise NotImplementedError

    def members(self, roots: list[psutil.Process]) -> list[psutil.Process]:
        return tree_members(roots, self.exclude)

    def describe(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


class PidSelector(Selector):
    """One process by pid, and its descendants."""

    kind = "pid"
    follows_restarts = False

    def __init__(self, pid: int) -> None:
        super().__init__()
        if pid <= 0:
            raise CommandError(f"--pid must be a positive process id, got {pid}", EXIT_BAD_INPUT)
        self.pid = pid
        self._create_time: float | None = None

    def resolve(self) -> list[psutil.Process]:
        try:
            proc = psutil.Process(self.pid)
            created = proc.create_time()
            if proc.status() == psutil.STATUS_ZOMBIE:
                return []
        except psutil.Error:
            return []
        if self._create_time is None:
            self._create_time = created
        elif created != self._create_time:
            return []  # the pid was reused by another process: not our target
        return [proc]

    def describe(self) -> str:
        return f"pid {self.pid}"


class MatchSelector(Selector):
    """Processes whose command line (arguments joined by spaces) matches a regular expression.

    Never matches the sampler itself or its ancestors (the shell that started it). When several
    processes match, the roots are those with no matching ancestor; each root's tree is summed.
    """

    kind = "match"

    def __init__(self, pattern: str) -> None:
        super().__init__()
        try:
            self.regex = re.compile(pattern)
        except re.error as err:
            raise CommandError(f"--match {pattern!r} is not a valid regular expression: {err}") from err
        self.pattern = pattern
        self.exclude = _ancestor_pids(os.getpid())

    def resolve(self) -> list[psutil.Process]:
        matched: dict[int, psutil.Process] = {}
        ppid_of: dict[int, int] = {}
        for proc in psutil.process_iter(["ppid", "cmdline", "status"]):
            info = proc.info
            ppid_of[proc.pid] = info.get("ppid") or 0
            if proc.pid in self.exclude or info.get("status") == psutil.STATUS_ZOMBIE:
                continue
            cmdline = info.get("cmdline")
            if cmdline and self.regex.search(" ".join(cmdline)):
                matched[proc.pid] = proc
        return _roots_of(matched, ppid_of)

    def members(self, roots: list[psutil.Process]) -> list[psutil.Process]:
        return tree_members(roots, self.exclude)

    def describe(self) -> str:
        return f"match {self.pattern!r}"


class PortSelector(Selector):
    """The process(es) listening on a TCP port (any local address), and their descendants."""

    kind = "port"

    def __init__(self, port: int) -> None:
        super().__init__()
        if not 0 < port < 65536:
            raise CommandError(f"--port must be 1-65535, got {port}", EXIT_BAD_INPUT)
        self.port = port

    def resolve(self) -> list[psutil.Process]:
        try:
            conns = psutil.net_connections(kind="tcp")
        except psutil.AccessDenied as err:
            raise CommandError(f"--port {self.port}: permission denied listing sockets "
                               "(run as root or the target's user)", EXIT_TARGET_UNAVAILABLE) from err
        pids = {c.pid for c in conns
                if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == self.port and c.pid}
        procs: dict[int, psutil.Process] = {}
        ppid_of: dict[int, int] = {}
        for pid in pids - self.exclude:
            try:
                proc = psutil.Process(pid)
                ppid_of[pid] = proc.ppid()
                procs[pid] = proc
            except psutil.Error:
                continue
        # pre-fork servers share the listening socket: keep the topmost listener(s)
        for pid in list(ppid_of):
            parent = ppid_of[pid]
            for _ in range(64):
                if not parent or parent in ppid_of:
                    break
                try:
                    ppid_of[parent] = grand = psutil.Process(parent).ppid()
                except psutil.Error:
                    break
                parent = grand
        return _roots_of(procs, ppid_of)

    def describe(self) -> str:
        return f"port {self.port}"


def find_cgroup_dir(path: str) -> Path:
    """The cgroup directory for ``path``: an absolute directory, or a path relative to a hierarchy
    under /sys/fs/cgroup (cgroup v2 root, its ``unified`` mount, or v1 ``memory``)."""
    given = Path(path)
    if given.is_absolute() and (given / "cgroup.procs").exists():
        return given
    rel = str(path).lstrip("/")
    for base in (CGROUP_ROOT, CGROUP_ROOT / "unified", CGROUP_ROOT / "memory"):
        candidate = base / rel
        if (candidate / "cgroup.procs").exists():
            return candidate
    raise CommandError(f"--cgroup {path}: no such cgroup (looked for cgroup.procs under {given} and "
                       f"{CGROUP_ROOT}/{{,unified/,memory/}}{rel})", EXIT_TARGET_UNAVAILABLE)


def cgroup_pids(cgroup_dir: Path) -> list[int]:
    """Pids in ``cgroup_dir`` and its sub-cgroups (a container's processes)."""
    pids: list[int] = []
    dirs = [cgroup_dir]
    while dirs and len(dirs) < 10_000:
        current = dirs.pop()
        try:
            pids.extend(int(x) for x in (current / "cgroup.procs").read_text().split())
            dirs.extend(p for p in current.iterdir() if p.is_dir())
        except (OSError, ValueError):
            continue
    return pids


def cgroup_memory_file(cgroup_dir: Path) -> Path | None:
    """memory.current (v2) or memory.usage_in_bytes (v1) for this cgroup, None if neither exists."""
    for name in ("memory.current", "memory.usage_in_bytes"):
        if (cgroup_dir / name).exists():
            return cgroup_dir / name
    # a v2 path without the memory controller: try the same path in the v1 memory hierarchy
    for base in (CGROUP_ROOT / "unified", CGROUP_ROOT):
        try:
            rel = cgroup_dir.relative_to(base)
        except ValueError:
            continue
        candidate = CGROUP_ROOT / "memory" / rel / "memory.usage_in_bytes"
        if candidate.exists():
            return candidate
    return None


class CgroupSelector(Selector):
    """Every process in a cgroup (a container), summed; cgroup_memory_bytes from its counter."""

    kind = "cgroup"

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.cgroup_dir = find_cgroup_dir(path)
        self.memory_file = cgroup_memory_file(self.cgroup_dir)

    def _procs(self) -> dict[int, psutil.Process]:
        procs: dict[int, psutil.Process] = {}
        for pid in cgroup_pids(self.cgroup_dir):
            if pid in self.exclude or pid in procs:
                continue
            try:
                procs[pid] = psutil.Process(pid)
            except psutil.Error:
                continue
        return procs

    def resolve(self) -> list[psutil.Process]:
        procs = self._procs()
        ppid_of: dict[int, int] = {}
        for pid, proc in procs.items():
            try:
                ppid_of[pid] = proc.ppid()
            except psutil.Error:
                ppid_of[pid] = 0
        return _roots_of(procs, ppid_of)

    def members(self, roots: list[psutil.Process]) -> list[psutil.Process]:
        return list(self._procs().values())

    def read_memory_bytes(self) -> int | None:
        if self.memory_file is None:
            return None
        try:
            return int(self.memory_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def describe(self) -> str:
        return f"cgroup {self.cgroup_dir}"


def build_selector(*, pid: int | None = None, match: str | None = None, port: int | None = None,
                   cgroup: str | None = None) -> Selector:
    """Exactly one of the four → its Selector. CommandError (exit 2) otherwise."""
    given = [(k, v) for k, v in (("pid", pid), ("match", match), ("port", port), ("cgroup", cgroup))
             if v is not None]
    if len(given) != 1:
        raise CommandError("give exactly one of --pid, --match, --port, --cgroup", EXIT_BAD_INPUT)
    kind, value = given[0]
    if kind == "pid":
        return PidSelector(int(value))  # type: ignore[arg-type]
    if kind == "match":
        if not str(value).strip():
            raise CommandError("--match needs a non-empty regular expression", EXIT_BAD_INPUT)
        return MatchSelector(str(value))
    if kind == "port":
        return PortSelector(int(value))  # type: ignore[arg-type]
    return CgroupSelector(str(value))
