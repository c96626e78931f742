"""Cost of the sampler's ``/api/rows?since=TS`` on a week-long samples file (docs/sampler.md).

Writes a samples CSV of ``--rows`` rows (default 604,800: 168 h at 1 s) with the real writer,
then serves it with a real ``llmsoak sample --listen 127.0.0.1:0`` (attached to a sleeping
child, its ``--out`` the big file) and times, over HTTP, pages of ``--page`` rows (default
5,000, what ``llmsoak run`` asks for) starting at random points of the week, and a catch-up from
the middle to the end page after page (raw, then through ``llmsoak run``'s puller writing the
run's file). Reports the median and worst time per page, the
catch-up rate in rows/s, and the sampler's RSS before and after (a page is read from the file,
so its memory should not follow the file's size).

Usage::

    .venv/bin/python benchmarks/bench_rows_page.py [--rows 604800] [--page 5000] [--pages 50]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

from llmsoak.formats import SAMPLES_COLUMNS
from llmsoak.run.remote_sampler import RemoteSampler
from llmsoak.sampler.samples_writer import AppendingCsvWriter


def write_week(path: Path, rows: int, start: float) -> None:
    with AppendingCsvWriter(path, SAMPLES_COLUMNS, fsync_interval_s=3600) as writer:
        for i in range(rows):
            writer.write_row({"timestamp": start + i, "pid": 4242, "create_time": start - 10,
                              "rss_bytes": 500_000_000 + 4096 * (i % 977), "vms_bytes": 2_000_000_000,
                              "swap_bytes": 0, "cpu_percent": 12.5 + (i % 7), "num_threads": 24,
                              "num_fds": 61, "num_procs": 3, "read_bytes": 10_000 + i, "write_bytes": 20_000 + i,
                              "host_available_bytes": 8_000_000_000 - i})


def get(url: str) -> tuple[bytes, dict]:
    with urllib.request.urlopen(url, timeout=60) as resp:
        return resp.read(), dict(resp.headers)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=604_800)
    parser.add_argument("--page", type=int, default=5000)
    parser.add_argument("--pages", type=int, default=50, help="random pages to time")
    args = parser.parse_args()
    start = 1_790_000_000.0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "samples" / "target.csv"
        path.parent.mkdir()
        t0 = time.perf_counter()
        write_week(path, args.rows, start)
        print(f"file: {args.rows} rows, {path.stat().st_size / 1e6:.1f} MB, written in {time.perf_counter() - t0:.1f} s")
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        sampler = subprocess.Popen([sys.executable, "-m", "llmsoak", "sample", "--pid", str(child.pid), "--out",
                                    str(path), "--interval", "60", "--no-gpu", "--listen", "127.0.0.1:0"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            url = None
            for line in sampler.stdout:
                if m := re.search(r"listening on (http://\S+)", line):
                    url = m.group(1)
                    break
            assert url, "the sampler did not start"
            proc = psutil.Process(sampler.pid)
            rss_before = proc.memory_info().rss
            rng = random.Random(1)
            times = []
            for _ in range(args.pages):
                since = start + rng.uniform(0, args.rows - args.page)
                t = time.perf_counter()
                body, _ = get(f"{url}/api/rows?since={since:.3f}&limit={args.page}")
                times.append(time.perf_counter() - t)
                assert body.count(b"\n") == args.page + 1
            since, fetched = start + args.rows / 2, 0
            t = time.perf_counter()
            while True:
                body, headers = get(f"{url}/api/rows?since={since:.3f}&limit={args.page}")
                lines = body.splitlines()[1:]
                fetched += len(lines)
                if lines:
                    since = float(lines[-1].split(b",", 1)[0])
                if headers.get("X-Llmsoak-More") != "1":
                    break
            catch_up_s = time.perf_counter() - t
            # the same catch-up through llmsoak run's puller, into a run directory's file
            puller = RemoteSampler(url, Path(tmp) / "run" / "samples" / "target.csv",
                                   offsets_path=Path(tmp) / "run" / "clock_offsets.csv",
                                   event=lambda kind, detail: None, not_before=start + args.rows / 2)
            puller.check()
            t = time.perf_counter()
            pulled = puller.pull_once()
            pull_s = time.perf_counter() - t
            puller.close()
            rss_after = proc.memory_info().rss
        finally:
            sampler.terminate()
            sampler.wait(10)
            child.kill()
            child.wait()
    print(f"page of {args.page} rows from a random point: median {statistics.median(times) * 1000:.0f} ms, "
          f"worst {max(times) * 1000:.0f} ms ({args.pages} pages)")
    print(f"catch-up of {fetched} rows (half a week): {catch_up_s:.1f} s, {fetched / catch_up_s:,.0f} rows/s")
    print(f"llmsoak run's puller, same catch-up into samples/target.csv: {pulled} rows in {pull_s:.1f} s, "
          f"{pulled / pull_s:,.0f} rows/s")
    print(f"sampler RSS: {rss_before / 1e6:.1f} MB before, {rss_after / 1e6:.1f} MB after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
