"""The whole picture: one soak across four "hosts" (network namespaces on one private bridge).

GIVEN the stub and ``llmsoak sample --listen <its address>`` on the target host, ``llmsoak run``
on the master host (two remote workers, bound to its bridge address, pulling the remote
sampler; both tokens set) and one ``llmsoak worker`` on each of two worker hosts, WHEN during
the soak a worker host dies and comes back, the target host's link goes down for 30 s and comes
back, and the sampler process is restarted, THEN every event is recorded (worker lost/rejoined,
sampler lost/back, the sampler's own stop and new start), the pulled ``samples/target.csv`` is
the sampler's own file row by row (none lost, none twice), the users shortfall is reported, the
verdict covers the whole run, and no token reaches a file. All traffic stays on the test's bridge
(tests/support/netns.py). Takes about two minutes; skipped with the reason when not root.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
from support.netns import netns_hosts, netns_unavailable
from support.processes import spawn
from support.remote_runs import Procs, llmsoak_argv, wait_for, worker_events

from llmsoak.errors import EXIT_OK
from llmsoak.events import read_events
from llmsoak.sampler.live import TOKEN_ENV as SAMPLER_TOKEN_ENV

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bool(netns_unavailable()), reason=str(netns_unavailable()))]

WORKER_TOKEN = "wtok-HOSTS-5e6f7a8b9c"
SAMPLER_TOKEN = "stok-HOSTS-1a2b3c4d5e"
TOKENS = {"LLMSOAK_WORKER_TOKEN": WORKER_TOKEN, SAMPLER_TOKEN_ENV: SAMPLER_TOKEN}
SAMPLER_PORT, MASTER_PORT = 9464, 5557
OUTAGE_S = 30.0
DURATION_S = 110
INTERVAL_S = 0.5


def rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))[1:]


def test_one_soak_across_four_hosts_records_every_failure_and_loses_no_row(tmp_path):
    procs = Procs(tmp_path)
    own = tmp_path / "target-host" / "samples" / "target.csv"
    run = tmp_path / "run"
    timeline: dict[str, float] = {}
    with netns_hosts(["target", "master", "w1", "w2"]) as hosts:
        target_ip, master_ip = hosts["target"], hosts["master"]
        stub = sampler = None
        try:
            # GIVEN the target host: the stub and the sampler listening on its bridge address
            stub = spawn(hosts.cmd("target", llmsoak_argv("stub", "--host", target_ip, "--port", "0",
                                                          "--ttft-ms", "5", "--itl-ms", "1",
                                                          "--output-tokens", "16")), timeout=90)
            stub_port = stub.url.rsplit(":", 1)[1]

            def start_sampler():
                return spawn(hosts.cmd("target", llmsoak_argv(
                    "sample", "--port", stub_port, "--out", str(own), "--interval", str(INTERVAL_S), "--no-gpu",
                    "--listen", f"{target_ip}:{SAMPLER_PORT}")), env=TOKENS, timeout=90)

            sampler = start_sampler()
            # AND the master host: two remote workers expected, the remote sampler pulled
            profile = tmp_path / "hosts.yaml"
            profile.write_text(f"""name: across-hosts
target: {{url: "http://{target_ip}:{stub_port}", model: stub-model, stream: true, timeout_s: 5,
          ready_timeout_s: 60}}
patterns:
  active: {{users: 4, think_time_s: {{uniform: [0.2, 0.4]}}, first_message_delay_s: 0,
            turns_per_session: 1000}}
load: {{shape: constant, users: 4, spawn_rate: 4}}
run: {{duration: {DURATION_S}s, checkpoint_interval: 1h, remote_workers: 2,
       master_bind: "{master_ip}:{MASTER_PORT}", workers_timeout: 120s}}
