"""Starting a new run and resuming one: prepare the run directory, then hand over to the
:class:`~llmsoak.run.orchestrator.Orchestrator`. Everything written passes the run's
:class:`~llmsoak.redact.Redactor`."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from llmsoak.errors import CommandError
from llmsoak.events import append_event
from llmsoak.profile import Profile
from llmsoak.redact import Redactor
from llmsoak.run import settings as run_settings
from llmsoak.run.manifest import new_manifest, write_json_atomic
from llmsoak.run.orchestrator import Orchestrator
from llmsoak.run.processes import same_process
from llmsoak.run.status import load_run
from llmsoak.rundir import new_run_dir


def resolved_profile_yaml(profile: Profile, source_path: Path, redactor: Redactor) -> str:
    """``RUN/profile.yaml``: the resolved profile (every default filled in), secrets redacted,
    under a comment naming the file it was resolved from."""
    text = yaml.safe_dump(redactor.data(profile.to_dict()), sort_keys=False, allow_unicode=True)
    return redactor.text(f"# resolved from {source_path} by llmsoak run; secrets redacted\n{text}")


def start_run(profile_path: str, out: str | None, overrides: dict, *, quiet: bool = False,
              progress_interval_s: float = 30.0) -> int:
    """A new run of ``profile_path`` (with dotted ``overrides``) into ``out`` or ``runs/<id>``."""
    profile, settings = run_settings.load(profile_path, overrides)
    run = new_run_dir(out, settings.profile_name)
    redactor = Redactor.for_profile(profile)
    # The resolved, redacted profile is what every part of the run reads from now on (Locust,
    # the analysis, a resume), so the run directory is self-contained.
    run.profile.write_text(resolved_profile_yaml(profile, Path(profile_path), redactor), encoding="utf-8")
    _, settings = run_settings.load(run.profile)
    manifest = new_manifest(run.root.name, settings.profile_name, str(Path(profile_path).resolve()),
                            settings.duration_s, settings.checkpoint_interval_s, overrides)
    write_json_atomic(run.manifest, redactor.data(manifest))
    append_event(run.events, "start", f"run {run.root.name} of profile {settings.profile_name}: "
                                      f"{settings.duration_s:g} s of load")
    print(f"llmsoak run: run directory {run.root}", flush=True)
    return Orchestrator(run, settings, manifest, redactor, quiet=quiet,
                        progress_interval_s=progress_interval_s).run()


def resume_run(path: str, *, quiet: bool = False, progress_interval_s: float = 30.0) -> int:
    """Continue the run in ``path`` whose orchestrator died: appends a segment, keeps every file."""
    run, manifest = load_run(path)
    orch = manifest.get("orchestrator") or {}
    if same_process(orch.get("pid"), orch.get("create_time")):
        raise CommandError(f"{run.root}: its orchestrator (pid {orch.get('pid')}) is still running")
    if manifest.get("status") in ("finished", "stopped"):
        raise CommandError(f"{run.root}: the run already ended ({manifest.get('status')}); "
                           "nothing to resume (scripts/soak.sh report shows its verdict)")
    if not run.profile.is_file():
        raise CommandError(f"{run.profile}: missing; cannot resume without the run's profile")
    profile, settings = run_settings.load(run.profile)
    append_event(run.events, "start", f"resume of run {run.root.name} "
                                      f"(orchestrator last seen {time.ctime(manifest.get('heartbeat_at') or 0)})")
    print(f"llmsoak run: resuming {run.root}", flush=True)
    return Orchestrator(run, settings, manifest, Redactor.for_profile(profile), quiet=quiet,
                        progress_interval_s=progress_interval_s, resuming=True).run()
