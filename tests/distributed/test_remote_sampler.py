"""A remote sampler pulled into the run directory (profile ``sampler.remote``), on one host.

GIVEN a real ``llmsoak sample --listen`` (the "target's host" side), WHEN the puller or a real
``llmsoak run`` pulls from it, THEN ``samples/target.csv`` holds the sampler's own rows, shifted
by the recorded clock offset, with no row lost or duplicated across a sampler restart; a wrong
token or an unreachable sampler ends the run at start with one line and its exit code; the token
is in no file. tests/distributed/test_remote_sampler_netns.py does the same across namespaces.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.processes import REPO, llmsoak_cmd, spawn, wait_until

from llmsoak.errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_TARGET_UNAVAILABLE
from llmsoak.events import read_events
from llmsoak.formats import CLOCK_OFFSETS_COLUMNS
from llmsoak.run.remote_sampler import RemoteSampler
from llmsoak.sampler.live import TOKEN_ENV

TOKEN = "tok-REMOTE-9a8b7c6d5e"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def data_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[1:]


def assert_same_rows(pulled: Path, own: Path, offset_s: float, first_ts: float, last_ts: float) -> int:
    """Every row of the sampler's own file in (``first_ts``, ``last_ts``] (its clock) is in
    ``pulled`` once, in order, with the same cells and its timestamp shifted by ``offset_s``;
    returns the row count."""
    mine = [r for r in data_rows(own) if first_ts < float(r[0]) <= last_ts]
    theirs = data_rows(pulled)
    assert len(theirs) == len(mine), (len(theirs), len(mine))
    for got, want in zip(theirs, mine, strict=True):
        assert got[1:] == want[1:]
        assert float(got[0]) == pytest.approx(round(float(want[0]) - offset_s, 3), abs=1e-6)
    stamps = [float(r[0]) for r in theirs]
    assert stamps == sorted(set(stamps))
    return len(theirs)


@pytest.fixture
def target():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc
    proc.kill()
    proc.wait()


def start_sampler(pid: int, out: Path, port: int, *, listen_host: str = "127.0.0.1", env: dict | None = None):
    return spawn(llmsoak_cmd("sample", "--pid", str(pid), "--out", str(out), "--interval", "0.2", "--no-gpu",
                             "--listen", f"{listen_host}:{port}"), env=env)


def test_puller_resumes_after_the_sampler_is_killed_without_loss_or_duplicate(tmp_path, target):
    # GIVEN a sampler on a fixed port and a puller writing into a run directory
    port = free_port()
    own = tmp_path / "target-host" / "samples" / "target.csv"
    run = tmp_path / "run"
    sampler = start_sampler(target.pid, own, port)
    events: list[tuple[str, str]] = []
    remote_events: list[tuple[float, str, str]] = []
    puller = RemoteSampler(f"http://127.0.0.1:{port}", run / "samples" / "target.csv",
                           offsets_path=run / "clock_offsets.csv", event=lambda k, d: events.append((k, d)),
                           event_at=lambda ts, k, d: remote_events.append((ts, k, d)), pull_interval_s=0.3)
    try:
        puller.start()
        first_ts = puller._since  # the sampler's clock at first contact: rows after it are the run's
        pulled = run / "samples" / "target.csv"
        wait_until(lambda: len(data_rows(pulled)) >= 10, 20, what="10 pulled rows")
        # WHEN the sampler dies (an outage for the puller) and comes back on the same file
        sampler.proc.send_signal(signal.SIGKILL)
        sampler.proc.wait(10)
        wait_until(lambda: any(k == "alert" for k, _ in events), 20, what="the 'lost' event")
        time.sleep(1.0)
        sampler = start_sampler(target.pid, own, port)
        wait_until(lambda: any(k == "info" and "back after" in d for k, d in events), 40, what="the 'back' event")
        n_before = len(data_rows(pulled))
        wait_until(lambda: len(data_rows(pulled)) >= n_before + 10, 20, what="rows after the restart")
    finally:
        puller.stop()  # first: its last pull still finds the sampler
        sampler.stop()
    # THEN the pulled file is the sampler's own file row by row (shift = the recorded offset)
    assert abs(puller.offset_s) < 1.0  # one host: one clock
    rows = assert_same_rows(pulled, own, puller.offset_s, first_ts, puller._since)
    assert rows >= 20 and puller.rows_pulled == rows and puller.outages == 1
    lost = [d for k, d in events if k == "alert"]
    # killed between requests: "cannot connect"; during one: "no reply (Connection reset ...)"
    assert len(lost) == 1 and "lost" in lost[0] and ("cannot connect" in lost[0] or "no reply" in lost[0])
    # the sampler's own events came along: its restart (start + segment) after the outage
    kinds = [k for _, k, _ in remote_events]
    assert "start" in kinds and "segment" in kinds
    # clock offsets: one row per measurement window, our clock, tiny offset on one host
    with open(run / "clock_offsets.csv", newline="") as fh:
        offsets = list(csv.DictReader(fh))
    assert list(offsets[0]) == list(CLOCK_OFFSETS_COLUMNS)
    assert offsets and all(abs(float(r["offset_s"])) < 1.0 and float(r["delay_s"]) >= 0 for r in offsets)


def write_profile(path: Path, stub_url: str, remote: str, duration: str = "15s") -> Path:
    path.write_text(f"""name: remote
