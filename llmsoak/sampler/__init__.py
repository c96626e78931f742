"""The sidecar sampler: a process tree's memory, CPU, fds, I/O (and GPU) to an append-only CSV.

Modules by concern: ``selectors`` (what to watch), ``probe`` (reading and summing a tree),
``samples_writer`` (the crash-safe CSV writer), ``schedule`` (drift-free ticks), ``gpu`` (NVML),
``metrics_scrape`` (the target's Prometheus /metrics), ``live`` (the HTTP live endpoint) and
``sampler`` (the loop that ties them together). See docs/sampler.md.
"""

from llmsoak.sampler.sampler import Sampler, default_events_path
from llmsoak.sampler.samples_writer import AppendingCsvWriter, SamplesWriteError
from llmsoak.sampler.selectors import (
    CgroupSelector,
    MatchSelector,
    PidSelector,
    PortSelector,
    Selector,
    build_selector,
)

__all__ = [
    "AppendingCsvWriter",
    "CgroupSelector",
    "MatchSelector",
    "PidSelector",
    "PortSelector",
    "Sampler",
    "SamplesWriteError",
    "Selector",
    "build_selector",
    "default_events_path",
]
