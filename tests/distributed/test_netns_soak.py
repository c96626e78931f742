"""Remote workers as separate hosts: the target, the master and two workers each in a network
namespace of their own (tests/support/netns.py), on one bridge in a private subnet.

GIVEN the stub listening on the target host's address only, WHEN ``llmsoak run`` on the master
host (bound to its bridge address, hence with a worker token) runs a short soak and two
``llmsoak worker`` hosts join it, one killed mid-run and started again, THEN the events show the
loss and the rejoin, the summary the users shortfall, the run ends with a verdict, and the
target served the workers' requests. Skipped where namespaces cannot be made (not root).
"""

from __future__ import annotations

import json
import time

import pytest
from support.netns import netns_hosts, netns_unavailable
from support.remote_runs import Procs, llmsoak_argv, wait_for, worker_events, write_remote_profile

pytestmark = pytest.mark.skipif(bool(netns_unavailable()), reason=str(netns_unavailable()))

TOKEN_ENV = {"LLMSOAK_WORKER_TOKEN": "netns-test-token-8a1f"}
STUB_PORT, MASTER_PORT = 18000, 5557


def test_a_soak_across_namespaces_survives_a_lost_worker(tmp_path):
    procs = Procs(tmp_path)
    with netns_hosts(["target", "master", "w1", "w2"]) as hosts:
        try:
            # GIVEN the target on its own host
            procs.start("stub", hosts.cmd("target", llmsoak_argv(
                "stub", "--host", hosts["target"], "--port", str(STUB_PORT), "--ttft-ms", "5", "--itl-ms", "1",
                "--output-tokens", "16")))
            wait_for(lambda: "listening on" in procs.output("stub"), 30, "the stub")
            # AND the master on another, listening on its bridge address
            profile = write_remote_profile(
                tmp_path / "netns.yaml", url=f"http://{hosts['target']}:{STUB_PORT}",
                master_bind=f"{hosts['master']}:{MASTER_PORT}", duration="75s",
                sampler_match=f"llmsoak stub --host {hosts['target']} ")
            run_dir = tmp_path / "run"
            master = procs.start("master", hosts.cmd("master", llmsoak_argv(
                "run", "--profile", str(profile), "--out", str(run_dir), "--progress-interval", "5s")),
                env=TOKEN_ENV)
            # WHEN two worker hosts join with one command each
            worker_cmd = llmsoak_argv("worker", "--master", f"{hosts['master']}:{MASTER_PORT}")
            procs.start("w1", hosts.cmd("w1", worker_cmd), env=TOKEN_ENV)
            w2 = procs.start("w2", hosts.cmd("w2", worker_cmd), env=TOKEN_ENV)
            wait_for(lambda: sum("joined" in e for e in worker_events(run_dir)) >= 2, 90, "two workers")
            wait_for(lambda: "segment 1 started" in procs.output("master"), 30, "the segment")
            time.sleep(8)
            # AND worker host w2 dies
            Procs.kill_tree(w2)
            lost = wait_for(lambda: [e for e in worker_events(run_dir) if e.startswith("worker lost")], 30,
                            "worker lost")
            assert "1 of 2 expected workers connected" in lost[0]
            time.sleep(3)
            # AND comes back
            procs.start("w2-again", hosts.cmd("w2", worker_cmd), env=TOKEN_ENV)
            wait_for(lambda: [e for e in worker_events(run_dir) if e.startswith("worker rejoined")], 90,
                     "worker rejoined")
            # THEN the run ends with a verdict, reporting the loss and the users shortfall
            code = master.wait(200)
            assert code == 0, procs.output("master")[-3000:]
            result = json.loads((run_dir / "run.json").read_text())["result"]
            assert result["verdict"] in ("ok", "leak", "inconclusive")
            figures = result["remote_workers"]
            assert (figures["lost"], figures["rejoined"], figures["refused"]) == (1, 1, 0), figures
            assert figures["max_shortfall_users"] >= 1
            assert result["requests"] > 20 and result["failures"] == 0
            # AND the target on its own host served them (the sampler found it by command line)
            assert (run_dir / "samples" / "target.csv").stat().st_size > 0
            assert "netns-test-token-8a1f" not in (run_dir / "run.json").read_text()
        finally:
            procs.stop_all()
