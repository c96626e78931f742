"""``/api/rows?since=TS`` (rows read from the samples FILE) and the token required off loopback.

GIVEN a real ``llmsoak sample --listen`` watching a real process, WHEN a client pulls pages,
THEN they are exactly the file's lines after ``since``; off loopback the sampler refuses to start
without ``$LLMSOAK_SAMPLER_TOKEN`` and then answers 401 to requests without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from support.processes import llmsoak_cmd, spawn, wait_until

from llmsoak.errors import EXIT_BAD_INPUT
from llmsoak.formats import SAMPLES_COLUMNS
from llmsoak.sampler.live import HEADER_MORE, HEADER_RECEIVED, HEADER_SENT, TOKEN_ENV, is_loopback
from llmsoak.sampler.rows_page import offset_after, read_page

TOKEN = "tok-LIVE-ROWS-5f1e2d"


def _write_file(path: Path, timestamps: list[float], partial: bool = False) -> list[bytes]:
    header = (",".join(SAMPLES_COLUMNS) + "\n").encode()
    rows = [f"{ts:.3f},42,1.5,{1000 + i}".encode() + b"," * (len(SAMPLES_COLUMNS) - 4) + b"\n"
            for i, ts in enumerate(timestamps)]
    path.write_bytes(header + b"".join(rows) + (b"1799.5,42,1.5,99" if partial else b""))
    return rows


def test_read_page_bisects_to_the_first_row_after_since(tmp_path):
    # GIVEN a 3,000-row file (larger than one linear-scan window) with a partial last line
    stamps = [1000.0 + 0.25 * i for i in range(3000)]
    rows = _write_file(tmp_path / "s.csv", stamps, partial=True)
    # WHEN/THEN every since lands on the first row strictly after it, for all positions
    for since in (None, 0.0, 999.99, 1000.0, 1000.1, 1250.25, 1499.0, 1749.75, 1750.0, 5000.0):
        header, page, more = read_page(tmp_path / "s.csv", since, 10_000)
        expected = [r for r, ts in zip(rows, stamps, strict=True) if since is None or ts > since]
        assert page == expected, since
        assert header.startswith(b"timestamp,") and more is False
    # a page stops at its limit and says there is more
    _, page, more = read_page(tmp_path / "s.csv", 1100.0, 7)
    assert page == rows[401:408] and more is True
    with open(tmp_path / "s.csv", "rb") as fh:
        assert offset_after(fh, 1000.0) == len(",".join(SAMPLES_COLUMNS)) + 1 + len(rows[0])


def test_is_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("127.8.0.1") and is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.1.2.3")
    assert not is_loopback("example.org")


@pytest.fixture
def target():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc
    proc.kill()
    proc.wait()


def _get(url: str, token: str | None = None):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    return urllib.request.urlopen(req, timeout=10)


def test_api_rows_serves_the_files_rows_after_since_in_pages(tmp_path, target):
    out = tmp_path / "run" / "samples" / "target.csv"
    sampler = spawn(llmsoak_cmd("sample", "--pid", str(target.pid), "--out", str(out), "--interval", "0.1",
                                "--listen", "127.0.0.1:0", "--no-gpu"))
    try:
        wait_until(lambda: out.exists() and len(out.read_bytes().splitlines()) > 25, 20, what="25 rows")
        # WHEN a client pages through the rows, 10 at a time, from the start
        got: list[bytes] = []
        since = None
        while True:
            with _get(f"{sampler.url}/api/rows?limit=10" + (f"&since={since}" if since else "")) as resp:
                body = resp.read()
                assert resp.headers["Content-Type"].startswith("text/csv")
                assert float(resp.headers[HEADER_RECEIVED]) <= float(resp.headers[HEADER_SENT])
                more = resp.headers[HEADER_MORE] == "1"
            lines = body.splitlines(keepends=True)
            assert lines[0] == (",".join(SAMPLES_COLUMNS) + "\n").encode()
            assert len(lines) - 1 <= 10
            got += lines[1:]
            if lines[1:]:
                since = lines[-1].split(b",")[0].decode()
            if not more and len(got) >= 25:
                break
        # THEN the pages are the file's own lines, in order, without gap or duplicate
        file_lines = out.read_bytes().splitlines(keepends=True)[1:]
        assert got == file_lines[:len(got)]
        assert len({line.split(b",")[0] for line in got}) == len(got)
        # and the old routes still answer; events filter by since
        events = json.loads(_get(f"{sampler.url}/api/events").read())["events"]
        assert [e["kind"] for e in events][:2] == ["start", "segment"]
        later = json.loads(_get(f"{sampler.url}/api/events?since={events[-1]['timestamp']}").read())["events"]
        assert later == []
        # bad parameters are 400 with the reason
        for query, word in (("since=yesterday", "since"), ("limit=0", "limit"), ("limit=10001", "limit")):
            with pytest.raises(urllib.error.HTTPError) as err:
                _get(f"{sampler.url}/api/rows?{query}")
            assert err.value.code == 400 and word in json.loads(err.value.read())["error"]
    finally:
        sampler.stop()


def test_off_loopback_without_a_token_is_refused_with_one_line(tmp_path, target):
    out = tmp_path / "samples" / "t.csv"
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    proc = subprocess.run(llmsoak_cmd("sample", "--pid", str(target.pid), "--out", str(out),
                                      "--listen", "0.0.0.0:0", "--no-gpu"),
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == EXIT_BAD_INPUT
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and TOKEN_ENV in lines[0] and "0.0.0.0:0" in lines[0], proc.stderr
    assert not out.exists() and not (tmp_path / "events.csv").exists()


def test_off_loopback_with_a_token_answers_401_without_it(tmp_path, target):
    out = tmp_path / "run" / "samples" / "t.csv"
    sampler = spawn(llmsoak_cmd("sample", "--pid", str(target.pid), "--out", str(out), "--interval", "0.2",
                                "--listen", "0.0.0.0:0", "--no-gpu"), env={TOKEN_ENV: TOKEN})
    try:
        port = sampler.url.rsplit(":", 1)[1]
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: out.exists() and len(out.read_bytes().splitlines()) > 3, 20, what="rows")
        for token in (None, "wrong-token"):
            for path in ("/api/rows", "/api/latest", "/metrics", "/"):
                with pytest.raises(urllib.error.HTTPError) as err:
                    _get(url + path, token)
                assert err.value.code == 401
                assert TOKEN not in err.value.read().decode()
        with _get(f"{url}/api/rows", TOKEN) as resp:
            assert resp.status == 200 and resp.read().count(b"\n") > 3
    finally:
        sampler.stop()
    # the token is in no file and no output line
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert TOKEN not in path.read_text(errors="replace"), path
    assert not any(TOKEN in line for line in sampler.lines)


def test_events_after_reads_the_file_with_slack_for_several_writers(tmp_path):
    from llmsoak.sampler.rows_page import events_after

    path = tmp_path / "events.csv"
    lines = ["timestamp,kind,detail"]
    stamps = [1000.0 + i for i in range(5000)]
    stamps[3000], stamps[3001] = stamps[3001], stamps[3000]  # two writers, a second apart
    lines += [f'{ts:.3f},info,"n={i}, a comma"' for i, ts in enumerate(stamps)]
    path.write_text("\n".join(lines) + "\n")
    got = events_after(path, 4000.5, 10)
    assert [e["timestamp"] for e in got] == [4001.0 + i for i in range(10)]
    got = events_after(path, 3999.5, 3)  # the line of 4000 comes after 4001's in the file
    assert sorted(e["timestamp"] for e in got) == [4000.0, 4001.0, 4002.0]
    assert got[0]["kind"] == "info" and got[0]["detail"].endswith(", a comma")
    assert events_after(tmp_path / "none.csv", 0, 10) == []


def test_events_since_come_from_the_file_across_a_sampler_restart(tmp_path, target):
    out = tmp_path / "run" / "samples" / "target.csv"
    args = llmsoak_cmd("sample", "--pid", str(target.pid), "--out", str(out), "--interval", "0.2",
                       "--listen", "127.0.0.1:0", "--no-gpu")
    first = spawn(args)
    wait_until(lambda: out.exists() and len(out.read_bytes().splitlines()) > 2, 20, what="rows")
    first.stop()  # writes its `stop` event, then is gone (its memory with it)
    second = spawn(args)
    try:
        events = json.loads(_get(f"{second.url}/api/events?since=0").read())["events"]
    finally:
        second.stop()
    kinds = [e["kind"] for e in events]
    # both processes' events: start, segment, stop (sampler stopped) of the first, then the second's
    assert kinds.count("start") == 2 and "stop" in kinds[:kinds.index("start", 1)], kinds
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
