"""``llmsoak run --remote-workers N`` and ``llmsoak worker --master HOST:PORT`` on loopback.

GIVEN a run whose profile asks for remote workers and a stub it starts itself, WHEN workers join
with one command (no profile file on their side), THEN they run the users; a worker killed
mid-run is a ``worker lost`` event with the users shortfall, restarted it ``rejoined``, and the
run ends with a verdict. Bad input (a wrong token, no workers, off-loopback without a token)
gets one line and its documented exit code. The same across network namespaces:
test_netns_soak.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from support.remote_runs import Procs, llmsoak_argv, wait_for, worker_events, write_remote_profile

from llmsoak.errors import EXIT_BAD_INPUT, EXIT_WORKERS_MISSING

STUB = "llmsoak stub --port {port} --output-tokens 16 --ttft-ms 5 --itl-ms 1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def procs(tmp_path):
    procs = Procs(tmp_path)
    yield procs
    procs.stop_all()


def test_workers_join_one_is_lost_and_rejoins_and_the_run_reports_it(tmp_path, procs):
    # GIVEN a run expecting 2 remote workers on a loopback port, its prompts in a file of its own
    port = free_port()
    prompts = tmp_path / "mine.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"question number {i} about soak tests"}) + "\n"
                               for i in range(20)))
    profile = write_remote_profile(tmp_path / "remote.yaml", url="http://127.0.0.1:{port}", command=STUB,
                                   master_bind=f"127.0.0.1:{port}", duration="75s", prompts_file=prompts)
    run_dir = tmp_path / "run"
    master = procs.start("master", llmsoak_argv("run", "--profile", str(profile), "--out", str(run_dir),
                                                "--progress-interval", "5s"))
    # WHEN two workers join from another folder (nothing to copy: the profile comes from the master)
    worker_cmd = llmsoak_argv("worker", "--master", f"127.0.0.1:{port}")
    procs.start("w1", worker_cmd)
    w2 = procs.start("w2", worker_cmd)
    wait_for(lambda: sum("joined" in e for e in worker_events(run_dir)) >= 2, 90, "two workers joined")
    wait_for(lambda: "segment 1 started" in procs.output("master"), 30, "the segment to start")
    time.sleep(8)
    # AND one worker machine dies (its llmsoak worker and Locust killed at once)
    Procs.kill_tree(w2)
    lost = wait_for(lambda: [e for e in worker_events(run_dir) if e.startswith("worker lost")], 30, "worker lost")
    # THEN the loss is an event naming the workers left and the users still running
    assert "1 of 2 expected workers connected" in lost[0] and "users" in lost[0], lost
    time.sleep(3)
    # WHEN it comes back
    procs.start("w2-again", worker_cmd)
    rejoined = wait_for(lambda: [e for e in worker_events(run_dir) if e.startswith("worker rejoined")], 90,
                        "worker rejoined")
    assert "2 of 2 expected workers connected" in rejoined[0]
    # THEN the run finishes with a verdict and reports the loss and the shortfall
    code = master.wait(200)
    out = procs.output("master")
    assert code == 0, out[-3000:]
    result = json.loads((run_dir / "run.json").read_text())["result"]
    assert result["verdict"] in ("ok", "leak", "inconclusive")
    figures = result["remote_workers"]
    assert figures["expected"] == 2 and figures["lost"] == 1 and figures["rejoined"] == 1
    assert figures["max_shortfall_users"] >= 1, figures  # the dead worker's users were not running
    assert "remote workers: 2 expected, 1 lost, 1 rejoined" in out
    assert result["requests"] > 20
    assert "joined the master at 127.0.0.1:" in procs.output("w1")
    # AND --status says the same
    status = subprocess.run(llmsoak_argv("run", "--status", str(run_dir)), capture_output=True, text=True, timeout=60)
    assert "remote workers: 2 expected, 1 lost, 1 rejoined" in status.stdout, status.stdout


def test_a_wrong_token_is_refused_on_both_sides_and_missing_workers_end_the_run(tmp_path, procs):
    # GIVEN a master with a token, waiting 12 s for one worker
    port = free_port()
    profile = write_remote_profile(tmp_path / "tok.yaml", url="http://127.0.0.1:{port}", command=STUB,
                                   remote_workers=1, master_bind=f"127.0.0.1:{port}", workers_timeout="12s")
    run_dir = tmp_path / "run"
    master = procs.start("master", llmsoak_argv("run", "--profile", str(profile), "--out", str(run_dir)),
                         env={"LLMSOAK_WORKER_TOKEN": "the-right-token-1234"})
    # WHEN a worker with another token joins
    worker = procs.start("bad", llmsoak_argv("worker", "--master", f"127.0.0.1:{port}"),
                         env={"LLMSOAK_WORKER_TOKEN": "a-wrong-token-5678"})
    # THEN the worker says why in one line and exits 2
    assert worker.wait(90) == EXIT_BAD_INPUT
    lines = [line for line in procs.output("bad").splitlines() if line.strip()]
    assert lines[-1].startswith("llmsoak worker: error: the master at 127.0.0.1:")
    assert "wrong LLMSOAK_WORKER_TOKEN" in lines[-1]
    # AND the master records the refusal; with no worker the run fails with exit 6 and one line
    assert master.wait(120) == EXIT_WORKERS_MISSING
    out = procs.output("master")
    assert "0 of 1 remote worker(s) joined the master on 127.0.0.1:" in out and "1 refused" in out
    assert any("worker refused (join)" in e and "wrong LLMSOAK_WORKER_TOKEN" in e for e in worker_events(run_dir))
    # AND no token value reached a file of the run or a log
    for path in [*run_dir.rglob("*"), tmp_path / "master.out", tmp_path / "bad.out"]:
        if path.is_file():
            text = path.read_text(errors="replace")
            assert "the-right-token-1234" not in text and "a-wrong-token-5678" not in text, path


def test_a_plain_locust_worker_is_never_counted(tmp_path, procs):
    # GIVEN a master waiting for one worker
    port = free_port()
    profile = write_remote_profile(tmp_path / "plain.yaml", url="http://127.0.0.1:{port}", command=STUB,
                                   remote_workers=1, master_bind=f"127.0.0.1:{port}", workers_timeout="15s")
    run_dir = tmp_path / "run"
    master = procs.start("master", llmsoak_argv("run", "--profile", str(profile), "--out", str(run_dir)))
    # WHEN a plain Locust worker (not llmsoak's locustfile: no hello) connects
    locustfile = tmp_path / "plain_locustfile.py"
    locustfile.write_text("from locust import User, task\n\nclass U(User):\n    @task\n    def t(self):\n"
                          "        pass\n")
    procs.start("plain", [sys.executable, "-m", "locust", "-f", str(locustfile), "--worker",
                          "--master-host", "127.0.0.1", "--master-port", str(port)])
    # THEN the master refuses it (an event) and, having no worker, fails with exit 6
    assert master.wait(120) == EXIT_WORKERS_MISSING
    refused = [e for e in worker_events(run_dir) if e.startswith("worker refused (connect)")]
    assert refused and "plain Locust worker" in refused[0]


@pytest.mark.parametrize("bind, env, code, message", [
    ("0.0.0.0:5557", {}, EXIT_BAD_INPUT, "run.master_bind 0.0.0.0:5557: listening beyond this machine needs"),
    ("nonsense", {}, EXIT_BAD_INPUT, "run.master_bind: expected HOST:PORT"),
    ("0.0.0.0:5557", {"LLMSOAK_WORKER_TOKEN": "t0k3n-value"}, 0, "OK"),
])
def test_master_bind_off_loopback_needs_a_token(tmp_path, bind, env, code, message):
    profile = write_remote_profile(tmp_path / "bind.yaml", url="http://127.0.0.1:9")
    proc = subprocess.run(llmsoak_argv("run", "--profile", str(profile), "--check", "--master-bind", bind),
                          capture_output=True, text=True, env={**_env_without_token(), **env}, timeout=60)
    assert proc.returncode == code, proc.stderr
    out = (proc.stdout + proc.stderr).strip()
    assert message in out and len(out.splitlines()) == 1 and "Traceback" not in out


def test_worker_bad_input_is_one_line(tmp_path):
    for args, message in ((["--master", "a b"], "--master 'a b': expected HOST[:PORT]"),
                          (["--master", "127.0.0.1:1", "--processes", "0"], "--processes 0"),
                          (["--master", "127.0.0.1:1", "--join-timeout", "2s"], "no answer from a master at 127.0.0.1:1")):
        proc = subprocess.run(llmsoak_argv("worker", *args), capture_output=True, text=True, timeout=60,
                              env=_env_without_token())
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode in (2, 4) and message in lines[-1] and "Traceback" not in proc.stderr, proc.stderr


def _env_without_token() -> dict:
    return {k: v for k, v in os.environ.items() if k != "LLMSOAK_WORKER_TOKEN"}



def test_a_restarted_master_gets_its_worker_back_in_the_next_segment(tmp_path, procs):
    # GIVEN a run with one remote worker, running
    port = free_port()
    profile = write_remote_profile(tmp_path / "seg.yaml", url="http://127.0.0.1:{port}", command=STUB,
                                   remote_workers=1, master_bind=f"127.0.0.1:{port}", duration="40s", users=2)
    run_dir = tmp_path / "run"
    master = procs.start("master", llmsoak_argv("run", "--profile", str(profile), "--out", str(run_dir)))
    procs.start("w1", llmsoak_argv("worker", "--master", f"127.0.0.1:{port}"))
    wait_for(lambda: "segment 1 started" in procs.output("master"), 90, "segment 1")
    time.sleep(5)
    # WHEN the run's Locust master dies
    pid = json.loads((run_dir / "run.json").read_text())["processes"]["locust"]["pid"]
    os.kill(pid, signal.SIGKILL)
    # THEN the run starts a new segment, the worker joins it (well before Locust's 60 s timeout)
    wait_for(lambda: "segment 2 started" in procs.output("master"), 90, "segment 2 with its worker")
    code = master.wait(150)
    assert code == 0, procs.output("master")[-3000:]
    m = json.loads((run_dir / "run.json").read_text())
    assert len(m["segments"]) == 2
    assert m["result"]["remote_workers"]["joined"] >= 2  # counts carry over between segments
    assert procs.output("w1").count("joined the master at") >= 2


def test_when_every_worker_was_lost_the_next_segment_runs_on_the_worker_back(tmp_path, procs):
    # GIVEN a run on one remote worker
    port = free_port()
    profile = write_remote_profile(tmp_path / "all.yaml", url="http://127.0.0.1:{port}", command=STUB,
                                   remote_workers=1, master_bind=f"127.0.0.1:{port}", duration="45s", users=2)
    run_dir = tmp_path / "run"
    master = procs.start("master", llmsoak_argv("run", "--profile", str(profile), "--out", str(run_dir)))
    worker_cmd = llmsoak_argv("worker", "--master", f"127.0.0.1:{port}")
    w1 = procs.start("w1", worker_cmd)
    wait_for(lambda: "segment 1 started" in procs.output("master"), 90, "segment 1")
    time.sleep(5)
    # WHEN it dies (a headless Locust master ends its test when the last worker goes missing)
    Procs.kill_tree(w1)
    wait_for(lambda: [e for e in worker_events(run_dir) if e.startswith("worker lost")], 30, "worker lost")
    # AND comes back
    procs.start("w1-again", worker_cmd)
    # THEN the run goes on in a new segment on it, and ends normally with a verdict
    wait_for(lambda: "segment 2 started" in procs.output("master"), 90, "segment 2")
    assert master.wait(150) == 0, procs.output("master")[-3000:]
    m = json.loads((run_dir / "run.json").read_text())
    assert m["result"]["verdict"] in ("ok", "leak", "inconclusive")
    assert m["segments"][1]["requests"] > 0  # load again after the worker came back
    assert m["result"]["remote_workers"]["lost"] == 1


def test_a_worker_of_another_version_is_refused_with_one_line(tmp_path, procs, monkeypatch):
    # GIVEN a master waiting for a worker
    port = free_port()
    profile = write_remote_profile(tmp_path / "ver.yaml", url="http://127.0.0.1:{port}", command=STUB,
                                   remote_workers=1, master_bind=f"127.0.0.1:{port}", workers_timeout="60s")
    run_dir = tmp_path / "run"
    procs.start("master", llmsoak_argv("run", "--profile", str(profile), "--out", str(run_dir)))
    # WHEN a worker of another llmsoak version asks to join (its join request, as `llmsoak worker` sends it)
    from llmsoak.locust import worker_auth, worker_join  # imports Locust (gevent): only this test needs it

    monkeypatch.setattr(worker_auth, "versions", lambda: {"llmsoak": "0.0.1", "locust": "2.47.0"})
    with pytest.raises(worker_join.JoinRefused) as refused:
        worker_join.fetch_profile("127.0.0.1", port, None, 90)
    # THEN it is told why in one line, and the master records it
    assert "llmsoak 0.0.1 on the worker" in str(refused.value) and "\n" not in str(refused.value)
    wait_for(lambda: any(e.startswith("worker refused (join)") and "llmsoak 0.0.1" in e
                         for e in worker_events(run_dir)), 10, "the refusal event")
