"""The verdict's words live in one module (llmsoak/analysis/wording.py), apart from its statistics."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd

from llmsoak.analysis import reason as R
from llmsoak.analysis import wording
from llmsoak.analysis.verdict import analyze_metric


def test_every_reason_code_has_words():
    # GIVEN every reason code the statistics can return
    # THEN the wording module renders each of them (a code without words would fail at run time)
    assert set(R.CODES) == set(wording._RENDER)


def test_wording_loads_without_numpy():
    # GIVEN a fresh interpreter (the orchestrator of `llmsoak run` never loads numpy)
    code = ("import sys; import llmsoak.analysis.wording, llmsoak.run.checkpoint; "
            "print('numpy' in sys.modules, 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # THEN importing the words (and the run's checkpoint line) imports neither numpy nor pandas
    assert out.split() == ["False", "False"]


def test_verdict_json_carries_the_reason_code_beside_its_sentence():
    # GIVEN a steady 20 MiB/h leak over 6 hours
    t = np.arange(0.0, 6 * 3600, 10.0)
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"timestamp": 1.7e9 + t, "rss_bytes": 5e8 + 20 * 2**20 * t / 3600 + rng.normal(0, 1e5, len(t))})
    # WHEN analysed
    v = analyze_metric(df)
    j = v.to_json()
    # THEN the statistics return the reason as data, and the JSON has its code and its sentence
    assert v.why.code == R.GROWING and j["reason_code"] == "growing"
    assert j["reason"] == wording.reason_sentence(v.why) and j["reason"].startswith("rss_bytes grows 20")
