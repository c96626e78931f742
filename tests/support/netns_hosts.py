"""Two "hosts" on one machine: network namespaces joined by a veth pair on a private subnet.

``with two_hosts() as hosts:`` creates namespaces for the roles ``target`` and ``orchestrator``
(loopback up in each, ``hosts.addr[role]`` on a private /24), and removes them afterwards, also
when the test fails. ``hosts.cmd(role, [...])`` prefixes a command with ``ip netns exec``;
``hosts.link(role, up=False)`` takes that side's interface down (a network outage).

Needs root and ``ip`` (iproute2): :func:`skip_reason` says why not, for ``pytest.skip``.
(The workers helper has its own tests/support/netns.py for N hosts on a bridge; this one is
deliberately small and separate.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

ROLES = ("target", "orchestrator")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def skip_reason() -> str | None:
    """Why namespaces cannot be made here (None when they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    probe = f"llmsoak-probe-{uuid.uuid4().hex[:6]}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()[:200]}"
    _ip("netns", "del", probe, check=False)
    return None


@dataclass
class Hosts:
    ns: dict[str, str] = field(default_factory=dict)
    """role → namespace name"""
    ifname: dict[str, str] = field(default_factory=dict)
    """role → its veth interface inside its namespace"""
    addr: dict[str, str] = field(default_factory=dict)
    """role → its IPv4 address, e.g. ``10.213.7.1``"""

    def cmd(self, role: str, args: list[str]) -> list[str]:
        """``args`` run inside ``role``'s namespace (``ip netns exec`` execs it: same pid)."""
        return ["ip", "netns", "exec", self.ns[role], *args]

    def link(self, role: str, *, up: bool) -> None:
        """Bring ``role``'s interface up or down (down = its host drops off the network)."""
        _ip("-n", self.ns[role], "link", "set", self.ifname[role], "up" if up else "down")


@contextmanager
def two_hosts(prefix: str = "lsr") -> Iterator[Hosts]:
    tag = uuid.uuid4().hex[:6]
    third = int(tag[:2], 16) % 250 + 1  # a private 10.213.N.0/24; namespaces are isolated anyway
    hosts = Hosts()
    try:
        for i, role in enumerate(ROLES):
            name = f"{prefix}-{role[:3]}-{tag}"
            _ip("netns", "add", name)
            hosts.ns[role] = name
            hosts.ifname[role] = f"{prefix}{role[0]}{tag}"[:15]
            hosts.addr[role] = f"10.213.{third}.{i + 1}"
            _ip("-n", name, "link", "set", "lo", "up")
        a, b = ROLES
        _ip("link", "add", hosts.ifname[a], "netns", hosts.ns[a], "type", "veth",
            "peer", "name", hosts.ifname[b], "netns", hosts.ns[b])
        for role in ROLES:
            _ip("-n", hosts.ns[role], "addr", "add", f"{hosts.addr[role]}/24", "dev", hosts.ifname[role])
            _ip("-n", hosts.ns[role], "link", "set", hosts.ifname[role], "up")
        yield hosts
    finally:
        for name in hosts.ns.values():
            _ip("netns", "del", name, check=False)  # deletes its end of the veth, and so the pair
