"""Helpers for the web UI tests: a test locustfile, a profile, and real processes.

The test locustfile imports llmsoak's real ``locustfiles/llm_chat.py`` (user classes, plugin
listeners) and calls ``llmsoak.webui.install()``, so the tests run whether or not the shipped
locustfile already does.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from support.processes import REPO, RunningProcess, llmsoak_cmd, spawn, wait_until

_WEB_RE = re.compile(r"Starting web interface at (http://[\d.]+:\d+)")

LOCUSTFILE = f'''
import sys
sys.path.insert(0, {str(REPO / "locustfiles")!r})
from llm_chat import *  # noqa: F401,F403 - the real locustfile: user classes and listeners
import llmsoak.webui
llmsoak.webui.install()
'''

LOGIN_CODE = '''
import secrets
from flask_login import UserMixin, login_user
from locust import events


class _Tester(UserMixin):
    def __init__(self, uid):
        self.id = uid


@events.init.add_listener
def _auth(environment, **_kwargs):
    web_ui = environment.web_ui
    if web_ui is None:
        return
    web_ui.app.config["SECRET_KEY"] = secrets.token_hex(16)
    web_ui.login_manager.user_loader(lambda uid: _Tester(uid))

    @web_ui.app.route("/test-login")
    def _test_login():
        login_user(_Tester("tester"))
        return "logged in"
'''


def write_locustfile(tmp_path: Path, *, login: bool = False) -> Path:
    path = tmp_path / "webui_locustfile.py"
    path.write_text(LOCUSTFILE + (LOGIN_CODE if login else ""))
    return path


def write_profile(tmp_path: Path, *, users: int = 2, warn: str = "1MB", limit: str = "8GB",
                  ttft_p95_ms: float = 60_000, error_rate: float = 0.5) -> Path:
    """A one-pattern profile (active users with short think times) with SLO thresholds."""
    path = tmp_path / "webui-profile.yaml"
    path.write_text(f"""
name: webui-test
target:
  url: http://127.0.0.1:9
  flavour: openai
  endpoint: chat
  model: stub-model
  stream: true
  timeout_s: 10
patterns:
  active:
    users: {users}
    think_time_s: {{uniform: [0.2, 0.5]}}
    first_message_delay_s: 0
load:
  shape: none
slo:
  error_rate: {error_rate}
  ttft_p95_ms: {ttft_p95_ms}
  memory_warn_bytes: {warn}
  memory_limit_bytes: {limit}
""")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sampler(pid: int, tmp_path: Path) -> RunningProcess:
    """``llmsoak sample --pid PID --listen 127.0.0.1:0`` at 0.5 s; ``.url`` is the live endpoint."""
    return spawn(llmsoak_cmd("sample", "--pid", str(pid), "--out", str(tmp_path / "samples" / "target.csv"),
                             "--interval", "0.5", "--listen", "127.0.0.1:0", "--no-gpu"))


def start_locust_ui(locustfile: Path, profile: Path, host: str, *extra: str,
                    sampler_url: str | None = None) -> RunningProcess:
    """Locust in web UI mode on a free 127.0.0.1 port; ``.url`` is the web UI once it answers."""
    args = [sys.executable, "-m", "locust", "-f", str(locustfile), "--profile", str(profile),
            "--web-host", "127.0.0.1", "--web-port", str(free_port()), "-H", host,
            "--llm-timeseries", str(profile.parent / "llm_timeseries.csv"), *extra]
    if sampler_url:
        args += ["--sampler-url", sampler_url]
    proc = spawn(args, wait_for_url=False)

    def announced():
        if proc.proc.poll() is not None:
            raise AssertionError("locust exited:\n" + "\n".join(proc.lines[-40:]))
        for line in list(proc.lines):
            if m := _WEB_RE.search(line):
                return m.group(1)
        return None

    try:
        proc.url = wait_until(announced, timeout=60, what="Locust's 'Starting web interface' line")
        wait_until(lambda: _answers(proc.url + "/"), timeout=30, what="Locust's web UI to answer")
    except BaseException:
        proc.stop()
        raise
    return proc


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


class Client:
    """A tiny HTTP client with cookies (for --web-login) that does not follow redirects by default."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def request(self, path: str, data: dict | None = None) -> tuple[int, dict, bytes]:
        body = None if data is None else urllib.parse.urlencode(data).encode()
        try:
            with self.opener.open(urllib.request.Request(self.base + path, data=body), timeout=15) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def json(self, path: str) -> dict:
        status, _headers, body = self.request(path)
        assert status == 200, f"{path} answered {status}: {body[:300]!r}"
        return json.loads(body)

    def swarm(self, users: int, spawn_rate: float, host: str) -> dict:
        status, _headers, body = self.request("/swarm", {"user_count": users, "spawn_rate": spawn_rate,
                                                         "host": host})
        assert status == 200, body
        return json.loads(body)
