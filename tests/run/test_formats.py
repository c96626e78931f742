"""docs/formats.md lists exactly the columns, event kinds and run-directory paths of the code
(llmsoak/formats.py, llmsoak/rundir.py): the contract and its one owner cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.processes import REPO

from llmsoak import formats
from llmsoak.events import HEADER, append_event, read_events
from llmsoak.rundir import RunDir

DOC = (REPO / "docs" / "formats.md").read_text()


def _section(heading: str) -> str:
    """The text of the ``## heading...`` section of docs/formats.md."""
    match = re.search(rf"^## {re.escape(heading)}.*?$(.*?)(?=^## |\Z)", DOC, re.M | re.S)
    assert match, f"docs/formats.md has no section '## {heading}'"
    return match.group(1)


def _first_table_names(section: str) -> list[str]:
    """The backticked names in the first column of the section's first table, in order."""
    rows = [line for line in section.splitlines() if line.startswith("|")]
    assert len(rows) > 2, "no table"
    names = []
    for row in rows[2:]:  # after the header and the |---| line
        if not row.strip():
            break
        names += re.findall(r"`([^`]+)`", row.split("|")[1])
    return names


@pytest.mark.parametrize("heading, columns", [
    ("Samples CSV", formats.SAMPLES_COLUMNS),
    ("llm_timeseries.csv", formats.LLM_TIMESERIES_COLUMNS),
    ("Scraped metrics CSV", formats.METRICS_COLUMNS),
    ("Server metrics CSV", formats.SERVER_METRICS_COLUMNS),
    ("events.csv", formats.EVENT_KINDS),
    ("clock_offsets.csv", formats.CLOCK_OFFSETS_COLUMNS),
])
def test_docs_tables_list_exactly_the_codes_names_in_order(heading, columns):
    assert _first_table_names(_section(heading)) == list(columns)


def test_events_header_and_history_column_are_documented():
    assert f"`{','.join(formats.EVENTS_COLUMNS)}`" in _section("events.csv")
    for column in formats.HISTORY_EXTRA_COLUMNS:
        assert f"`{column}`" in _section("Sampler live endpoint")


def test_every_path_of_the_run_directory_is_documented():
    table = "\n".join(line for line in _section("Run directory").splitlines() if line.startswith("|"))
    run = RunDir(Path("/r"))
    paths = {name: getattr(run, name) for name, attr in vars(RunDir).items() if isinstance(attr, property)}
    paths["segment_dir"] = run.segment_dir(1)
    assert len(paths) >= 20
    for name, path in paths.items():
        rel = path.relative_to(run.root).as_posix().replace("seg-001", "seg-NNN")
        top, _, rest = rel.partition("/")
        assert f"`{rel}`" in table or (f"`{top}/" in table and rest in table), (name, rel)


def test_failure_classes_make_the_fail_columns():
    fail = [c.removeprefix("fail_") for c in formats.LLM_TIMESERIES_COLUMNS if c.startswith("fail_")]
    assert fail == list(formats.FAILURE_CLASSES)
    assert set(formats.LLM_LATENCY_COLUMNS_MS) <= set(formats.LLM_TIMESERIES_COLUMNS)
    assert all(c.endswith("_ms") for c in formats.LLM_LATENCY_COLUMNS_MS)


def test_events_are_written_with_the_header_and_only_known_kinds(tmp_path):
    path = tmp_path / "events.csv"
    for kind in formats.EVENT_KINDS:
        append_event(path, kind, f"a {kind}, with a comma\nand a newline", timestamp=1000.0)
    with pytest.raises(ValueError, match="unknown event kind 'restarted'"):
        append_event(path, "restarted", "typo")
    assert path.read_text().startswith(HEADER) and HEADER == "timestamp,kind,detail\n"
    events = read_events(path)
    assert [e["kind"] for e in events] == list(formats.EVENT_KINDS)
    assert events[0] == {"timestamp": 1000.0, "kind": "start", "detail": "a start, with a comma and a newline"}
