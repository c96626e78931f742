"""``llmsoak capacity``'s body: check the input, make the run directory, sweep, write, exit code."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from llmsoak.capacity import report, results
from llmsoak.capacity.sweep import Driver, Sweep, check_knee_inputs, exit_code, rate_knee, target_answers
from llmsoak.errors import EXIT_IO_ERROR, EXIT_TARGET_UNAVAILABLE, CommandError
from llmsoak.profile import CapacityConfig, load_profile
from llmsoak.redact import Redactor
from llmsoak.run.launch import resolved_profile_yaml
from llmsoak.rundir import run_id
from llmsoak.webui.capacity_page import parse_listen, start_view


def _log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def _run_dir(out: str | None, name: str) -> Path:
    if out is not None:
        root = Path(out)
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise CommandError(f"--out {root}: exists and is not empty")
    else:
        root = Path("runs") / run_id(f"{name}-capacity")
        n = 2
        while root.exists():
            root = Path("runs") / f"{run_id(f'{name}-capacity')}-{n}"
            n += 1
    try:
        (root / "logs").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CommandError(f"cannot create run directory {root}: {err.strerror}", EXIT_IO_ERROR) from err
    return root.resolve()


def _live(driver: Driver, profile, root: Path, processes: int, started: float, charts: bool):
    """After every step: capacity.json with the knee so far (``status: running``), and the charts
    when the Capacity view shows them."""

    def on_step(sweep: Sweep) -> None:
        best, fail = rate_knee(sweep.steps)
        partial = dataclasses.replace(sweep, steps=list(sweep.steps), rate_knee=best, rate_next_fail=fail,
                                      rate_bound="none" if best is None else ("exact" if fail else "at least"))
        doc = results.to_json(partial, profile, exit_code=None, verdict=[], processes=processes,
                              started_at=started, status="running")
        doc["summary"] = report.summary(doc)
        try:
            if charts:  # first: a page that sees the new capacity.json finds its charts
                report.draw_charts(doc, root / "charts")
            results.write(root, doc, partial.steps)
        except OSError as err:
            driver.log(f"cannot update the live results: {err}")

    return on_step


def run_capacity(profile_path: str, out: str | None, overrides: dict, *, processes: int = 0,
                 listen: str | None = None) -> int:
    """The whole command; returns the exit code (see llmsoak.capacity.sweep.exit_code)."""
    try:
        profile = load_profile(profile_path, overrides)
    except OSError as err:
        raise CommandError(f"{profile_path}: cannot read profile: {err.strerror or err}") from None
    if profile.capacity is None:
        profile = dataclasses.replace(profile, capacity=CapacityConfig())
    check_knee_inputs(profile)
    if listen is not None:
        try:
            parse_listen(listen)
        except ValueError as err:
            raise CommandError(str(err)) from None
    profile.target.resolve_headers()  # an unset API-key variable: one line, exit 2, before anything starts
    if not target_answers(profile.target.url):
        raise CommandError(f"target {profile.target.url} does not answer (llmsoak capacity does not start "
                           "targets: start it first)", EXIT_TARGET_UNAVAILABLE)
    root = _run_dir(out, profile.name)
    redactor = Redactor.for_profile(profile)
    resolved = root / "profile.yaml"
    resolved.write_text(resolved_profile_yaml(profile, Path(profile_path), redactor), encoding="utf-8")
    started = time.time()
    _log(f"capacity run directory: {root}")
    driver = Driver(profile, resolved, root, processes=processes, log=lambda m: _log(redactor.text(m)))
    view = None
    if listen is not None:
        try:
            view = start_view(root, listen)
        except ValueError as err:
            raise CommandError(str(err)) from None
        _log(f"Capacity view: listening on {view.url}")
    driver.on_step = _live(driver, profile, root, processes, started, charts=view is not None)
    try:
        sweep = driver.run()
    finally:
        if view is not None:
            view.stop()
    code, verdict = exit_code(sweep, profile.capacity)
    doc = results.to_json(sweep, profile, exit_code=code, verdict=verdict, processes=processes,
                          started_at=started)
    doc["summary"] = report.summary(doc)
    try:
        json_path, _csv = results.write(root, doc, sweep.steps)
        html = report.write_report(doc, root)
    except OSError as err:
        raise CommandError(f"cannot write results into {root}: {err.strerror}", EXIT_IO_ERROR) from err
    _log(report.summary(doc))
    for line in verdict:
        _log(line)
    _log(f"results: {json_path}; report: {html}")
    _log(f"exit code {code}")
    sys.stdout.flush()
    return code