sampler: {{interval_s: {INTERVAL_S}, remote: "http://{target_ip}:{SAMPLER_PORT}", sample_locust: false}}
slo: {{fail_on_leak: false}}
""")
            master = procs.start("master", hosts.cmd("master", llmsoak_argv(
                "run", "--profile", str(profile), "--out", str(run), "--progress-interval", "10s")), env=TOKENS)
            def running(predicate):  # a wait ends at once, with the master's output, if it exited
                def check():
                    if master.poll() is not None:
                        raise AssertionError(f"the master exited ({master.returncode}):\n"
                                             + procs.output("master")[-3000:])
                    return predicate()
                return check

            # AND one worker on each worker host
            worker_cmd = llmsoak_argv("worker", "--master", f"{master_ip}:{MASTER_PORT}")
            procs.start("w1", hosts.cmd("w1", worker_cmd), env=TOKENS)
            w2 = procs.start("w2", hosts.cmd("w2", worker_cmd), env=TOKENS)
            wait_for(running(lambda: sum("joined" in e for e in worker_events(run)) >= 2), 150, "two workers")
            wait_for(running(lambda: "segment 1 started" in procs.output("master")), 60, "the segment")
            pulled = run / "samples" / "target.csv"
            wait_for(running(lambda: pulled.exists() and len(rows(pulled)) >= 6), 60, "the first pulled rows")
            # WHEN worker host w2 dies
            Procs.kill_tree(w2)
            timeline["worker killed"] = time.time()
            wait_for(running(lambda: [e for e in worker_events(run) if e.startswith("worker lost")]), 60,
                     "worker lost")
            # AND comes back
            procs.start("w2-again", hosts.cmd("w2", worker_cmd), env=TOKENS)
            wait_for(running(lambda: [e for e in worker_events(run) if e.startswith("worker rejoined")]), 90,
                     "worker rejoined")
            # AND the target host (the sampler's link) drops off the network for 30 s
            hosts.down("target")
            timeline["down"] = time.time()
            time.sleep(OUTAGE_S)
            hosts.up("target")
            timeline["up"] = time.time()
            wait_for(running(lambda: [e for e in read_events(run / "events.csv") if "back after" in e["detail"]]),
                     90,
                     "the sampler 'back' event")
            # AND the sampler process is restarted (same file, same address)
            sampler.stop()
            sampler = start_sampler()
            timeline["sampler restarted"] = time.time()
            assert master.poll() is None, "the run ended before the sampler restart: too slow a machine for this timeline"
            code = master.wait(DURATION_S + 300)
        finally:
            procs.stop_all()
            for proc in (sampler, stub):
                if proc is not None:
                    proc.stop()
    # THEN the run ended normally, with a verdict over the whole run
    assert code == EXIT_OK, procs.output("master")[-4000:]
    manifest = json.loads((run / "run.json").read_text())
    result = manifest["result"]
    events = read_events(run / "events.csv")
    details = [f"{e['kind']}: {e['detail']}" for e in events]
    print("events.csv of the run:", *details, sep="\n  ")  # shown with -s: the record of the run
    # every event recorded: the worker lost and rejoined ...
    assert any(e["kind"] == "worker" and e["detail"].startswith("worker lost")
               and e["timestamp"] >= timeline["worker killed"] - 1 for e in events), details
    assert any(e["kind"] == "worker" and e["detail"].startswith("worker rejoined") for e in events), details
    figures = result["remote_workers"]
    assert (figures["lost"], figures["rejoined"], figures["refused"]) == (1, 1, 0), figures
    # ... with the users shortfall reported, in run.json and in the run's last lines
    assert figures["max_shortfall_users"] >= 1, figures
    assert "remote workers: 2 expected" in procs.output("master"), procs.output("master")[-3000:]
    # ... the sampler lost during the outage and back after it ...
    lost = [e for e in events if e["kind"] == "alert" and e["detail"].startswith("remote sampler")
            and " lost: " in e["detail"]]
    back = [e for e in events if e["kind"] == "info" and e["detail"].startswith("remote sampler")
            and "back after" in e["detail"]]
    assert lost and back, details
    assert timeline["down"] <= lost[0]["timestamp"] <= timeline["up"] + 1, details
    assert back[0]["timestamp"] >= timeline["up"] - 1, details
    assert manifest["remote_sampler"]["outages"] >= 1
    # ... and the sampler's own stop and its new start (read from its events file)
    assert any(e["kind"] == "stop" and e["detail"].startswith("remote ") and "sampler stopped" in e["detail"]
               for e in events), details
    assert any(e["kind"] == "start" and e["detail"].startswith("remote ")
               and e["timestamp"] >= timeline["sampler restarted"] - 5 for e in events), details
    # the pulled file is the sampler's own file row by row: same cells, timestamps shifted by the
    # recorded clock offset, no row missing between the first and the last, none twice
    offset = manifest["remote_sampler"]["offset_s"]
    own_rows = rows(own)
    own_by_ts = {f"{float(r[0]):.3f}": r for r in own_rows}
    got = rows(run / "samples" / "target.csv")
    mapped = [f"{float(r[0]) + offset:.3f}" for r in got]
    assert len(set(mapped)) == len(mapped)
    for ts, row in zip(mapped, got, strict=True):
        assert own_by_ts[ts][1:] == row[1:], ts
    first, last = float(mapped[0]), float(mapped[-1])
    assert mapped == [f"{float(r[0]):.3f}" for r in own_rows if first <= float(r[0]) <= last]
    # over the whole run, the outage included (rows written while the link was down were pulled)
    assert last - first >= DURATION_S - 20
    during = [ts for ts in mapped if timeline["down"] + offset + 1 < float(ts) < timeline["up"] + offset - 1]
    assert len(during) >= (OUTAGE_S - 2) / INTERVAL_S * 0.8
    verdict = json.loads((run / "analysis" / "verdict.json").read_text())
    assert verdict["metrics"]["rss_bytes"]["verdict"] in ("ok", "inconclusive", "leak")
    assert result["verdict"] in ("ok", "leak", "inconclusive")
    # the workers' requests reached the target across the bridge
    assert result["requests"] > 50, result
    # and no token reached any file of the run
    for path in run.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert WORKER_TOKEN not in text and SAMPLER_TOKEN not in text, path
