"""A user whose requests get no response at all backs off (0.1 s doubling to 5 s) instead of
spinning on a dead target: a real headless Locust against a port nobody listens on."""

from __future__ import annotations

import csv
import socket
import subprocess
import sys
from pathlib import Path

import yaml
from support.processes import REPO


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # released: nothing listens there now


def test_stress_user_backs_off_from_an_unreachable_target(tmp_path: Path):
    # GIVEN a stress profile (no think time) pointed at a port where nothing listens
    profile = tmp_path / "dead.yaml"
    profile.write_text(yaml.safe_dump({
        "name": "dead-target",
        "target": {"url": f"http://127.0.0.1:{_dead_port()}", "flavour": "openai", "model": "m"},
        "patterns": {"stress": {"users": 1}},
        "load": {"shape": "none"},
    }))
    # WHEN one user runs for 6 seconds
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(REPO / "locustfiles" / "llm_chat.py"), "--profile", str(profile),
         "--headless", "-u", "1", "-r", "1", "-t", "6s", "--csv", str(tmp_path / "st"),
         "--llm-timeseries", str(tmp_path / "ts.csv"), "--only-summary"],
        capture_output=True, text=True, timeout=90, cwd=tmp_path)
    # THEN every request failed, but there were a handful (0.1+0.2+0.4+0.8+1.6+3.2 s of waits),
    # not thousands
    assert proc.returncode == 1, proc.stderr[-2000:]
    with open(tmp_path / "st_stats.csv", newline="") as fh:
        total = next(row for row in csv.DictReader(fh) if row["Name"] == "Aggregated")
    requests, failures = int(total["Request Count"]), int(total["Failure Count"])
    assert requests == failures and 3 <= requests <= 12, (requests, failures)
