"""Scrape the target's Prometheus ``/metrics`` (vLLM KV-cache use, queue depth...) into a second CSV.

The file is long-format, so new series never change its header:
``timestamp,metric,labels,value`` — ``timestamp`` is the same Unix time as the samples row it
belongs to (the sampler hands each tick's timestamp over), ``labels`` the Prometheus label set
as written (``{model_name="x"}``), ``value`` a float. By default histogram buckets and
``_created`` series are left out (they multiply the rows without helping a soak verdict);
``include`` (a regular expression on the metric name) narrows it further.

Scraping runs in its own thread with a short timeout, so a slow or dead endpoint never delays the
process samples; a tick that arrives while a scrape is still running is dropped and counted.
"""

from __future__ import annotations

import math
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

from llmsoak.formats import METRICS_COLUMNS
from llmsoak.sampler.samples_writer import AppendingCsvWriter, SamplesWriteError

_LINE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+\S+)?\s*$")
_DEFAULT_EXCLUDE = re.compile(r"(_bucket|_created)$")
MAX_BODY_BYTES = 8 * 1024 * 1024


def parse_prometheus_text(text: str) -> Iterator[tuple[str, str, float]]:
    """(metric, labels, value) for each sample line of Prometheus text format; comments skipped."""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE_RE.match(line)
        if not match:
            continue
        try:
            value = float(match.group(3))
        except ValueError:
            continue
        yield match.group(1), match.group(2) or "", value


class MetricsScraper:
    """Fetches ``url`` once per submitted tick and appends its series to ``out_path``."""

    def __init__(self, url: str, out_path, *, timeout_s: float = 2.0, include: str | None = None,
                 fsync_interval_s: float = 10.0, log: Callable[[str], None] = print) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.include = re.compile(include) if include else None
        self.log = log
        self.writer = AppendingCsvWriter(out_path, METRICS_COLUMNS, fsync_interval_s=fsync_interval_s)
        self.scrapes_ok = 0
        self.scrapes_failed = 0
        self.ticks_dropped = 0
        self._pending: float | None = None
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="sampler-metrics", daemon=True)
        self._last_error: str | None = None
        self._last_ts: float | None = self.writer.last_timestamp

    def start(self) -> None:
        self._thread.start()

    def submit(self, timestamp: float) -> None:
        """Ask for a scrape stamped ``timestamp`` (dropped, and counted, if one is still running)."""
        with self._cond:
            if self._pending is not None:
                self.ticks_dropped += 1
            self._pending = timestamp
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(self.timeout_s + 1.0)
        self.writer.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                timestamp, self._pending = self._pending, None
            self.scrape_once(timestamp)

    def scrape_once(self, timestamp: float) -> int:
        """Fetch and append; return the number of series written (0 on failure, said once per kind)."""
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout_s) as resp:
                body = resp.read(MAX_BODY_BYTES).decode("utf-8", errors="replace")
        except (urllib.error.URLError, OSError, ValueError) as err:
            self.scrapes_failed += 1
            message = f"metrics scrape of {self.url} failed: {getattr(err, 'reason', err)}"
            if message != self._last_error:
                self._last_error = message
                self.log(f"warning: {message} (said once; retrying every tick)")
            return 0
        self._last_error = None
        # several series share one timestamp, but the writer wants strictly increasing ones:
        # write them as one block, guarded by the tick's own timestamp
        if self._last_ts is not None and timestamp <= self._last_ts:
            return 0
        count = 0
        try:
            for metric, labels, value in parse_prometheus_text(body):
                if _DEFAULT_EXCLUDE.search(metric) or (self.include and not self.include.search(metric)):
                    continue
                if math.isnan(value):
                    continue
                self.writer.last_timestamp = None  # rows of one scrape share the timestamp
                self.writer.write_row({"timestamp": timestamp, "metric": metric, "labels": labels,
                                       "value": value})
                count += 1
        except SamplesWriteError as err:
            self.scrapes_failed += 1
            self.log(f"warning: {err.strerror}; metrics scraping continues without this scrape")
            return 0
        self._last_ts = timestamp
        self.scrapes_ok += 1
        return count
