"""The remote sampler across two "hosts" (network namespaces), with a 30 s outage and a restart.

GIVEN the stub and ``llmsoak sample --listen <its address>`` (token set) in one namespace and
``llmsoak run`` (``sampler.remote``) in another, WHEN the target's link goes down for 30 s and
comes back, and then the sampler process is restarted, THEN the run goes on to its end, every
event is recorded (lost, back, the sampler's own restart), the pulled ``samples/target.csv`` is
the sampler's own file row by row over the run (no row lost or duplicated), and the verdict is
computed over the whole run. Needs root (skips with the reason otherwise).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from support.netns_hosts import skip_reason, two_hosts
from support.processes import REPO, llmsoak_cmd, spawn, wait_until

from llmsoak.errors import EXIT_OK
from llmsoak.events import read_events
from llmsoak.sampler.live import TOKEN_ENV

TOKEN = "tok-NETNS-3c4d5e6f7a"
SAMPLER_PORT = 9464
OUTAGE_S = 30.0
DURATION_S = 80


@pytest.fixture(scope="module")
def hosts():
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    with two_hosts() as made:
        yield made


def rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))[1:]


@pytest.mark.slow
def test_outage_and_sampler_restart_lose_no_row_and_the_verdict_covers_the_run(tmp_path, hosts):
    target_ip = hosts.addr["target"]
    own = tmp_path / "target-host" / "samples" / "target.csv"
    stub = spawn(hosts.cmd("target", llmsoak_cmd("stub", "--host", target_ip, "--port", "0",
                                                 "--ttft-ms", "10", "--itl-ms", "1")))
    stub_port = stub.url.rsplit(":", 1)[1]

    def start_sampler():
        return spawn(hosts.cmd("target", llmsoak_cmd("sample", "--port", stub_port, "--out", str(own),
                                                     "--interval", "0.5", "--no-gpu",
                                                     "--listen", f"{target_ip}:{SAMPLER_PORT}")),
                     env={TOKEN_ENV: TOKEN})

    sampler = start_sampler()
    run = tmp_path / "run"
    profile = tmp_path / "remote.yaml"
    profile.write_text(f"""name: remote-netns
target: {{url: "http://{target_ip}:{stub_port}", model: stub-model, stream: true, timeout_s: 5, ready_timeout_s: 20}}
patterns:
  active: {{users: 1, think_time_s: {{uniform: [0.2, 0.5]}}, first_message_delay_s: 0}}
load: {{shape: constant, users: 2, spawn_rate: 2}}
run: {{duration: {DURATION_S}s, workers: 0, checkpoint_interval: 20s}}
sampler: {{interval_s: 0.5, remote: "http://{target_ip}:{SAMPLER_PORT}", sample_locust: false}}
slo: {{fail_on_leak: false}}
""")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", TOKEN_ENV: TOKEN}
    orch = subprocess.Popen(hosts.cmd("orchestrator", llmsoak_cmd("run", "--profile", str(profile), "--out",
                                                                  str(run), "--quiet")),
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    timeline: list[tuple[str, float]] = []
    try:
        pulled = run / "samples" / "target.csv"
        wait_until(lambda: pulled.exists() and len(rows(pulled)) >= 10, 60, 0.5, what="10 pulled rows")
        # WHEN the target's host drops off the network for 30 s
        hosts.link("target", up=False)
        timeline.append(("down", time.time()))
        time.sleep(OUTAGE_S)
        hosts.link("target", up=True)
        timeline.append(("up", time.time()))

        def events_with(text: str) -> list[dict]:
            return [e for e in read_events(run / "events.csv") if text in e["detail"]]

        wait_until(lambda: events_with("back after"), 60, 0.5, what="the 'back' event")
        # AND the sampler process is restarted (same file, same address)
        sampler.stop()
        sampler = start_sampler()
        timeline.append(("sampler restarted", time.time()))
        out, _ = orch.communicate(timeout=DURATION_S + 240)
    finally:
        if orch.poll() is None:
            orch.send_signal(signal.SIGTERM)
            orch.wait(60)
        sampler.stop()
        stub.stop()
    # THEN the run ended normally
    assert orch.returncode == EXIT_OK, out
    manifest = json.loads((run / "run.json").read_text())
    offset = manifest["remote_sampler"]["offset_s"]
    events = read_events(run / "events.csv")
    details = [f"{e['kind']}: {e['detail']}" for e in events]
    print("events.csv of the run:", *details, sep="\n  ")  # shown with -s: the record of the outage
    # every event recorded: lost (during the outage), back (after it), the sampler's own restart
    lost = [e for e in events if e["kind"] == "alert" and "lost" in e["detail"]]
    back = [e for e in events if e["kind"] == "info" and "back after" in e["detail"]]
    assert lost and back, details
    down_at, up_at = timeline[0][1], timeline[1][1]
    assert down_at <= lost[0]["timestamp"] <= up_at + 1, details
    assert back[0]["timestamp"] >= up_at - 1, details
    restarted_at = timeline[2][1]
    remote_starts = [e for e in events if e["kind"] == "start" and e["detail"].startswith("remote ")
                     and e["timestamp"] >= restarted_at - 5]
    assert remote_starts, details
    # and the first sampler's own `stop` (read from its events file by the second one)
    assert any(e["kind"] == "stop" and e["detail"].startswith("remote ") and "sampler stopped" in e["detail"]
               for e in events), details
    assert manifest["remote_sampler"]["outages"] >= 1
    # the pulled file is the sampler's own file row by row over the run: same cells, timestamps
    # shifted by the recorded offset, no row missing between the first and the last, none twice
    own_rows = rows(own)
    own_by_ts = {f"{float(r[0]):.3f}": r for r in own_rows}
    got = rows(pulled)
    mapped = [f"{float(r[0]) + offset:.3f}" for r in got]
    assert len(set(mapped)) == len(mapped)
    for ts, row in zip(mapped, got, strict=True):
        assert own_by_ts[ts][1:] == row[1:], ts
    first, last = float(mapped[0]), float(mapped[-1])
    expected = [f"{float(r[0]):.3f}" for r in own_rows if first <= float(r[0]) <= last]
    assert mapped == expected
    assert (last - first) >= DURATION_S - 15  # the whole run, not just the part before the outage
    # the outage itself lost nothing: rows the sampler wrote while the link was down were pulled
    during = [ts for ts in mapped if down_at + offset + 1 < float(ts) < up_at + offset - 1]
    assert len(during) >= (OUTAGE_S - 2) / 0.5 * 0.8
    # the verdict is computed over the whole pulled file
    verdict = json.loads((run / "analysis" / "verdict.json").read_text())
    assert verdict["metrics"]["rss_bytes"]["verdict"] in ("ok", "inconclusive", "leak")
    # and the token is in no file of the run
    for path in run.rglob("*"):
        if path.is_file():
            assert TOKEN not in path.read_text(errors="replace"), path
