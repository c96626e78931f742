"""Statistical analysis of soak runs: read samples, judge leaks and drift per metric.

Entry points (docs/analysis.md, "In Python"): ``read_samples``, ``analyze_metric``,
``overall_verdict``. They are loaded on first use, so importing a light submodule
(``llmsoak.analysis.wording`` from ``llmsoak run`` and the web UI) does not import numpy.
"""

from __future__ import annotations

import importlib

_ENTRY_POINTS = {
    "SamplesFrame": "llmsoak.analysis.samples_reader", "read_samples": "llmsoak.analysis.samples_reader",
    "MetricVerdict": "llmsoak.analysis.verdict", "analyze_metric": "llmsoak.analysis.verdict",
    "overall_verdict": "llmsoak.analysis.verdict",
}
__all__ = sorted(_ENTRY_POINTS)


def __getattr__(name: str):
    if name in _ENTRY_POINTS:
        return getattr(importlib.import_module(_ENTRY_POINTS[name]), name)
    raise AttributeError(f"module 'llmsoak.analysis' has no attribute {name!r}")
