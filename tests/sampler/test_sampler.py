"""``llmsoak sample`` against real processes spawned here, allocating at known rates."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import psutil
import pytest
from support.processes import llmsoak_cmd, spawn, wait_until

from llmsoak.events import read_events
from llmsoak.sampler import PidSelector, Sampler, build_selector

# A target that allocates (and touches) STEP_BYTES every STEP_S seconds, after a short settle.
ALLOCATOR = """
import sys, time
step_bytes, step_s, children = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
marker = sys.argv[4]
import subprocess
kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]) for _ in range(children)]
held = []
print("ready", flush=True)
while True:
    if step_bytes:
        held.append(bytearray(b"\\x01") * step_bytes)
    time.sleep(step_s)
"""

PORT_SERVER = """
import http.server, sys
srv = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
print(f"port-server: listening on http://127.0.0.1:{srv.server_address[1]}", flush=True)
srv.serve_forever()
"""


@pytest.fixture
def allocator(tmp_path):
    """Factory: start an allocator child → Popen; all are killed (with their children) after the test."""
    script = tmp_path / "allocator.py"
    script.write_text(ALLOCATOR)
    procs: list[subprocess.Popen] = []

    def _start(step_bytes=0, step_s=0.2, children=0, marker="x", **popen_kw):
        proc = subprocess.Popen([sys.executable, str(script), str(step_bytes), str(step_s), str(children),
                                 marker], stdout=subprocess.PIPE, text=True, **popen_kw)
        assert proc.stdout.readline().strip() == "ready"
        procs.append(proc)
        return proc

    yield _start
    for proc in procs:
        try:
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
        except psutil.Error:
            pass
        proc.kill()
        proc.wait()


def _read(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _slope_per_s(rows: list[dict], column: str) -> float:
    xs = [float(r["timestamp"]) for r in rows]
    ys = [float(r[column]) for r in rows]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def _run_sample(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    return subprocess.run(llmsoak_cmd("sample", *args), capture_output=True, text=True, timeout=timeout)


def test_rss_slope_matches_known_allocation_rate(allocator, tmp_path):
    # GIVEN a target allocating 2 MiB every 0.2 s (10 MiB/s) and a sampler at 0.1 s
    target = allocator(step_bytes=2 * 2**20, step_s=0.2)
    out = tmp_path / "samples" / "alloc.csv"
    # WHEN it is sampled for 3 s
    result = _run_sample("--pid", str(target.pid), "--out", str(out), "--interval", "0.1", "--duration", "3")
    # THEN the RSS slope is 10 MiB/s within 20%, every row is attached to that pid
    assert result.returncode == 0, result.stderr
    rows = _read(out)
    assert len(rows) >= 20
    assert {r["pid"] for r in rows} == {str(target.pid)}
    slope = _slope_per_s(rows, "rss_bytes")
    assert slope == pytest.approx(10 * 2**20, rel=0.2)
    assert all(int(r["num_threads"]) >= 1 and int(r["num_fds"]) >= 3 for r in rows)
    assert all(r["host_available_bytes"] and r["cgroup_memory_bytes"] == "" for r in rows)
    events = read_events(tmp_path / "events.csv")  # 'overrun': the 0.1 s schedule slipped (busy machine)
    assert [e["kind"] for e in events if e["kind"] != "overrun"] == ["start", "segment", "stop"]


@pytest.mark.parametrize("uss", [False, True], ids=["proc-reads", "uss-psutil"])
def test_process_tree_is_summed(allocator, tmp_path, uss):
    # GIVEN a parent with three child processes
    target = allocator(children=3)
    out = tmp_path / "tree.csv"
    sampler = Sampler(PidSelector(target.pid), out, interval_s=0.1, events_path=False, uss=uss,
                      log=lambda _: None)
    # WHEN sampled THEN num_procs is 4 and RSS exceeds the parent's alone
    sampler.start()
    try:
        wait_until(lambda: sampler.samples_written >= 5, timeout=10, what="5 samples")
    finally:
        assert sampler.stop() == 0
    rows = _read(out)
    assert {r["num_procs"] for r in rows} == {"4"}
    assert all(bool(r["uss_bytes"]) == uss and r["swap_bytes"] != "" for r in rows)
    assert all(0 < int(r["uss_bytes"] or 1) <= int(r["rss_bytes"]) for r in rows)
    assert rows[-1]["cpu_percent"] != "" and float(rows[-1]["cpu_percent"]) >= 0
    parent_rss = psutil.Process(target.pid).memory_info().rss
    assert int(rows[-1]["rss_bytes"]) > 2 * parent_rss


def test_kill_and_restart_target_reattaches_by_match(allocator, tmp_path):
    # GIVEN a sampler following --match on a unique marker
    marker = f"llmsoak-test-{uuid.uuid4().hex[:8]}"
    first = allocator(marker=marker)
    out = tmp_path / "samples" / "target.csv"
    sampler = spawn(llmsoak_cmd("sample", "--match", marker, "--out", str(out), "--interval", "0.1",
                                "--listen", "127.0.0.1:0"))
    try:
        wait_until(lambda: out.exists() and len(_read(out)) >= 3, timeout=15, what="first rows")
        # WHEN the target is killed and a new one starts
        first.kill()
        first.wait()
        time.sleep(0.4)
        second = allocator(marker=marker)
        wait_until(lambda: any(r["pid"] == str(second.pid) for r in _read(out)), timeout=15,
                   what="rows for the restarted target")
        latest = sampler.get_json("/api/latest")
        assert latest["status"] == "attached" and latest["pid"] == second.pid and latest["segment"] == 2
        # THEN SIGTERM stops it cleanly (promptly: well within the 5 s wait, whatever the machine's load)
        sampler.proc.send_signal(signal.SIGTERM)
        assert sampler.proc.wait(5) == 0
    finally:
        sampler.stop()
    rows = _read(out)
    pids = [r["pid"] for r in rows]
    assert pids[0] == str(first.pid) and pids[-1] == str(second.pid)
    assert len({(r["pid"], r["create_time"]) for r in rows}) == 2
    # An 'overrun' event only says the sampler's own 0.1 s schedule slipped on a busy machine.
    kinds = [e["kind"] for e in read_events(tmp_path / "events.csv") if e["kind"] != "overrun"]
    assert kinds[:2] == ["start", "segment"]
    assert kinds[2:] == ["stop", "segment", "restart", "stop"]


def test_kill_9_sampler_then_restart_appends_cleanly(allocator, tmp_path):
    # GIVEN a sampler killed with SIGKILL mid-run, and a torn last line as a crash could leave
    target = allocator()
    out = tmp_path / "k.csv"
    args = llmsoak_cmd("sample", "--pid", str(target.pid), "--out", str(out), "--interval", "0.1")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: out.exists() and len(_read(out)) >= 5, timeout=15, what="rows before kill -9")
    proc.kill()
    proc.wait()
    before = _read(out)
    with open(out, "ab") as fh:
        fh.write(b"9999999999.000,123,45")
    # WHEN it is restarted on the same file
    result = _run_sample("--pid", str(target.pid), "--out", str(out), "--interval", "0.1", "--duration", "1")
    assert result.returncode == 0, result.stderr
    # THEN the file parses, keeps every earlier row, has no duplicates, strictly increasing times
    rows = _read(out)
    assert rows[: len(before)] == before
    assert len(rows) > len(before)
    stamps = [float(r["timestamp"]) for r in rows]
    assert all(b > a for a, b in zip(stamps, stamps[1:], strict=False))
    assert all(len(r) == len(rows[0]) and None not in r.values() for r in rows)
    assert "partial last line" in result.stderr


def test_port_selector_finds_the_listening_process(tmp_path):
    script = tmp_path / "srv.py"
    script.write_text(PORT_SERVER)
    server = spawn([sys.executable, str(script)])
    try:
        port = server.url.rsplit(":", 1)[1]
        out = tmp_path / "port.csv"
        result = _run_sample("--port", port, "--out", str(out), "--interval", "0.1", "--duration", "0.6")
        assert result.returncode == 0, result.stderr
        rows = _read(out)
        assert rows and {r["pid"] for r in rows} == {str(server.pid)}
    finally:
        server.stop()


def _make_cgroup() -> Path:
    name = f"llmsoak-test-{uuid.uuid4().hex[:8]}"
    errors = []
    for base in (Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup")):
        if not (base / "cgroup.procs").exists():
            continue
        try:
            (base / name).mkdir()
            return base / name
        except OSError as err:
            errors.append(f"{base}: {err.strerror}")
    pytest.skip("cannot create a cgroup here (" + ("; ".join(errors) or "no writable hierarchy") +
                "): needs root and a writable cgroup v1 memory or v2 hierarchy")


def test_cgroup_selector_sums_members_and_reads_cgroup_memory(allocator, tmp_path):
    cgroup = _make_cgroup()
    target = allocator(step_bytes=2**20, step_s=0.1)
    try:
        try:
            (cgroup / "cgroup.procs").write_text(str(target.pid))
        except OSError as err:
            pytest.skip(f"cannot move a process into {cgroup}: {err.strerror}")
        out = tmp_path / "cg.csv"
        result = _run_sample("--cgroup", str(cgroup), "--out", str(out), "--interval", "0.1", "--duration", "0.8")
        assert result.returncode == 0, result.stderr
        rows = _read(out)
        assert rows and {r["pid"] for r in rows} == {str(target.pid)}
        if (cgroup / "memory.current").exists() or (cgroup / "memory.usage_in_bytes").exists():
            # every row reads the cgroup; memory charged before the move stays with the old
            # cgroup, so only the later rows are sure to hold more than the 1 MiB steps since
            assert all(r["cgroup_memory_bytes"] for r in rows)
            assert int(rows[-1]["cgroup_memory_bytes"]) > 2**20
    finally:
        target.kill()
        target.wait()
        wait_until(lambda: not (cgroup / "cgroup.procs").read_text().strip(), timeout=5, what="empty cgroup")
        cgroup.rmdir()


def test_live_endpoint_json_and_prometheus(allocator, tmp_path):
    target = allocator()
    out = tmp_path / "live.csv"
    sampler = spawn(llmsoak_cmd("sample", "--pid", str(target.pid), "--out", str(out), "--interval", "0.1",
                                "--listen", "127.0.0.1:0", "--name", "api"))
    try:
        wait_until(lambda: sampler.get_json("/api/latest")["sample"], timeout=10, what="a live sample")
        latest = sampler.get_json("/api/latest")
        assert latest["name"] == "api" and latest["status"] == "attached" and latest["pid"] == target.pid
        assert latest["interval_s"] == 0.1 and latest["segment"] == 1
        assert latest["sample"]["rss_bytes"] > 0
        samples = sampler.get_json("/api/samples?since=0")
        assert samples["columns"][0] == "timestamp" and len(samples["rows"]) >= 1
        newest = samples["rows"][-1][0]
        # only rows after `since` (a 0.1 s sampler may have taken one more meanwhile)
        later = sampler.get_json(f"/api/samples?since={newest}")["rows"]
        assert all(row[0] > newest for row in later) and len(later) <= 3
        history = sampler.get_json("/api/history")
        assert history["columns"][-1] == "rss_bytes_min" and history["rows"]
        kinds = [e["kind"] for e in sampler.get_json("/api/events")["events"]]
        assert kinds[:2] == ["start", "segment"]
        with urllib.request.urlopen(sampler.url + "/metrics", timeout=5) as resp:
            text = resp.read().decode()
        assert 'llmsoak_sampler_up{target="api"} 1' in text
        assert 'llmsoak_target_rss_bytes{target="api"} ' in text
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(sampler.url + "/api/samples?since=abc", timeout=5)
    finally:
        assert sampler.stop() == 0


def test_metrics_url_is_scraped_on_the_same_clock(allocator, tmp_path):
    metrics_body = b'# TYPE q gauge\nqueue_depth{model="m"} 7\nkv_cache_usage 0.5\nlat_bucket{le="1"} 3\n'

    class Handler(__import__("http.server").server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(metrics_body)))
            self.end_headers()
            self.wfile.write(metrics_body)

        def log_message(self, *a):
            pass

    from http.server import ThreadingHTTPServer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    target = allocator()
    out, mout = tmp_path / "s.csv", tmp_path / "m.csv"
    try:
        result = _run_sample("--pid", str(target.pid), "--out", str(out), "--interval", "0.2", "--duration", "1",
                             "--metrics-url", f"http://127.0.0.1:{server.server_address[1]}/metrics",
                             "--metrics-out", str(mout))
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    mrows = _read(mout)
    assert {r["metric"] for r in mrows} == {"queue_depth", "kv_cache_usage"}  # buckets left out
    assert {r["labels"] for r in mrows if r["metric"] == "queue_depth"} == {'{model="m"}'}
    sample_stamps = {r["timestamp"] for r in _read(out)}
    assert {r["timestamp"] for r in mrows} <= sample_stamps


def test_overrun_is_reported_not_dropped(allocator, tmp_path):
    class SlowSelector(PidSelector):
        def members(self, roots):
            time.sleep(0.35)  # a sample that takes longer than the 0.1 s interval
            return super().members(roots)

    target = allocator()
    events_path = tmp_path / "events.csv"
    sampler = Sampler(SlowSelector(target.pid), tmp_path / "slow.csv", interval_s=0.1, rescan_s=0,
                      events_path=events_path, log=lambda _: None)
    sampler.start()
    try:
        wait_until(lambda: sampler.samples_written >= 3, timeout=15, what="slow samples")
    finally:
        sampler.stop()
    overruns = [e for e in read_events(events_path) if e["kind"] == "overrun"]
    assert overruns and "interval(s) skipped" in overruns[0]["detail"]


def test_waiting_for_a_missing_target_then_attaching(allocator, tmp_path):
    marker = f"llmsoak-late-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "late.csv"
    sampler = Sampler(build_selector(match=marker), out, interval_s=0.1, events_path=False,
                      wait_for_target_s=20, log=lambda _: None)
    sampler.start()
    try:
        time.sleep(0.3)
        assert sampler.status == "waiting" and sampler.samples_written == 0
        target = allocator(marker=marker)
        wait_until(lambda: sampler.samples_written >= 2, timeout=10, what="attach after wait")
        assert sampler.pid == target.pid
    finally:
        assert sampler.stop() == 0


@pytest.mark.parametrize("args, code, message", [
    (["--pid", "999999999"], 4, "no process with pid"),
    (["--match", "no-such-process-llmsoak-xyz", "--fail-if-missing"], 4, "nothing matches"),
    (["--match", "no-such-process-llmsoak-xyz", "--wait-for-target", "0.3"], 4, "within 0.3 s"),
    (["--match", "(unclosed"], 2, "not a valid regular expression"),
    (["--pid", "1", "--port", "80"], 2, "exactly one of"),
    (["--pid", "1", "--interval", "0"], 2, "--interval must be greater than 0"),
    (["--pid", "1", "--interval", "soon"], 2, "not a duration"),
    (["--pid", "1", "--listen", "127.0.0.1:http"], 2, "expected HOST:PORT"),
    (["--cgroup", "/no/such/cgroup"], 4, "no such cgroup"),
])
def test_bad_input_one_line_and_exit_code(tmp_path, args, code, message):
    result = _run_sample(*args, "--out", str(tmp_path / "bad.csv"))
    assert result.returncode == code, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if "error" in ln]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args, code, message", [
    (["--pid", "999999999"], 4, "no process with pid 999999999"),
    (["--match", "no-such-process-llmsoak-xyz", "--fail-if-missing"], 4, "nothing matches"),
    (["--port", "1", "--fail-if-missing"], 4, "nothing matches port 1"),
    (["--pid", "1", "--listen", "everywhere"], 2, "expected HOST:PORT"),
    (["--pid", "1", "--listen", "127.0.0.1:99999"], 2, "port must be 0-65535"),
    (["--pid", "999999999", "--listen", "127.0.0.1:0"], 4, "no process with pid"),
], ids=["pid-gone", "fail-if-missing", "port-fail-if-missing", "listen-malformed", "listen-port", "pid-and-listen"])
def test_mistake_prints_only_its_error_and_writes_nothing(tmp_path, args, code, message):
    # GIVEN a user's mistake WHEN sampling starts THEN stderr is exactly the one error line (no
    # info/"sampling ..." lines before it), stdout is empty and neither CSV nor events.csv exists
    out = tmp_path / "run" / "samples" / "x.csv"
    result = _run_sample(*args, "--out", str(out))
    assert result.returncode == code, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("llmsoak sample: error: ") and message in lines[0], lines
    assert not (tmp_path / "run").exists()


def test_busy_listen_port_prints_only_its_error_and_writes_nothing(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = tmp_path / "run" / "x.csv"
        result = _run_sample("--pid", str(os.getpid()), "--out", str(out), "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr == f"llmsoak sample: error: --listen 127.0.0.1:{port}: cannot listen (Address already in use)\n"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("out", ["/dev/full", "/proc/llmsoak-not-writable/x.csv"])
def test_unwritable_output_is_one_error_line_even_with_listen(out):
    # the live endpoint is bound but not announced ("listening on" is on stdout) before the output opens
    result = _run_sample("--pid", str(os.getpid()), "--out", out, "--listen", "127.0.0.1:0")
    assert result.returncode == 5, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("llmsoak sample: error: "), lines


@pytest.mark.parametrize("out", ["/dev/full", "/proc/llmsoak-not-writable/x.csv"])
def test_unwritable_output_exits_5(out):
    result = _run_sample("--pid", str(os.getpid()), "--out", out, "--interval", "0.1", "--duration", "1")
    assert result.returncode == 5, result.stderr
    assert "Traceback" not in result.stderr and "error" in result.stderr


def test_existing_file_with_other_columns_is_left_alone(tmp_path):
    out = tmp_path / "other.csv"
    out.write_text("timestamp,value\n1,2\n")
    result = _run_sample("--pid", str(os.getpid()), "--out", str(out), "--duration", "1")
    assert result.returncode == 2 and "other columns" in result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stdout == "", result.stderr
    assert not (tmp_path / "events.csv").exists()
    assert out.read_text() == "timestamp,value\n1,2\n"


def test_pid_target_exit_ends_the_run_with_a_stop_event(allocator, tmp_path):
    target = allocator()
    out = tmp_path / "end.csv"
    proc = subprocess.Popen(llmsoak_cmd("sample", "--pid", str(target.pid), "--out", str(out), "--interval", "0.1"),
                            stderr=subprocess.PIPE, text=True)
    wait_until(lambda: out.exists() and len(_read(out)) >= 2, timeout=15, what="rows")
    target.kill()
    target.wait()
    assert proc.wait(10) == 0
    details = [e["detail"] for e in read_events(tmp_path / "events.csv") if e["kind"] == "stop"]
    assert any(f"target pid {target.pid} exited" in d for d in details)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the sampler as another user")
def test_permission_denied_cells_are_empty_and_said_once(request):
    # GIVEN a sampler running as 'nobody' watching a root-owned process: fds and I/O are denied
    import shutil
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(prefix="llmsoak-denied-", dir="/tmp"))  # pytest's tmp is private
    tmp_path.chmod(0o777)
    request.addfinalizer(lambda: shutil.rmtree(tmp_path, ignore_errors=True))
    out = tmp_path / "denied.csv"
    # import everything first, then drop to nobody: the interpreter's own files may be private
    child = (
        "import os, sys, signal, shutil, llmsoak.cli, llmsoak.units, llmsoak.sampler, llmsoak.sampler.gpu\n"
        "args = llmsoak.cli.build_parser().parse_args(sys.argv[1:])\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "sys.exit(args._run(args))\n")
    proc = subprocess.run([sys.executable, "-c", child, "sample", "--pid", str(os.getpid()), "--out", str(out),
                           "--interval", "0.1", "--duration", "0.6", "--events", str(tmp_path / "ev.csv")],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    rows = _read(out)
    assert rows and all(r["rss_bytes"] and r["read_bytes"] == "" for r in rows)  # /proc/PID/io is denied
    infos = [e for e in read_events(tmp_path / "ev.csv") if e["kind"] == "info"]
    assert len(infos) == 1 and "denied" in infos[0]["detail"]


def test_live_history_json_is_bounded(tmp_path):
    from llmsoak.sampler.live import HISTORY_MAX_ROWS, RING_MAX_ROWS

    assert HISTORY_MAX_ROWS == 10_080 and RING_MAX_ROWS >= 3600
    assert json.dumps({"ok": True})  # the endpoint only serves JSON with allow_nan=False
