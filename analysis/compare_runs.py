# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # Before and after a fix
#
# Compare two run directories, for example a soak of the current release and a soak of a
# candidate fix under the same profile. Each run is analysed with the same machinery as
# `llmsoak analyze`; then every metric's verdict and slope are set side by side.
#
# Run it as a script: `python analysis/compare_runs.py BEFORE_DIR AFTER_DIR` (or set
# `LLMSOAK_BEFORE` and `LLMSOAK_AFTER`), or open it as a notebook with
# `jupytext --to notebook analysis/compare_runs.py`.

# %%
import os
import sys
from pathlib import Path

from llmsoak.analysis.compare import compare_verdicts, comparison_chart, render_comparison_md
from llmsoak.analysis.run_dir import analyze_run

args = [a for a in sys.argv[1:] if not a.startswith("-")]  # Jupyter passes its own -f flag
BEFORE = Path(args[0] if len(args) > 0 else os.environ.get("LLMSOAK_BEFORE", "runs/before"))
AFTER = Path(args[1] if len(args) > 1 else os.environ.get("LLMSOAK_AFTER", "runs/after"))
OUT = Path(args[2] if len(args) > 2 else os.environ.get("LLMSOAK_COMPARE_OUT", AFTER / "analysis"))
print(f"before: {BEFORE}\nafter:  {AFTER}")

# %% [markdown]
# ## 1. Analyse both runs
#
# Each run gets its own verdict per metric. The runs may differ in length; slopes are per hour,
# so they compare directly, and a longer run gives a narrower interval.

# %%
before = analyze_run(BEFORE)
after = analyze_run(AFTER)
print(f"before: {before.verdict['verdict']}, after: {after.verdict['verdict']}")

# %% [markdown]
# ## 2. Side by side
#
# A metric counts as improved when its verdict got better (leak → inconclusive → ok), or when the
# whole 95% interval of its slope after the fix lies below the slope before it.

# %%
cmp = compare_verdicts(before.verdict, after.verdict)
print(render_comparison_md(cmp))
assert set(cmp["metrics"]) <= set(before.verdict["metrics"]) | set(before.verdict.get("latency") or {})
assert cmp["verdict_before"] == before.verdict["verdict"] and cmp["verdict_after"] == after.verdict["verdict"]

# %% [markdown]
# ## 3. Memory of both runs on one chart
#
# Hours since each run's start on the x axis; the lines are the lower envelopes (memory after
# garbage collection), the bands the raw samples.

# %%
OUT.mkdir(parents=True, exist_ok=True)
chart = comparison_chart(OUT / "compare_rss.png", before, after)
(OUT / "compare.md").write_text(render_comparison_md(cmp))
print(f"wrote {chart} and {OUT / 'compare.md'}")
assert chart.stat().st_size > 10_000
