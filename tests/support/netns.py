"""Separate hosts on one machine: Linux network namespaces on one bridge, for distributed tests.

``with netns_hosts(["target", "master", "w1"]) as hosts:`` creates one namespace per name, each
with a veth pair whose outer end sits on a fresh bridge, addresses in a private /24 the helper
picks (an unused ``10.X.Y.0/24``), loopback up; it yields ``{name: ip}`` and always removes the
namespaces, veths and the bridge (also when the body raises). Traffic between the namespaces
stays on the bridge: the bridge has no address and no route to anything else.

Run a command inside one with :func:`in_ns` (``["ip", "netns", "exec", NS, *argv]``): the
process keeps the host's filesystem and process table (a sampler there still sees every pid),
only its network is the namespace's.

Needs root (CI runs as root): :func:`netns_unavailable` says why not, for ``pytest.skip``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator

PREFIX_LEN = 24


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=20)


def netns_unavailable() -> str | None:
    """None when namespaces can be created here; else the reason (for ``pytest.skip``)."""
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root (CI runs as root)"
    name = "lsk-probe-" + secrets.token_hex(3)
    probe = _ip("netns", "add", name, check=False)
    if probe.returncode != 0:
        return f"`ip netns add` failed: {probe.stderr.strip() or probe.returncode}"
    _ip("netns", "del", name, check=False)
    return None


def _free_subnet() -> str:
    """``10.X.Y`` of a /24 that no interface on the host uses (randomised: parallel tests differ)."""
    used = _ip("-o", "-4", "addr", "show").stdout
    for _ in range(100):
        base = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(250) + 1}"
        if f" {base}." not in used:
            return base
    raise RuntimeError("no free 10.x.y.0/24 subnet found for the test namespaces")


def in_ns(ns: str, argv: list[str]) -> list[str]:
    """``argv`` run inside namespace ``ns``."""
    return ["ip", "netns", "exec", ns, *argv]


@contextlib.contextmanager
def netns_hosts(names: list[str]) -> Iterator[dict[str, str]]:
    """Namespaces ``names`` on one bridge; yields a :class:`HostMap` ``{name: ip}`` whose
    ``.ns[name]`` is the namespace's full name (``lsk<tag>-<name>``, unique per call).

    Always cleans up: namespaces (which removes their veth ends), the host-side veths, the bridge.
    """
    tag = secrets.token_hex(2)
    base = _free_subnet()
    bridge = f"lsk{tag}br"
    created_ns: list[str] = []
    created_links: list[str] = [bridge]
    hosts = HostMap()
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("link", "set", bridge, "up")
        for i, name in enumerate(names, start=1):
            ns = f"lsk{tag}-{name}"[:40]
            outer, inner = f"lsk{tag}o{i}", f"lsk{tag}i{i}"
            _ip("netns", "add", ns)
            created_ns.append(ns)
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            created_links.append(outer)
            _ip("link", "set", inner, "netns", ns)
            _ip("link", "set", outer, "master", bridge)
            _ip("link", "set", outer, "up")
            addr = f"{base}.{i + 1}"
            _ip("-n", ns, "addr", "add", f"{addr}/{PREFIX_LEN}", "dev", inner)
            _ip("-n", ns, "link", "set", inner, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            hosts[name] = addr
            hosts.ns[name] = ns
        yield hosts
    finally:
        for ns in created_ns:
            _ip("netns", "del", ns, check=False)
        for link in reversed(created_links):
            _ip("link", "del", link, check=False)


class HostMap(dict):
    """``{name: ip}``, plus ``.ns[name]``: the namespace to pass to :func:`in_ns`."""

    def __init__(self) -> None:
        super().__init__()
        self.ns: dict[str, str] = {}

    def cmd(self, name: str, argv: list[str]) -> list[str]:
        """``argv`` run in the namespace of host ``name``."""
        return in_ns(self.ns[name], argv)

    def down(self, name: str) -> None:
        """Cut host ``name`` off the bridge (its link down): a link failure, not a process exit."""
        ns = self.ns[name]
        links = _ip("-n", ns, "-o", "link", "show").stdout
        for line in links.splitlines():
            dev = line.split(":")[1].strip().split("@")[0]
            if dev != "lo":
                _ip("-n", ns, "link", "set", dev, "down")

    def up(self, name: str) -> None:
        ns = self.ns[name]
        links = _ip("-n", ns, "-o", "link", "show").stdout
        for line in links.splitlines():
            dev = line.split(":")[1].strip().split("@")[0]
            if dev != "lo":
                _ip("-n", ns, "link", "set", dev, "up")
