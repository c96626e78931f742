# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # Leak report for one run
#
# This notebook reads a run directory written by `llmsoak run` (or any directory with
# `samples/<target>.csv`) and walks through what `llmsoak analyze` decides, step by step:
# the verdict per metric, the 7-day projection, whether growth follows the load, the top growing
# allocation sites, and the charts. All logic lives in `llmsoak.analysis`; this file only calls it.
#
# Run it as a script: `python analysis/leak_report.py RUN_DIR` (or set `LLMSOAK_RUN_DIR`), or open
# it as a notebook: `jupytext --to notebook analysis/leak_report.py`.

# %%
import os
import sys
from pathlib import Path

from llmsoak.analysis.report import chart_data, draw_charts, render_summary_md
from llmsoak.analysis.run_dir import DECIDING_METRICS, analyze_run, latest_run_dir
from llmsoak.analysis.wording import projection_note
from llmsoak.formatting import format_bytes

args = [a for a in sys.argv[1:] if not a.startswith("-")]  # Jupyter passes its own -f flag
RUN_DIR = Path(args[0] if args else os.environ.get("LLMSOAK_RUN_DIR") or latest_run_dir("runs"))
print(f"run directory: {RUN_DIR}")

# %% [markdown]
# ## 1. Analyse every metric
#
# `analyze_run` finds the samples, the per-minute LLM series, Locust's stats and any tracemalloc
# snapshots, and gives each metric a verdict: **leak** (the slope's 95% interval is above zero,
# the slope reaches the practical threshold and the growth persists; with a severity, from the
# time to the limit or the growth per week), **ok** (the interval rules such growth out) or
# **inconclusive** (more hours are needed; a warm-up whose growth still slows down is one).
# The trend is fitted on the lower envelope of the current regime of the current run of the
# target, so warm-up, GC sawtooth and restarts do not fool it.

# %%
analysis = analyze_run(RUN_DIR)
verdict = analysis.verdict
print(f"overall verdict: {verdict['verdict']} (decided by {', '.join(verdict['decided_by'])})")
for metric, v in verdict["metrics"].items():
    print(f"  {metric:14s} {v['verdict']:12s} {v['reason']}")

# Sanity: the overall verdict is "leak" exactly when a deciding metric leaks.
deciding = [v["verdict"] for m, v in verdict["metrics"].items() if m in DECIDING_METRICS]
assert (verdict["verdict"] == "leak") == ("leak" in deciding) or len(analysis.targets) > 1

# %% [markdown]
# ## 2. The memory trend and its 7-day projection
#
# `projected_7d` is where the metric would be after 168 hours of uptime of the target if the
# current trend continued; it is null when that would carry the trend more than 20 times its own
# length beyond the data (`extrapolation`). `hours_to_limit` appears when a limit is known
# (`--limit`, the profile's `slo.memory_limit_bytes`, or a `cgroup_limit_bytes` column).

# %%
rss = verdict["metrics"].get("rss_bytes")
if rss and rss["slope_per_hour"] is not None:
    lo, hi = rss["slope_interval_per_hour"]
    print(f"RSS slope: {format_bytes(rss['slope_per_hour'])}/h (95% interval {format_bytes(lo)} to {format_bytes(hi)}/h)")
    if rss["projected_7d"] is not None:
        print(f"after 7 days of uptime: {format_bytes(rss['projected_7d'])} "
              f"(carried {rss['extrapolation']:.1f}x the regime's length beyond it)")
    else:
        print(f"no 7-day projection: {projection_note(rss)}")
    if rss["hours_to_limit"] is not None:
        print(f"reaches the limit in {rss['hours_to_limit']:.0f} h")
    assert lo <= rss["slope_per_hour"] <= hi, "the slope lies inside its own interval"

# %% [markdown]
# ## 3. Does the growth follow the load?
#
# The envelope is fitted against requests served and elapsed time together: growth per request
# points at per-request state (caches, session history), growth without traffic at timers,
# background work or allocator fragmentation.

# %%
load = verdict.get("load")
print(load["summary"] if load else "no load data in this run directory")

# %% [markdown]
# ## 4. Where does it grow? (tracemalloc)
#
# With `llmsoak.tracemalloc_agent` running inside a Python target, its snapshots name the lines
# whose allocations grew the most since the baseline.

# %%
trace = verdict.get("tracemalloc")
if trace and trace["top"]:
    for site in trace["top"][:5]:
        print(f"  {format_bytes(site['growth_bytes']):>10s}  {site['site']}")
    assert all(s["growth_bytes"] > 0 for s in trace["top"])
else:
    print("no tracemalloc snapshots in this run")

# %% [markdown]
# ## 5. Charts and summary
#
# The charts go to `RUN_DIR/analysis/charts/`; `summary.md` is the same table as the report.
# In Jupyter the memory chart is shown inline.

# %%
charts_dir = RUN_DIR / "analysis" / "charts"
files = draw_charts(analysis, charts_dir)
print("charts:", ", ".join(sorted(p.name for p in files.values())))
assert all(p.stat().st_size > 10_000 for p in files.values()), "every chart has content"
mem = analysis.targets[analysis.primary].series.get("rss_bytes")
if mem is not None:
    data = chart_data(mem)
    assert len(data.t_s) == len(data.values) == verdict["window"]["samples"] or len(analysis.targets) > 1
print(render_summary_md(verdict, files))

# %%
try:  # inline display when running under Jupyter
    from IPython.display import Image, display

    if "memory" in files and "ipykernel" in sys.modules:
        display(Image(filename=str(files["memory"])))
except ImportError:
    pass
