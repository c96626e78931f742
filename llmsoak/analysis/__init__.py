"""Statistical analysis of soak runs: read samples, judge leaks and drift per metric.

Entry points (contracts.md): ``read_samples``, ``analyze_metric``, ``overall_verdict``.
"""

from llmsoak.analysis.samples_csv import SamplesFrame, read_samples
from llmsoak.analysis.verdict import MetricVerdict, analyze_metric, overall_verdict

__all__ = ["MetricVerdict", "SamplesFrame", "analyze_metric", "overall_verdict", "read_samples"]
