"""Scrape the target's Prometheus ``/metrics`` (vLLM KV-cache use, queue depth...) into a second CSV.

Two layouts. ``server`` (what ``llmsoak run`` records, ``samples/server_metrics.csv``): one row
per scrape with the few gauges a soak verdict needs, named the same for every engine
(SERVER_METRICS_COLUMNS; :data:`SERVER_METRIC_SOURCES` says which Prometheus names feed each),
so the file stays as small as the samples CSV over 168 h. ``long`` (the default of
``llmsoak sample --metrics-out``) keeps every series, so new series never change its header:
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

from llmsoak.formats import METRICS_COLUMNS, SERVER_METRICS_COLUMNS
from llmsoak.sampler.samples_writer import AppendingCsvWriter, SamplesWriteError

_LINE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+\S+)?\s*$")
_DEFAULT_EXCLUDE = re.compile(r"(_bucket|_created)$")
MAX_BODY_BYTES = 8 * 1024 * 1024
METRICS_FORMATS = ("long", "server")

SERVER_METRIC_SOURCES: dict[str, tuple[tuple[str, float, str], ...]] = {
    # column: ((Prometheus name, factor, how several label sets combine), ...), first found wins
    "requests_running": (("vllm:num_requests_running", 1.0, "sum"),
                         ("llamacpp:requests_processing", 1.0, "sum")),
    "requests_waiting": (("vllm:num_requests_waiting", 1.0, "sum"),
                         ("llamacpp:requests_deferred", 1.0, "sum")),
    # vLLM's "perc" and llama.cpp's "ratio" are both fractions (1 = full)
    "kv_cache_usage_percent": (("vllm:kv_cache_usage_perc", 100.0, "max"),
                               ("vllm:gpu_cache_usage_perc", 100.0, "max"),
                               ("llamacpp:kv_cache_usage_ratio", 100.0, "max")),
    "preemptions_total": (("vllm:num_preemptions_total", 1.0, "sum"),
                          ("vllm:num_preemptions", 1.0, "sum")),
}
"""Which Prometheus series feed each column of ``server_metrics.csv`` (vLLM, then its older
names, then llama.cpp's C++ ``llama-server --metrics``). Several label sets of one name (vLLM's
``engine="0"``, ``engine="1"``...) are summed, or the fullest one taken for the KV cache."""


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


def server_row(series) -> dict[str, float | None]:
    """The SERVER_METRICS_COLUMNS values (timestamp left out) from ``(metric, labels, value)``
    series; None for a column none of whose source names is there."""
    values: dict[str, list[float]] = {}
    for metric, _labels, value in series:
        if not math.isnan(value):
            values.setdefault(metric, []).append(value)
    row: dict[str, float | None] = {}
    for column, sources in SERVER_METRIC_SOURCES.items():
        row[column] = None
        for name, factor, combine in sources:
            if name in values:
                found = values[name]
                row[column] = factor * (sum(found) if combine == "sum" else max(found))
                break
    return row


def describe_failure(err: BaseException, timeout_s: float) -> str:
    """``HTTP 404 Not Found``, ``no answer within 2 s``, ``[Errno 111] Connection refused``."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    reason = getattr(err, "reason", err)
    if isinstance(reason, TimeoutError) or isinstance(err, TimeoutError) or "timed out" in str(reason):
        return f"no answer within {timeout_s:g} s"
    return str(reason)


class MetricsScraper:
    """Fetches ``url`` once per submitted tick and appends its series to ``out_path``.

    ``layout``: ``long`` (every series, METRICS_COLUMNS) or ``server`` (one row per scrape,
    SERVER_METRICS_COLUMNS). ``event(kind, detail)``: where a failing or recovering endpoint is
    reported (once per distinct message), e.g. the sampler's events.csv; default: ``log``.
    ``on_row(row)``: each ``server`` row written (the sampler's live endpoint).
    """

    def __init__(self, url: str, out_path, *, timeout_s: float = 2.0, include: str | None = None,
                 fsync_interval_s: float = 10.0, log: Callable[[str], None] = print,
                 layout: str = "long", event: Callable[[str, str], None] | None = None,
                 on_row: Callable[[dict], None] | None = None) -> None:
        if layout not in METRICS_FORMATS:
            raise ValueError(f"metrics layout must be one of {', '.join(METRICS_FORMATS)}, got {layout!r}")
        self.url = url
        self.timeout_s = timeout_s
        self.include = re.compile(include) if include else None
        self.log = log
        self.layout = layout
        self.event = event
        self.on_row = on_row
        columns = SERVER_METRICS_COLUMNS if layout == "server" else METRICS_COLUMNS
        self.writer = AppendingCsvWriter(out_path, columns, fsync_interval_s=fsync_interval_s)
        self.scrapes_ok = 0
        self.scrapes_failed = 0
        self.ticks_dropped = 0
        self._pending: float | None = None
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="sampler-metrics", daemon=True)
        self._last_error: str | None = None
        self._said_nothing_known = False
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
        if self._thread.ident is not None:  # scrape_once may be used without the thread
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

    def _say(self, kind: str, message: str) -> None:
        if self.event is not None:
            self.event(kind, message)
        else:
            self.log(f"warning: {message}" if kind == "alert" else message)

    def scrape_once(self, timestamp: float) -> int:
        """Fetch and append; return the number of series (rows, for ``server``) written (0 on
        failure, said once per distinct failure, and once more when it works again)."""
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout_s) as resp:
                body = resp.read(MAX_BODY_BYTES).decode("utf-8", errors="replace")
        except (urllib.error.URLError, OSError, ValueError) as err:
            self.scrapes_failed += 1
            message = (f"metrics scrape of {self.url} failed: {describe_failure(err, self.timeout_s)}"
                       " (said once; retrying every sample)")
            if message != self._last_error:
                self._last_error = message
                self._say("alert", message)
            return 0
        if self._last_error is not None:
            self._last_error = None
            self._say("info", f"metrics scrape of {self.url} works again")
        if self._last_ts is not None and timestamp <= self._last_ts:
            return 0
        if self.layout == "server":
            return self._write_server_row(timestamp, body)
        # several series share one timestamp, but the writer wants strictly increasing ones:
        # write them as one block, guarded by the tick's own timestamp
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

    def _write_server_row(self, timestamp: float, body: str) -> int:
        row = server_row(parse_prometheus_text(body))
        if all(value is None for value in row.values()):
            self.scrapes_failed += 1
            if not self._said_nothing_known:
                self._said_nothing_known = True
                known = ", ".join(name for sources in SERVER_METRIC_SOURCES.values() for name, _, _ in sources)
                self._say("alert", f"metrics scrape of {self.url}: none of the server gauges llmsoak "
                                   f"records is there ({known}); nothing written")
            return 0
        row = {"timestamp": timestamp, **row}
        try:
            written = self.writer.write_row(row)
        except SamplesWriteError as err:
            self.scrapes_failed += 1
            self.log(f"warning: {err.strerror}; metrics scraping continues without this scrape")
            return 0
        self._last_ts = timestamp
        self.scrapes_ok += 1
        if written and self.on_row is not None:
            self.on_row(row)
        return 1 if written else 0
