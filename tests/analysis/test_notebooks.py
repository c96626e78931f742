"""Every notebook in analysis/ runs as a plain script on a small run directory and is a valid
jupytext percent-format notebook (prose cells and code cells)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.analysis_runs import make_run_dir

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "analysis").glob("*.py"))


def run_script(*args, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=180,
                          cwd=REPO, env={**os.environ, "MPLBACKEND": "Agg", **(env or {})})


def test_there_are_notebooks():
    names = {p.name for p in NOTEBOOKS}
    assert {"leak_report.py", "compare_runs.py"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_jupytext_percent_format(path):
    text = path.read_text()
    assert text.startswith("# ---\n# jupyter:\n#   jupytext:\n#     formats: py:percent\n# ---")
    assert text.count("# %% [markdown]") >= 3 and text.count("\n# %%\n") >= 3
    jupytext = pytest.importorskip("jupytext", reason="jupytext (requirements-dev) converts the notebooks")
    nb = jupytext.read(path)
    kinds = [c.cell_type for c in nb.cells]
    assert "markdown" in kinds and kinds.count("code") >= 3


def test_leak_report_runs_on_a_run_dir(tmp_path):
    run = make_run_dir(tmp_path / "run", hours=3.0, leak_mib_per_hour=25, with_tracemalloc=True)
    proc = run_script(REPO / "analysis" / "leak_report.py", run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "overall verdict: leak" in proc.stdout
    assert "app/sessions.py:42" in proc.stdout and "growth follows load" in proc.stdout
    assert (run / "analysis" / "charts" / "memory.png").stat().st_size > 10_000
    # The run dir may also come from the environment.
    proc = run_script(REPO / "analysis" / "leak_report.py", env={"LLMSOAK_RUN_DIR": str(run)})
    assert proc.returncode == 0 and "overall verdict: leak" in proc.stdout


def test_compare_runs_before_and_after_a_fix(tmp_path):
    before = make_run_dir(tmp_path / "before", hours=3.0, leak_mib_per_hour=25, with_locust=False)
    after = make_run_dir(tmp_path / "after", hours=6.0, leak_mib_per_hour=0, seed=3, with_locust=False)
    proc = run_script(REPO / "analysis" / "compare_runs.py", before, after, tmp_path / "cmp")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "before: leak, after: ok" in proc.stdout
    assert "| rss_bytes | leak | ok |" in proc.stdout
    assert (tmp_path / "cmp" / "compare_rss.png").stat().st_size > 10_000
    assert "improved: rss_bytes" in (tmp_path / "cmp" / "compare.md").read_text()
