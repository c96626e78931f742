"""Locust's and geventhttpclient's internals, pinned: what llmsoak.locust.internals uses is still there.

GIVEN the installed Locust and geventhttpclient,
WHEN each internal llmsoak.locust.internals relies on is used the way llmsoak uses it (real
  requests to the reference target, real RequestStats, runners and environments),
THEN it exists with the shape expected, the installed versions are inside the range pyproject.toml
  declares, and another version gets one clear line and exit 2 instead of a traceback.

A Locust or geventhttpclient upgrade that breaks one of these fails here first; widen
``internals.SUPPORTED`` and pyproject.toml together only once this file passes.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import tomllib
from locust import LoadTestShape
from locust.contrib.fasthttp import FastHttpSession
from locust.env import Environment
from locust.runners import MasterRunner, Runner
from locust.stats import RequestStats, StatsEntry
from locust.user.task import TaskSet
from locust.user.users import User

from llmsoak.locust import internals
from llmsoak.locust.apis import OpenAIChat
from llmsoak.locust.response_reader import read_stream_chunks
from llmsoak.locust.results import RequestResult

REPO = Path(__file__).resolve().parents[2]
CHAT_BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True,
             "stream_options": {"include_usage": True}}
STREAM_HEADERS = {"Content-Type": "application/json", "Accept-Encoding": "identity"}


# --------------------------------------------------------------------------- versions

def test_installed_versions_are_the_supported_ones():
    assert internals.unsupported_versions() == []


def test_pyproject_and_requirements_declare_the_supported_range():
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for name in internals.SUPPORTED:
        assert internals.spec(name) in dependencies, f"pyproject.toml must say {internals.spec(name)}"
    pins = dict(line.split("==") for line in (REPO / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    for name, (low, high) in internals.SUPPORTED.items():
        assert low <= internals.release(pins[name]) < high, f"requirements.txt pins {name} {pins[name]}"


@pytest.mark.parametrize("fake", ["2.48.0", "2.46.3", "3.0.0"])
def test_an_unsupported_locust_gets_one_line_and_exit_2(fake):
    code = ("import importlib.metadata as m\n"
            "real = m.version\n"
            f"m.version = lambda name: {fake!r} if name == 'locust' else real(name)\n"
            "import llmsoak.locust.internals\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == internals.EXIT_UNSUPPORTED == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"locust {fake}" in lines[0] and "locust>=2.47,<2.48" in lines[0] and "Traceback" not in proc.stderr


def test_release_reads_the_numeric_part():
    assert internals.release("2.47.0") == (2, 47, 0)
    assert internals.release("2.6.1.dev3+g1234") == (2, 6, 1)
    assert internals.release("2.48rc1") == (2, 48)


# --------------------------------------------------------------------------- one request

def _session(url: str) -> tuple[Environment, FastHttpSession]:
    env = Environment()
    env.create_local_runner()  # its request listener logs into env.stats
    return env, FastHttpSession(url, request_event=env.events.request, user=None)


def test_a_streamed_response_has_what_body_reader_and_close_quietly_use(start_stub):
    stub = start_stub("--ttft-ms", "1", "--itl-ms", "0", "--output-tokens", "30")
    env, session = _session(stub.url)
    with session.request("POST", "/v1/chat/completions", name="chat", data=json.dumps(CHAT_BODY),
                         headers=STREAM_HEADERS, stream=True, catch_response=True) as resp:
        stream = resp.stream
        assert isinstance(stream._body_buffer, bytearray)
        assert isinstance(stream._sock, socket.socket) and callable(stream._sock.recv)
        # gevent's socket: its read watcher, its timeout and the raw non-blocking socket under it
        assert stream._sock._read_event is not None and stream._sock.timeout > 0
        assert callable(stream._sock._sock.recv) and stream._sock._sock.gettimeout() == 0.0
        assert callable(stream.feed) and callable(stream.release) and stream.message_complete is False
        assert callable(stream._pool.release_socket)
        result = read_stream_chunks(internals.body_reader(stream), OpenAIChat(), RequestResult(status=200), 0.0)
        assert result.ok and result.output_tokens == 30
        assert stream.message_complete is True
        assert {"response_time", "exception"} <= resp.request_meta.keys()
        internals.set_response_time(resp, 1234.0)
        assert internals.request_exception(resp) is None and internals.response_error(resp) is None
        resp.success()
    # The response time llmsoak set is the one Locust recorded.
    assert env.stats.get("chat", "POST").max_response_time == 1234.0


def test_close_quietly_drops_a_connection_left_mid_body(start_stub):
    stub = start_stub("--ttft-ms", "1", "--itl-ms", "50", "--output-tokens", "100")
    _, session = _session(stub.url)
    with session.request("POST", "/v1/chat/completions", data=json.dumps(CHAT_BODY), headers=STREAM_HEADERS,
                         stream=True, catch_response=True) as resp:
        resp.success()
    sock = resp.stream._sock
    assert sock is not None
    internals.close_quietly(resp)
    assert resp.stream._sock is None and sock.fileno() == -1  # closed, not back in the pool


def test_a_request_without_a_response_carries_its_error():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _, session = _session(f"http://127.0.0.1:{port}")
    with session.request("POST", "/x", data="{}", catch_response=True) as resp:
        assert resp.status_code == 0
        assert isinstance(internals.response_error(resp), ConnectionRefusedError)
        resp.success()


def test_a_body_that_breaks_off_is_in_request_meta(start_stub):
    # Not streamed: the stub sends half of the declared Content-Length, then resets the connection.
    stub = start_stub("--ttft-ms", "1", "--itl-ms", "0", "--fault", "reset_mid_stream=1.0")
    _, session = _session(stub.url)
    body = dict(CHAT_BODY, stream=False)
    with session.request("POST", "/v1/chat/completions", data=json.dumps(body), headers=STREAM_HEADERS,
                         catch_response=True) as resp:
        assert resp.status_code == 200
        assert isinstance(internals.request_exception(resp), Exception)
        resp.success()


# --------------------------------------------------------------------------- stream reading over TCP

def _post_stream(url: str, max_tokens: int, client=None, network_timeout: float = 10):
    from geventhttpclient import URL, HTTPClient

    u = URL(url)
    client = client or HTTPClient(u.host, u.port, network_timeout=network_timeout, connection_timeout=5)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True,
                       "max_tokens": max_tokens, "stream_options": {"include_usage": True}})
    resp = client.request("POST", "/v1/chat/completions", body=body,
                          headers={"Content-Type": "application/json", "Accept-Encoding": "identity"})
    return client, resp


def test_body_reader_against_the_stub_over_tcp(start_stub):
    stub = start_stub("--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "40")
    client, resp = _post_stream(stub.url, 40)
    try:
        assert resp.status_code == 200 and resp.get("transfer-encoding") == "chunked"
        r = read_stream_chunks(internals.body_reader(resp), OpenAIChat(), RequestResult(status=200), 0.0)
        assert r.ok and r.output_tokens == 40 and r.content_chunks == 40 and len(r.itl_ms) == 39
        assert any(v > 0.5 for v in r.itl_ms)  # 1 ms apart on the wire: real gaps, not one batch
    finally:
        client.close()


@pytest.mark.parametrize("fault,cls", [("reset_mid_stream", "disconnect"), ("malformed_chunk", "malformed"),
                                       ("empty_response", "empty")])
def test_body_reader_classifies_stub_faults(start_stub, fault, cls):
    stub = start_stub("--ttft-ms", "1", "--itl-ms", "0", "--fault", f"{fault}=1.0")
    client, resp = _post_stream(stub.url, 30)
    try:
        r = read_stream_chunks(internals.body_reader(resp), OpenAIChat(), RequestResult(status=200), 0.0)
        assert r.failure_class == cls, r.failure_message
    finally:
        client.close()


def test_a_stalled_stream_times_out_and_its_connection_is_not_reused(start_stub):
    stub = start_stub("--ttft-ms", "1", "--itl-ms", "0", "--fault", "stall=1.0", "--stall-s", "30")
    client, resp = _post_stream(stub.url, 20, network_timeout=1.0)
    try:
        r = read_stream_chunks(internals.body_reader(resp), OpenAIChat(), RequestResult(status=200), 0.0)
        assert r.failure_class == "timeout", r.failure_message
        faults_off = urllib.request.Request(stub.url + "/_stub/faults", data=b"{}", method="POST",
                                            headers={"Content-Type": "application/json"})
        urllib.request.urlopen(faults_off, timeout=5).close()
        # Same client, one connection slot: were the stalled socket back in the pool, this
        # request would go to the stalled response's connection and time out too.
        _, resp = _post_stream(stub.url, 20, client=client)
        r = read_stream_chunks(internals.body_reader(resp), OpenAIChat(), RequestResult(status=200), 0.0)
        assert r.ok and r.output_tokens == 20
    finally:
        client.close()


# --------------------------------------------------------------------------- stats

def test_log_many_equals_locust_log():
    a, b = RequestStats(), RequestStats()
    vals = [0.3, 1.7, 19.9, 20.4, 150.2, 0.01]
    ea, eb = a.entries[("x", "ITL")], b.entries[("x", "ITL")]
    for v in vals:
        ea.log(v, 0)
    internals.log_many(eb, vals)
    for k in ("num_requests", "total_response_time", "min_response_time", "max_response_time"):
        assert getattr(ea, k) == pytest.approx(getattr(eb, k))
    assert dict(ea.response_times) == dict(eb.response_times)



def test_log_many_keeps_locusts_per_second_counter():
    stats = RequestStats()
    entry = stats.get("x", "ITL")
    internals.log_many(entry, [1.0, 0.0, 0.0, 2.0])
    assert entry.num_requests == 4 and sum(entry.num_reqs_per_sec.values()) == 4


def test_what_bounded_memory_reaches_into():
    stats = RequestStats()
    stats.log_request("POST", "/x", 10, 0)
    stats.log_error("POST", "/x", "http: HTTP 500")
    rows = internals.stats_rows(stats)
    assert rows[0] is stats.total and all(isinstance(r, StatsEntry) for r in rows) and len(rows) == 2
    requests, failures = internals.per_second_counters(stats.total)
    assert sum(requests.values()) == 1 and isinstance(failures, dict)
    assert isinstance(internals.chart_history(stats), list)
    errors = internals.error_rows(stats)
    (row,) = errors.values()
    assert (row.error, row.occurrences) == ("http: HTTP 500", 1) and row.last_seen > 0
    key, new = internals.error_row("llmsoak", "trimmed", "summary")
    assert key not in errors and (new.error, new.occurrences) == ("summary", 0)


def test_stats_csv_writers_write_locusts_columns(tmp_path):
    import csv

    env = Environment()
    env.stats.log_request("POST", "/x", 10, 0)
    requests_csv, failures_csv = internals.stats_csv_writers(env)
    with open(tmp_path / "s.csv", "w", newline="") as fh:
        requests_csv(csv.writer(fh))
    header, row, total = (tmp_path / "s.csv").read_text().splitlines()[:3]
    assert header.startswith("Type,Name,Request Count") and row.startswith("POST,/x,1")
    with open(tmp_path / "f.csv", "w", newline="") as fh:
        failures_csv(csv.writer(fh))


# --------------------------------------------------------------------------- runners, environment

def test_runner_and_environment_internals():
    assert isinstance(MasterRunner.__dict__["reported_user_classes_count"], property)
    assert isinstance(Runner.__dict__["user_classes_count"], property)

    class Used(User):
        def run(self):  # pragma: no cover - never started
            pass

    class Spare(Used):
        weight = 0
        fixed_count = 0

    env = Environment(user_classes=[Used, Spare])
    assert env.user_classes == [Used]  # Locust drops weight-0 classes ...
    internals.restore_user_classes(env, [Used, Spare])
    assert env.user_classes == [Used, Spare]  # ... and llmsoak puts them back, once
    runner = env.create_local_runner()
    assert internals.users_per_class(runner) == {"Used": 0, "Spare": 0}

    class Shape(LoadTestShape):
        def tick(self):  # pragma: no cover - never ticked
            return None

    env.available_shape_classes = {}
    shape = Shape()
    internals.set_running_shape(env, shape)
    assert env.shape_class is shape and shape.runner is runner and env.available_shape_classes["Shape"] is shape
    runner.quit()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    master = Environment(user_classes=[Used]).create_master_runner("127.0.0.1", port)
    try:
        assert internals.users_per_class(master) == {}  # no worker has reported yet
    finally:
        master.quit()


def test_a_user_stopping_gracefully_is_seen_as_wait_sees_it():
    from locust import constant
    from locust.exception import StopUser
    from locust.user.users import LOCUST_STATE_RUNNING

    class Quiet(User):
        wait_time = constant(0)

        def run(self):  # pragma: no cover - never started
            pass

    user = Quiet(Environment())
    user._state = LOCUST_STATE_RUNNING  # as User.run sets it while a task runs
    user._taskset_instance = TaskSet(user)
    assert not internals.user_is_stopping(user)
    assert user.stop() is False  # a graceful stop: Locust marks the running user as stopping ...
    assert internals.user_is_stopping(user)
    with pytest.raises(StopUser):  # ... which is what User.wait() checks too
        user.wait()


def test_the_public_apis_llmsoak_relies_on_instead_of_internals():
    # User.wait() marks the user waiting and sleeps for wait_time(): the users' think time.
    assert callable(User.wait) and callable(TaskSet.wait_time)
    env = Environment()
    assert callable(env.events.request.fire) and callable(RequestStats().get)
    # The web UI's /swarm view (the start form) and the auth decorator llmsoak guards its hooks with.
    from locust.web import WebUI

    assert callable(WebUI.auth_required_if_enabled) and callable(WebUI.update_template_args)
    web_ui = env.create_web_ui("127.0.0.1", 0)  # not started: only its Flask app is looked at
    rules = {(rule.rule, method) for rule in web_ui.app.url_map.iter_rules() for method in rule.methods}
    assert ("/swarm", "POST") in rules
