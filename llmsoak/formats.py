"""The columns and event kinds of the files llmsoak writes: one list each, for writers and readers.

Where each file lives in a run directory is :mod:`llmsoak.rundir`; what every column means is
docs/formats.md, whose tables list exactly these names (tests/run/test_formats.py checks it).
Units are in the names: ``_bytes``, ``_ms``, ``_s``, ``_percent`` (100 = one core for CPU);
``timestamp`` is Unix seconds.
"""

from __future__ import annotations

SAMPLES_ID_COLUMNS: tuple[str, ...] = ("timestamp", "pid", "create_time")
"""Samples CSV columns that identify a row (time, watched root process and its start), not metrics."""

SAMPLES_COLUMNS: tuple[str, ...] = (
    *SAMPLES_ID_COLUMNS, "rss_bytes", "uss_bytes", "vms_bytes", "swap_bytes",
    "cpu_percent", "num_threads", "num_fds", "num_procs", "read_bytes", "write_bytes",
    "host_available_bytes", "cgroup_memory_bytes", "gpu_memory_bytes", "gpu_util_percent",
)
"""Samples CSV header (``llmsoak sample --out``, ``RUN/samples/<target>.csv``), in order."""

HISTORY_EXTRA_COLUMNS: tuple[str, ...] = ("rss_bytes_min",)
"""Columns the sampler's ``/api/history`` adds after SAMPLES_COLUMNS: the minute's lowest RSS."""

METRICS_COLUMNS: tuple[str, ...] = ("timestamp", "metric", "labels", "value")
"""The target's scraped Prometheus series (``llmsoak sample --metrics-out``), long format."""

SERVER_METRICS_COLUMNS: tuple[str, ...] = (
    "timestamp", "requests_running", "requests_waiting", "kv_cache_usage_percent", "preemptions_total",
)
"""``samples/server_metrics.csv`` (``llmsoak sample --metrics-format server``): the target's own
Prometheus gauges that matter for a soak, one row per scrape on the sampler's clock, named the
same for every engine (vLLM, llama.cpp's llama-server); empty = the server does not export it."""
CLOCK_OFFSETS_COLUMNS: tuple[str, ...] = ("timestamp", "host", "offset_s", "delay_s")
"""``clock_offsets.csv`` of a run pulling a remote sampler: when (our clock), which sampler
(``HOST:PORT``), its clock minus ours and the round trip's network delay, in seconds."""

EVENTS_COLUMNS: tuple[str, ...] = ("timestamp", "kind", "detail")
"""``events.csv`` header: when, one of EVENT_KINDS, free text for a person."""

EVENT_KINDS: tuple[str, ...] = (
    "start", "stop", "restart", "segment", "checkpoint", "alert", "shape", "info", "overrun",
    "worker",
)
"""The ``kind`` values of ``events.csv`` (and of the sampler's ``/api/events``)."""

FAILURE_CLASSES: tuple[str, ...] = (
    "http", "timeout", "disconnect", "malformed", "empty", "other",
    "context_overflow", "rate_limited", "server_error", "cut_short",
)
"""Every failed request is counted in exactly one class (``fail_<class>`` columns), in chart order.
The last four came later (issue 11): files written before them lack their columns."""

LLM_LATENCY_COLUMNS_MS: tuple[str, ...] = (
    "ttft_p50_ms", "ttft_p95_ms", "ttft_p99_ms", "itl_p50_ms", "itl_p95_ms", "tpot_p50_ms",
    "e2e_p50_ms", "e2e_p95_ms", "e2e_p99_ms",
)
"""Latency percentiles of ``llm_timeseries.csv``, milliseconds."""

LLM_TIMESERIES_COLUMNS: tuple[str, ...] = (
    "timestamp", "pattern", "users", "requests", "failures",
    *(f"fail_{c}" for c in FAILURE_CLASSES),
    *LLM_LATENCY_COLUMNS_MS,
    "input_tokens", "output_tokens", "tokens_per_s",
    *("arrivals_scheduled", "arrivals_dropped", "lag_p95_ms", "lag_max_ms"),
)
"""``llm_timeseries.csv`` header: one row per pattern per minute plus ``pattern`` = ``all``;
``timestamp`` is the minute's start. The ``arrivals_*`` and ``lag_*`` columns (open-loop
arrivals, the profile's ``arrivals`` section) are filled on the ``all`` row only, and only when
the run has that section; files written before them lack these columns."""
