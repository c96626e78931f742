"""tests/support/netns.py: namespaces on one bridge reach each other and are removed afterwards."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.netns import netns_hosts, netns_unavailable

pytestmark = pytest.mark.skipif(bool(netns_unavailable()), reason=str(netns_unavailable()))


def _namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_hosts_reach_each_other_and_are_cleaned_up():
    # GIVEN two namespaces on one bridge
    with netns_hosts(["a", "b"]) as hosts:
        names = dict(hosts.ns)
        assert set(hosts) == {"a", "b"} and hosts["a"] != hosts["b"]
        server = subprocess.Popen(hosts.cmd("b", [sys.executable, "-c", _SERVER, hosts["b"]]),
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout.readline().strip() == "ready"
            # WHEN a connects to b; THEN b answers (traffic on the bridge)
            assert _connect(hosts, "a", hosts["b"]) == "ok"
            # AND the host itself (outside the namespaces) has no route into them
            assert _connect_here(hosts["b"]) != "ok"
            # WHEN b's link goes down; THEN a no longer reaches it
            hosts.down("b")
            assert _connect(hosts, "a", hosts["b"]) != "ok"
        finally:
            server.kill()
            server.wait()
    # THEN the namespaces are gone
    listed = _namespaces()
    assert not any(ns in listed for ns in names.values())


def test_cleanup_when_the_body_raises():
    with pytest.raises(RuntimeError), netns_hosts(["x"]) as hosts:
        ns = hosts.ns["x"]
        raise RuntimeError("boom")
    assert ns not in _namespaces()


_SERVER = """
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 18099)); s.listen(); print("ready", flush=True)
while True:
    c, _ = s.accept(); c.sendall(b"ok"); c.close()
"""
_CLIENT = """
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], 18099), timeout=1.5); print(c.recv(2).decode())
except OSError as e:
    print(type(e).__name__)
"""


def _connect(hosts, name: str, ip: str) -> str:
    out = subprocess.run(hosts.cmd(name, [sys.executable, "-c", _CLIENT, ip]), capture_output=True, text=True)
    return out.stdout.strip()


def _connect_here(ip: str) -> str:
    out = subprocess.run([sys.executable, "-c", _CLIENT, ip], capture_output=True, text=True)
    return out.stdout.strip()