target: {{url: {stub_url}, model: stub-model, stream: true, timeout_s: 10, ready_timeout_s: 10}}
patterns:
  active: {{users: 1, think_time_s: {{uniform: [0.2, 0.5]}}, first_message_delay_s: 0}}
load: {{shape: constant, users: 2, spawn_rate: 2}}
run: {{duration: {duration}, workers: 0, checkpoint_interval: 5s}}
sampler: {{interval_s: 0.5, remote: "{remote}", sample_locust: false}}
slo: {{fail_on_leak: false}}
""")
    return path


def run_llmsoak(*args: str, env: dict | None = None, timeout: float = 180) -> tuple[int, str]:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run(llmsoak_cmd(*args), cwd=REPO, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.slow
def test_run_pulls_samples_from_a_remote_sampler_with_a_token(tmp_path, start_stub):
    # GIVEN the stub and, beside it, a sampler listening beyond loopback with a token
    stub = start_stub("--ttft-ms", "10", "--itl-ms", "1")
    stub_port = stub.url.rsplit(":", 1)[1]
    port = free_port()
    own = tmp_path / "target-host" / "samples" / "target.csv"
    sampler = spawn(llmsoak_cmd("sample", "--port", stub_port, "--out", str(own), "--interval", "0.5",
                                "--no-gpu", "--listen", f"0.0.0.0:{port}"), env={TOKEN_ENV: TOKEN})
    run = tmp_path / "run"
    profile = write_profile(tmp_path / "remote.yaml", stub.url, f"http://127.0.0.1:{port}")
    try:
        # WHEN llmsoak run pulls from it
        code, out = run_llmsoak("run", "--profile", str(profile), "--out", str(run), "--quiet",
                                env={TOKEN_ENV: TOKEN})
    finally:
        sampler.stop()
    # THEN it ends normally with a verdict computed over the pulled file
    assert code == EXIT_OK, out
    manifest = json.loads((run / "run.json").read_text())
    record = manifest["remote_sampler"]
    assert record["url"] == f"http://127.0.0.1:{port}" and record["rows_pulled"] >= 20
    assert "sampler_target" not in manifest["processes"]  # nothing sampled locally
    first = json.loads((run / "analysis" / "verdict.json").read_text())
    assert first["metrics"]["rss_bytes"]["verdict"] in ("ok", "inconclusive")
    pulled_rows = data_rows(run / "samples" / "target.csv")
    own_rows = {tuple(r[1:]) for r in data_rows(own)}
    assert pulled_rows and all(tuple(r[1:]) in own_rows for r in pulled_rows)
    kinds = {e["kind"] for e in read_events(run / "events.csv")}
    assert {"start", "segment", "stop"} <= kinds
    assert any("pulling samples from remote sampler" in e["detail"] for e in read_events(run / "events.csv"))
    assert (run / "clock_offsets.csv").read_text().count("\n") >= 2
    # and the token is in no file of the run, nor in the output
    for path in run.rglob("*"):
        if path.is_file():
            assert TOKEN not in path.read_text(errors="replace"), path
    assert TOKEN not in out


@pytest.mark.parametrize("case", ["wrong token", "unreachable"])
def test_a_remote_sampler_that_cannot_be_used_ends_the_run_at_start_with_one_line(tmp_path, start_stub,
                                                                                   target, case):
    stub = start_stub()
    port = free_port()
    sampler = None
    if case == "wrong token":
        sampler = start_sampler(target.pid, tmp_path / "own" / "samples" / "t.csv", port, listen_host="0.0.0.0",
                                env={TOKEN_ENV: TOKEN})
    profile = write_profile(tmp_path / "remote.yaml", stub.url, f"http://127.0.0.1:{port}")
    try:
        code, out = run_llmsoak("run", "--profile", str(profile), "--out", str(tmp_path / "run"), "--quiet",
                                env={TOKEN_ENV: "not-the-token"}, timeout=60)
    finally:
        if sampler is not None:
            sampler.stop()
    errors = [line for line in out.splitlines() if "error" in line]
    assert "Traceback" not in out and len(errors) == 1, out
    assert f"sampler.remote http://127.0.0.1:{port}" in errors[0]
    if case == "wrong token":
        assert code == EXIT_BAD_INPUT and "401" in errors[0] and TOKEN_ENV in errors[0]
    else:
        assert code == EXIT_TARGET_UNAVAILABLE and "cannot connect" in errors[0]
    assert "not-the-token" not in out
    failed = [e for e in read_events(tmp_path / "run" / "events.csv") if e["kind"] == "stop"]
    assert failed and "sampler.remote" in failed[-1]["detail"]


def test_profile_fields_of_a_remote_sampler_are_checked(tmp_path):
    from llmsoak.profile import ProfileError, profile_from_dict
    from llmsoak.run.settings import settings_from_profile

    base = {"name": "r", "target": {"url": "http://10.0.0.5:8000", "model": "m"},
            "run": {"duration": "10s"}}
    profile = profile_from_dict({**base, "sampler": {"remote": "http://10.0.0.5:9464/", "token_env": "MY_TOK"}})
    settings = settings_from_profile(profile, tmp_path / "r.yaml")
    assert (settings.sampler_remote, settings.sampler_token_env) == ("http://10.0.0.5:9464", "MY_TOK")
    default = settings_from_profile(profile_from_dict({**base, "sampler": {"remote": "http://h:1"}}), tmp_path)
    assert default.sampler_token_env == TOKEN_ENV
    for sampler, where in (({"remote": "10.0.0.5:9464"}, "sampler.remote"),
                           ({"remote": "http://h:1", "match": "vllm"}, "sampler.match"),
                           ({"remote": "http://h:1", "metrics_url": "http://h:2/metrics"}, "sampler.metrics_url"),
                           ({"token_env": "MY_TOK"}, "sampler.token_env"),
                           ({"remote": "http://h:1", "token_env": "not a name"}, "sampler.token_env")):
        with pytest.raises(ProfileError, match=where.replace(".", r"\.")):
            profile_from_dict({**base, "sampler": sampler})


def test_sampler_remote_option_overrides_the_profile(tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text("name: p\ntarget: {url: 'http://127.0.0.1:9', model: m}\nrun: {duration: 10s}\n")
    code, out = run_llmsoak("run", "--check", "--profile", str(profile), "--sampler-remote", "not-a-url", timeout=60)
    assert code == EXIT_BAD_INPUT and "sampler.remote" in out and len(out.strip().splitlines()) == 1, out
    code, out = run_llmsoak("run", "--check", "--profile", str(profile), "--sampler-remote", "http://10.1.1.1:9464",
                            timeout=60)
    assert code == EXIT_OK, out


@pytest.mark.slow
def test_a_resumed_run_continues_the_pull_after_its_last_row(tmp_path, start_stub):
    # GIVEN a run pulling from a sampler on this host (loopback: no token needed)
    stub = start_stub("--ttft-ms", "10", "--itl-ms", "1")
    port = free_port()
    own = tmp_path / "target-host" / "samples" / "target.csv"
    sampler = spawn(llmsoak_cmd("sample", "--port", stub.url.rsplit(":", 1)[1], "--out", str(own),
                                "--interval", "0.5", "--no-gpu", "--listen", f"127.0.0.1:{port}"))
    run = tmp_path / "run"
    profile = write_profile(tmp_path / "remote.yaml", stub.url, f"http://127.0.0.1:{port}", duration="25s")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        orch = subprocess.Popen(llmsoak_cmd("run", "--profile", str(profile), "--out", str(run), "--quiet"),
                                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pulled = run / "samples" / "target.csv"
        wait_until(lambda: pulled.exists() and len(data_rows(pulled)) >= 10, 60, 0.5, what="10 pulled rows")
        offset_before = json.loads((run / "run.json").read_text())["remote_sampler"]["offset_s"]
        # WHEN the orchestrator is killed (no chance to pull or save) and resumed 3 s later
        orch.send_signal(signal.SIGKILL)
        orch.wait(10)
        rows_at_kill = len(data_rows(pulled))
        time.sleep(3.0)
        code, out = run_llmsoak("run", "--resume", str(run), "--quiet", timeout=240)
    finally:
        sampler.stop()
    # THEN it ends normally, with the same clock shift, and the pulled file is the sampler's
    # own file without gap or duplicate across the kill (the rows of those 3 s were caught up)
    assert code == EXIT_OK, out
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["remote_sampler"]["offset_s"] == offset_before and manifest["resumes"] == 1
    got = data_rows(pulled)
    assert len(got) > rows_at_kill + 6
    own_rows = data_rows(own)
    own_by_ts = {f"{float(r[0]):.3f}": r for r in own_rows}
    mapped = [f"{float(r[0]) + offset_before:.3f}" for r in got]
    for ts, row in zip(mapped, got, strict=True):
        assert own_by_ts[ts][1:] == row[1:], ts
    expected = [f"{float(r[0]):.3f}" for r in own_rows if float(mapped[0]) <= float(r[0]) <= float(mapped[-1])]
    assert mapped == expected


def test_the_live_page_reads_the_remote_sampler_with_the_token(tmp_path, target, monkeypatch):
    # GIVEN a sampler off loopback with a token, named by the profile's sampler.remote
    from llmsoak.profile import profile_from_dict
    from llmsoak.webui.live_source import SamplerSource
    from llmsoak.webui.monitor import resolve_sampler_url

    port = free_port()
    sampler = start_sampler(target.pid, tmp_path / "own" / "samples" / "t.csv", port, listen_host="0.0.0.0",
                            env={TOKEN_ENV: TOKEN})
    try:
        profile = profile_from_dict({"name": "r", "target": {"url": "http://127.0.0.1:9", "model": "m"},
                                     "sampler": {"remote": f"http://127.0.0.1:{port}"}})
        monkeypatch.delenv("LLMSOAK_SAMPLER_URL", raising=False)
        url, origin = resolve_sampler_url(None, profile)
        assert (url, origin) == (f"http://127.0.0.1:{port}", "profile sampler.remote")
        # WHEN the web UI's source polls it without, then with the token in its environment
        monkeypatch.delenv(TOKEN_ENV, raising=False)
        source = SamplerSource(url)
        assert source.poll() is False and "Unauthorized" in (source.error or "")
        monkeypatch.setenv(TOKEN_ENV, TOKEN)
        # THEN it reads the sampler's samples once it sends the token
        assert wait_until(source.poll, 10, 0.3, what="a poll with the token")
        assert source.status in ("attached", "waiting")
    finally:
        sampler.stop()
