"""The Soak page's JavaScript formatting (llmsoak/webui/static/format.js) against llmsoak/formatting.py.

GIVEN one table of values WHEN node runs the page's own functions on it and Python runs the
package's THEN every output is the same (a missing value reads "–" in the page and "n/a" in the
reports: that difference is by design and checked too). Skipped, saying why, without node."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest

from llmsoak.formatting import format_bytes_sig, format_hours, format_num, format_pct_per_hour, format_sig

FORMAT_JS = Path(__file__).resolve().parents[2] / "llmsoak" / "webui" / "static" / "format.js"

# Ties (1225, 12.25, 1.125e10, 998.5, 2500.5, -3.25) are where JavaScript and Python's own rounding differ.
NUMBERS = [0.0, 1.0, -1.0, 20.0, 5464.123, 0.012345, 999.7, 999.4, -3.594, 123456.7, 1e-5, 2.5e9,
           0.00099951, 99.95, 100.0, -0.0004, 7.5, 1234567.0, 0.1 + 0.2, 12.345, 1225.0, -1225.0, 12.25,
           0.125, 1.125e10, -3.5e-7, 2500.5]
SIZES = [0, 1, 999, 1000, 1023.9 * 1024, 400 * 2**20, 3.72 * 2**30, -5e-8, 2.3e9, -12 * 2**20,
         5 * 2**50, 999.5, 998.5, 1536, 2**40 * 1.5, 1225 * 1024]
PERCENTS = [0.0, 4.3712, -0.012345, 5464.123, 1e-7, -250.0, 0.5]
HOURS = [0.42, 7.5, 9.99, 10.0, 71.9, 72.0, 75.6, 168.0, 1000.0, 0.0]
LATENCIES_MS = [0.0, 0.04, 12.34, 99.94, 99.96, 100.0, 140.4, 2500.5, -3.25]


def _node() -> str:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node is not installed: the JavaScript copy of the formatting is then checked only "
                    "by the browser test (tests/webui/test_webui_browser.py)")
    return node


def _run_js(calls: dict[str, tuple[str, list]]) -> dict[str, list[str]]:
    """Run each ``(function, values)`` of ``calls`` through format.js in node; outputs by key."""
    script = (f"const f = require({json.dumps(str(FORMAT_JS))});\n"
              f"const calls = {json.dumps({k: [fn, vals] for k, (fn, vals) in calls.items()})};\n"
              "const out = {};\n"
              "for (const [k, [fn, vals]] of Object.entries(calls)) out[k] = vals.map(v => f[fn](v));\n"
              "out.missing = [null, undefined, NaN, Infinity].map(v => "
              "['fmtSig', 'fmtBytes', 'fmtNum', 'fmtPct', 'fmtHours'].map(fn => f[fn](v)));\n"
              "console.log(JSON.stringify(out));")
    done = subprocess.run([_node(), "-e", script], capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)


def test_the_page_formats_every_value_like_the_package():
    out = _run_js({"sig": ("fmtSig", NUMBERS), "bytes": ("fmtBytes", SIZES), "pct": ("fmtPct", PERCENTS),
                   "hours": ("fmtHours", HOURS), "num": ("fmtNum", LATENCIES_MS)})
    expected = {"sig": [format_sig(v) for v in NUMBERS], "bytes": [format_bytes_sig(v) for v in SIZES],
                "pct": [format_pct_per_hour(v) for v in PERCENTS], "hours": [format_hours(v) for v in HOURS],
                "num": [format_num(v) for v in LATENCIES_MS]}
    for key, values in expected.items():
        mismatches = [(i, js, py) for i, (js, py) in enumerate(zip(out[key], values, strict=True)) if js != py]
        assert mismatches == [], f"{key}: (index, JavaScript, Python) {mismatches}"
    # AND a missing value is "–" on the page for every function (the reports say "n/a")
    assert out["missing"] == [["–"] * 5] * 4
    assert {format_sig(None), format_bytes_sig(math.nan), format_pct_per_hour(None), format_hours(math.inf)} == {"n/a"}
    assert format_num(None) == "–"


def test_the_page_loads_format_js_before_the_script_that_uses_it():
    html = (FORMAT_JS.parent / "soak.html").read_text()
    assert html.index('src="static/format.js"') < html.index('src="static/soak.js"')
    from llmsoak.webui.routes import STATIC_FILES

    assert STATIC_FILES["format.js"] == "application/javascript"  # served, not a 404
