"""``llmsoak run``: short real runs against the reference target (started by the run itself).

GIVEN a profile whose target.command starts ``llmsoak stub`` on a free port, WHEN the orchestrator
runs it (foreground, as a subprocess), THEN the run directory, segments, resume, SLO gate and
secrets behave as docs/soak.md says. Each run lasts 10–30 s of load.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from support.processes import REPO, wait_until

from llmsoak.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_TARGET_UNAVAILABLE
from llmsoak.events import read_events

SECRET = "sk-test-SECRET-123"


def write_profile(path: Path, *, duration: str = "20s", stub_args: str = "--ttft-ms 10 --itl-ms 1",
                  slo: str = "  fail_on_leak: false\n", workers: int = 0, extra_target: str = "",
                  command: bool = True, say_first: str = "") -> Path:
    """A small profile: 4 users (one per pattern, short think times) against a stub we start
    (after it prints ``say_first``, through sh, when given)."""
    stub = f"llmsoak stub --port {{port}} --output-tokens 16 {stub_args}"
    if say_first:
        stub = f"sh -c 'echo \"{say_first}\"; exec {stub}'"
    cmd = f"  command: {stub}\n" if command else ""
    url = "http://127.0.0.1:{port}" if command else "http://127.0.0.1:9"
    path.write_text(f"""name: {path.stem}
target:
  url: {url}
{cmd}  ready_timeout_s: 30
  model: stub-model
  stream: true
  timeout_s: 10
{extra_target}patterns:
  active: {{users: 1, think_time_s: {{uniform: [0.2, 0.5]}}, first_message_delay_s: 0}}
  casual: {{users: 1, think_time_s: {{uniform: [0.5, 1]}}, first_message_delay_s: 0}}
  sporadic: {{users: 1, think_time_s: {{uniform: [0.5, 1]}}, first_message_delay_s: 0, session_pause_s: 1}}
  stress: {{users: 1, prompt_tokens: 200, max_tokens: 16}}
