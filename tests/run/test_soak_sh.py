"""``scripts/soak.sh``: start → status → stop over a short real run, with Locust as a master plus
2 local worker processes (issue 6, item 8: "test master plus 2 worker processes locally")."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import psutil
import pytest
from support.processes import REPO, wait_until
from test_run import assert_all_gone, manifest, write_profile

from llmsoak.events import read_events

SOAK = str(REPO / "scripts" / "soak.sh")


def soak(*args: str, env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", SOAK, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_usage_and_unknown_command_exit_2(tmp_path):
    env = {**os.environ, "SOAK_RUNS": str(tmp_path)}
    assert soak(env=env).returncode == 2
    bad = soak("frobnicate", env=env)
    assert bad.returncode == 2 and "unknown command" in bad.stderr
    missing = soak("status", env=env)
    assert missing.returncode == 2 and "no run directory" in missing.stderr


def test_help_exits_0_with_the_usage_only(tmp_path):
    out = soak("--help", env={**os.environ, "SOAK_RUNS": str(tmp_path)})
    assert out.returncode == 0 and "scripts/soak.sh start PROFILE" in out.stdout
    assert "set -euo" not in out.stdout and "END OF USAGE" not in out.stdout


def test_bad_option_is_caught_before_any_run_dir_and_latest_skips_non_runs(tmp_path):
    env = {**os.environ, "SOAK_RUNS": str(tmp_path / "runs")}
    bad = soak("start", str(REPO / "profiles/smoke.yaml"), "--duraton", "5s", env=env)
    assert bad.returncode == 2 and "llmsoak run: error: unrecognized arguments" in bad.stderr, bad.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    (tmp_path / "runs" / "junk").mkdir(parents=True)  # no run.json: not a run
    missing = soak("status", env=env)
    assert missing.returncode == 2 and "no run directory" in missing.stderr, missing.stderr


def test_start_against_a_dead_target_fails_with_4_and_every_command_reports_it(tmp_path):
    """start waits past the start-up checks: exit 4 with the one-line reason; status, stop and
    report on that run say so with the run's exit code."""
    env = {**os.environ, "SOAK_RUNS": str(tmp_path / "runs")}
    profile = write_profile(tmp_path / "dead.yaml", command=False)
    started = soak("start", str(profile), "--duration", "10s", env=env)
    assert started.returncode == 4, started.stdout + started.stderr
    assert "does not answer" in started.stderr and len(started.stderr.strip().splitlines()) == 1
    status = soak("status", env=env)
    assert status.returncode == 4 and "status:     failed" in status.stdout
    assert "verdict None" not in status.stdout and "memory now" not in status.stdout, status.stdout
    report = soak("report", env=env)
    assert report.returncode == 4 and "run failed before any load: target" in report.stderr, report.stderr
    assert soak("stop", env=env).returncode == 4


@pytest.mark.slow
def test_start_status_stop_with_master_and_two_workers(tmp_path):
    env = {**os.environ, "SOAK_RUNS": str(tmp_path / "runs")}
    profile = write_profile(tmp_path / "bg.yaml", duration="10m", workers=2)

    started = soak("start", str(profile), env=env)
    assert started.returncode == 0, started.stderr
    run_dir = Path(started.stdout.strip().splitlines()[-1])
    assert run_dir.is_dir() and (run_dir / "orchestrator.pid").exists()
    try:
        # Locust master + 2 workers: three processes in Locust's tree once it runs.
        def locust_tree() -> int:
            rec = (manifest(run_dir).get("processes") or {}).get("locust")
            if not rec:
                return 0
            try:
                return 1 + len(psutil.Process(rec["pid"]).children(recursive=True))
            except psutil.Error:
                return 0
        wait_until(lambda: locust_tree() >= 3, 60, what="Locust master + 2 workers")
        def requests_served() -> float:
            from llmsoak.run.snapshot import snapshot
            from llmsoak.rundir import RunDir

            return snapshot(RunDir(run_dir)).get("requests_total") or 0
        wait_until(lambda: requests_served() > 5, 60, what="requests through Locust")
        wait_until(lambda: (run_dir / "samples/target.csv").exists(), 30, what="target samples")

        status = soak("status", str(run_dir), env=env)
        assert status.returncode == 0, status.stderr
        for word in ("status:     running", "elapsed:", "remaining", "users", "req/s", "memory now:", "7-day projection"):
            assert word in status.stdout, status.stdout
        assert "MiB" in status.stdout  # the target's memory now, read live
        as_json = json.loads(subprocess.run([str(REPO / ".venv/bin/llmsoak"), "run", "--status", str(run_dir), "--json"],
                                            capture_output=True, text=True, cwd=REPO).stdout)
        assert as_json["memory_now_bytes"] > 1e6 and as_json["remaining_s"] > 0
    finally:
        stopped = soak("stop", str(run_dir), env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert "status:     stopped" in stopped.stdout
    m = manifest(run_dir)
    assert m["status"] == "stopped" and m["result"]["end_reason"] == "stopped by SIGTERM"
    assert not (run_dir / "orchestrator.pid").exists()
    for path in ("locust/report.html", "locust/stats.csv", "locust/stats_history.csv", "profile.yaml",
                 "samples/target.csv", "samples/locust.csv", "analysis/verdict.json", "events.csv"):
        assert (run_dir / path).is_file(), path
    kinds = {e["kind"] for e in read_events(run_dir / "events.csv")}
    assert {"start", "segment", "stop"} <= kinds
    assert_all_gone(m)

    report = soak("report", str(run_dir), env=env)
    assert report.returncode in (0, 1, 3), report.stdout + report.stderr
    assert f"report: {run_dir}/analysis/report.html" in report.stdout
