"""The analysis reads a run's profile.yaml through the typed loader (llmsoak/analysis/run_dir.py),
and still works when that file is from another llmsoak version or points at files not here."""

from __future__ import annotations

from support.analysis_runs import make_run_dir

from llmsoak.analysis.run_dir import analyze_run

GIB = 2**30


def test_memory_limit_comes_from_the_typed_profile(tmp_path):
    run = make_run_dir(tmp_path / "run", hours=2, limit="2GiB")
    analysis = analyze_run(run)
    assert analysis.verdict["limit_bytes"] == 2 * GIB
    assert not any("profile.yaml" in n for n in analysis.notes)


def test_a_profile_whose_prompt_file_stayed_on_another_machine_still_gives_its_limit(tmp_path):
    # GIVEN a run directory copied from the machine that ran it: its prompts file is not here
    run = make_run_dir(tmp_path / "run", hours=2)
    (run / "profile.yaml").write_text(
        "name: copied\ntarget: {url: 'http://127.0.0.1:8000', model: m}\n"
        "prompts: {source: jsonl, path: /nowhere/prompts.jsonl}\nslo: {memory_limit_bytes: 3GiB}\n")
    # WHEN it is analysed THEN the profile is used (the analysis reads no prompts)
    analysis = analyze_run(run)
    assert analysis.verdict["limit_bytes"] == 3 * GIB


def test_a_profile_from_another_version_is_set_aside_with_a_note(tmp_path):
    # GIVEN a run directory whose profile.yaml does not validate today (an unknown field)
    run = make_run_dir(tmp_path / "run", hours=2)
    (run / "profile.yaml").write_text("name: old\ntarget: {url: 'http://127.0.0.1:8000', model: m}\n"
                                      "slo: {memory_limit_bytes: 2GiB, max_rss: 3GiB}\n")
    # WHEN it is analysed
    analysis = analyze_run(run)
    # THEN the verdict is reached without the profile, and a note says why, naming the field
    assert analysis.verdict["verdict"] in ("ok", "leak", "inconclusive")
    assert analysis.verdict["limit_bytes"] is None
    note = next(n for n in analysis.verdict["notes"] if n.startswith("profile.yaml not used"))
    assert "slo.max_rss: unknown field" in note and "no memory limit from it" in note
    assert "\n" not in note


def test_an_explicit_limit_needs_no_profile(tmp_path):
    run = make_run_dir(tmp_path / "run", hours=2)
    (run / "profile.yaml").write_text(": not yaml [")
    analysis = analyze_run(run, limit=float(GIB))
    assert analysis.verdict["limit_bytes"] == GIB
    assert not any("profile.yaml" in n for n in analysis.notes)  # not even read