load: {{shape: constant, users: 4, spawn_rate: 4}}
run: {{duration: {duration}, workers: {workers}, checkpoint_interval: 5s}}
sampler: {{interval_s: 0.5}}
slo:
{slo}""")
    return path


def llmsoak(*args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "llmsoak", *args], cwd=REPO, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def manifest(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return {}


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def assert_all_gone(m: dict) -> None:
    """Nothing the run started is left running."""
    for name, rec in (m.get("processes") or {}).items():
        pid = rec.get("pid")
        if pid and psutil.pid_exists(pid):
            try:
                p = psutil.Process(pid)
                alive = p.status() != psutil.STATUS_ZOMBIE and abs(p.create_time() - rec["create_time"]) < 1
            except psutil.Error:
                alive = False
            assert not alive, f"{name} (pid {pid}) still running"


# ------------------------------------------------------------------------------------ quick ones

def test_bad_profile_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntarget: {url: 'http://127.0.0.1:1', model: m}\nrun: {duration: soon}\n")
    code, out = finish(llmsoak("run", "--profile", str(bad), "--out", str(tmp_path / "run")))
    assert code == EXIT_BAD_INPUT
    assert "run.duration" in out and "Traceback" not in out and len(out.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_target_that_does_not_answer_exits_4(tmp_path):
    profile = write_profile(tmp_path / "nothing.yaml", command=False)
    code, out = finish(llmsoak("run", "--profile", str(profile), "--out", str(tmp_path / "run")))
    assert code == EXIT_TARGET_UNAVAILABLE, out
    assert "does not answer" in out and "Traceback" not in out
    assert manifest(tmp_path / "run")["status"] == "failed"


def test_summary_line_names_the_deciding_metric_and_its_reason():
    from llmsoak.run.checkpoint import summary_line

    verdict = {"verdict": "inconclusive", "decided_by": ["num_fds"], "metrics": {
        "rss_bytes": {"verdict": "ok", "slope_per_hour": -0.2, "reason": "rss_bytes is flat."},
        "num_fds": {"verdict": "inconclusive", "slope_per_hour": 0.5,
                    "reason": "num_fds has only 5 sample(s)."}}}
    line = summary_line(verdict)
    assert line == "inconclusive (decided by num_fds): num_fds has only 5 sample(s).", line
    verdict["decided_by"], verdict["verdict"] = ["rss_bytes"], "ok"
    assert summary_line(verdict) == "ok (decided by rss_bytes), 0 B/h: rss_bytes is flat."  # never -0 B/h


def test_steps_shape_without_run_duration_runs_for_its_steps():
    out = subprocess.run([sys.executable, "-m", "llmsoak", "run", "--check", "--profile",
                          str(REPO / "profiles/stress.yaml")], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0 and "600 s of load" in out.stdout, out.stdout + out.stderr


def test_status_of_a_missing_run_dir_is_exit_2(tmp_path):
    code, out = finish(llmsoak("run", "--status", str(tmp_path / "nope")))
    assert code == EXIT_BAD_INPUT and "no such run directory" in out


# ----------------------------------------------------------------------------- real short runs

@pytest.fixture(scope="module")
def slo_breach_run(tmp_path_factory):
    """One run, shared by two tests: TTFT SLO of 1 ms against a 50 ms stub, API key in the env
    (and in the target's own log: it prints it when it starts, as some servers log their args)."""
    tmp = tmp_path_factory.mktemp("slo")
    profile = write_profile(tmp / "slo.yaml", duration="12s", stub_args="--ttft-ms 50 --itl-ms 1",
                            slo="  ttft_p95_ms: 1\n  e2e_p95_ms: 60000\n  fail_on_leak: false\n",
                            extra_target="  api_key_env: OPENAI_API_KEY\n",
                            say_first="starting with api key $OPENAI_API_KEY")
    run_dir = tmp / "run"
    code, out = finish(llmsoak("run", "--profile", str(profile), "--out", str(run_dir),
                               env={"OPENAI_API_KEY": SECRET}))
    return code, out, run_dir


def test_slo_breach_gives_exit_1(slo_breach_run):
    code, out, run_dir = slo_breach_run
    assert code == EXIT_FAILED, out
    result = manifest(run_dir)["result"]
    ttft = next(c for c in result["slo"] if c["name"] == "ttft_p95_ms")
    assert ttft["status"] == "breach" and ttft["observed"] >= 40, ttft  # the stub waits 50 ms
    e2e = next(c for c in result["slo"] if c["name"] == "e2e_p95_ms")
    assert e2e["status"] == "pass" and ttft["observed"] < e2e["observed"] < 60000, e2e
    assert "SLO ttft_p95_ms: breach" in out
    events = read_events(run_dir / "events.csv")
    assert any(e["kind"] == "alert" and "ttft_p95_ms" in e["detail"] for e in events)
    # AND the load shape's own events reach the run's timeline (Locust is told where it is)
    assert any(e["kind"] == "shape" and e["detail"].startswith("constant: 4 users") for e in events), events


def test_api_key_from_env_is_in_no_file_of_the_run(slo_breach_run):
    _, _, run_dir = slo_breach_run
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert len(files) > 10  # the run really wrote its files
    leaked = [str(p) for p in files if SECRET.encode() in p.read_bytes()]
    assert leaked == []
    assert "OPENAI_API_KEY" in (run_dir / "profile.yaml").read_text()  # the name is kept
    # the target did log it: the run masked it there once the target had stopped
    assert "starting with api key ***REDACTED***" in (run_dir / "logs" / "target.log").read_text()


@pytest.mark.slow
def test_locust_killed_mid_run_is_restarted_as_a_new_segment(tmp_path):
    profile = write_profile(tmp_path / "kill-locust.yaml", duration="24s")
    run_dir = tmp_path / "run"
    proc = llmsoak("run", "--profile", str(profile), "--out", str(run_dir), "--quiet")
    try:
        seg1 = wait_until(lambda: (manifest(run_dir).get("processes") or {}).get("locust"), 60, what="Locust")
        wait_until(lambda: (run_dir / "locust/seg-001/stats_stats_history.csv").stat().st_size > 400
                   if (run_dir / "locust/seg-001/stats_stats_history.csv").exists() else False, 30,
                   what="segment 1 stats")
        os.kill(seg1["pid"], signal.SIGKILL)
        wait_until(lambda: len(manifest(run_dir).get("segments") or []) >= 2, 30, what="segment 2")
        code, out = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    m = manifest(run_dir)
    assert m["status"] == "finished", out
    assert len(m["segments"]) == 2 and m["restarts"].get("locust") == 1
    assert m["segments"][0]["end_reason"].startswith("Locust exited")
    kinds = [e["kind"] for e in read_events(run_dir / "events.csv")]
    assert kinds.count("restart") >= 1 and kinds.count("stop") >= 1
    # Stitched: the run's stats_history.csv holds both segments' rows, one header.
    history = (run_dir / "locust/stats_history.csv").read_text().splitlines()
    seg_rows = [len((run_dir / f"locust/seg-00{i}/stats_stats_history.csv").read_text().splitlines()) - 1
                for i in (1, 2)]
    assert len(history) - 1 == sum(seg_rows) and min(seg_rows) > 0
    assert history.count(history[0]) == 1
    assert (run_dir / "analysis/verdict.json").exists()
    assert_all_gone(m)


@pytest.mark.slow
def test_orchestrator_killed_then_resume_continues_and_appends(tmp_path):
    profile = write_profile(tmp_path / "resume.yaml", duration="20s")
    run_dir = tmp_path / "run"
    proc = llmsoak("run", "--profile", str(profile), "--out", str(run_dir), "--quiet")
    try:
        samples = run_dir / "samples/target.csv"
        wait_until(lambda: samples.exists() and len(samples.read_text().splitlines()) > 10, 60,
                   what="target samples")
        before = manifest(run_dir)
        target_pid = before["processes"]["target"]["pid"]
        proc.send_signal(signal.SIGKILL)  # a crash: no cleanup at all
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    rows_before = len((run_dir / "samples/target.csv").read_text().splitlines())
    assert psutil.pid_exists(target_pid)  # the target outlives its orchestrator
    code, out = finish(llmsoak("run", "--resume", str(run_dir), "--quiet"))
    m = manifest(run_dir)
    assert m["status"] == "finished", out
    assert m["resumes"] == 1 and len(m["segments"]) == 2
    assert m["segments"][0]["end_reason"] == "orchestrator died"
    assert m["processes"]["target"]["pid"] == target_pid  # re-attached, not restarted
    assert len((run_dir / "samples/target.csv").read_text().splitlines()) > rows_before + 5  # appended
    load_s = sum(s["ended_at"] - s["started_at"] for s in m["segments"])
    assert load_s >= 19  # the full duration of load, across both segments
    assert "resume" in " ".join(e["detail"] for e in read_events(run_dir / "events.csv"))
    # Resuming a finished run is refused with one line.
    code2, out2 = finish(llmsoak("run", "--resume", str(run_dir)))
    assert code2 == EXIT_BAD_INPUT and "already ended" in out2
    assert_all_gone(m)
    time.sleep(0.5)
    assert not psutil.pid_exists(target_pid) or psutil.Process(target_pid).status() == psutil.STATUS_ZOMBIE
