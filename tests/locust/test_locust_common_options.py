"""Headless runs of llmsoak's locustfile honour Locust's -t, -u and -r even when the profile has a
load shape (Locust itself ignores them for shape classes): a real Locust against the stub."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import yaml
from support.processes import REPO


def _profile(tmp_path: Path, url: str, shape: dict) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({
        "name": "common-options",
        "target": {"url": url, "flavour": "openai", "endpoint": "chat", "model": "m", "stream": True},
        "patterns": {"stress": {"weight": 1, "max_tokens": 8}},
        "load": shape,
        "run": {"duration": "10m"},
    }))
    return path


def _run(tmp_path: Path, profile: Path, *extra: str) -> tuple[subprocess.CompletedProcess, float, list[int]]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(REPO / "locustfiles" / "llm_chat.py"), "--profile", str(profile),
         "--headless", "--csv", str(tmp_path / "st"), "--llm-timeseries", str(tmp_path / "ts.csv"), *extra],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    elapsed = time.monotonic() - started
    with open(tmp_path / "st_stats_history.csv", newline="") as fh:
        users = [int(row["User Count"]) for row in csv.DictReader(fh)]
    return proc, elapsed, users


def test_run_time_and_users_reach_a_constant_shape(tmp_path, start_stub):
    # GIVEN a profile whose constant shape says 4 users for 10 minutes
    stub = start_stub("--ttft-ms", "5", "--itl-ms", "1")
    profile = _profile(tmp_path, stub.url, {"shape": "constant", "users": 4, "spawn_rate": 4})
    # WHEN Locust runs it headless with -u 2 -r 2 -t 4s
    proc, elapsed, users = _run(tmp_path, profile, "-u", "2", "-r", "2", "-t", "4s")
    # THEN it stops after about 4 s (not 10 minutes) with 2 users, and Locust does not claim -t is ignored
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert elapsed < 60, f"ran {elapsed:.0f} s"
    assert max(users) == 2, users
    assert "will be ignored" not in proc.stderr
    assert "run time reached" in proc.stderr


def test_run_time_ends_a_ramp_and_users_are_refused_with_a_reason(tmp_path, start_stub):
    # GIVEN a ramp shape from 1 to 3 users over an hour
    stub = start_stub("--ttft-ms", "5", "--itl-ms", "1")
    profile = _profile(tmp_path, stub.url, {"shape": "ramp", "spawn_rate": 5,
                                            "ramp": {"from_users": 1, "to_users": 3, "duration": "1h"}})
    # WHEN -u and -t are given
    proc, elapsed, users = _run(tmp_path, profile, "-u", "9", "-t", "4s")
    # THEN -t ends the run, -u is not applied, and the log says why
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert elapsed < 60 and max(users) < 9, (elapsed, users)
    assert "-u/--users and -r/--spawn-rate are ignored" in proc.stderr
