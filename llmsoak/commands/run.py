"""``llmsoak run``: a soak from a profile: target, samplers, Locust, checkpoints, analysis, SLO gate."""

from __future__ import annotations

import argparse

from llmsoak.errors import CommandError
from llmsoak.units import parse_timespan

HELP = "run a soak from a profile: target, samplers, Locust, checkpoints, verdict, SLO gate"

EPILOG = """exit codes: 0 SLOs met · 1 an SLO breached or a leak · 2 bad input or profile ·
3 leak verdict inconclusive while slo.fail_on_leak · 4 target unavailable · 5 I/O error ·
6 the remote workers did not join within run.workers_timeout.
--status: 0 while the run has no result yet, else the exit code the run ended with.
See docs/soak.md."""


def prepare_parser(parser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--profile", metavar="FILE", help="profile YAML to run (profiles/*.yaml)")
    mode.add_argument("--resume", metavar="RUN_DIR",
                      help="continue a run whose orchestrator died (a reboot); appends a new segment")
    mode.add_argument("--status", metavar="RUN_DIR", help="print where a run stands and exit")
    parser.add_argument("--out", metavar="RUN_DIR",
                        help="run directory (default runs/<YYYYmmdd-HHMMSS>-<profile name>)")
    parser.add_argument("--duration", metavar="SPAN", help="override run.duration (e.g. 20s, 2h, 7d)")
    parser.add_argument("--checkpoint-interval", metavar="SPAN",
                        help="override run.checkpoint_interval (default 60m)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="override run.workers: local Locust worker processes (0 = one process)")
    parser.add_argument("--remote-workers", type=int, metavar="N",
                        help="override run.remote_workers: wait for N `llmsoak worker --master HOST:PORT` "
                             "processes on other machines and run the users there")
    parser.add_argument("--master-bind", metavar="HOST:PORT",
                        help="override run.master_bind (default 127.0.0.1:5557); another address needs "
                             "LLMSOAK_WORKER_TOKEN")
    parser.add_argument("--workers-timeout", metavar="SPAN",
                        help="override run.workers_timeout: how long to wait for the remote workers (default 5m)")
    parser.add_argument("--sampler-remote", metavar="URL",
                        help="override sampler.remote: pull the target's samples from `llmsoak sample "
                             "--listen` on its host (token from $LLMSOAK_SAMPLER_TOKEN)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any profile field by dotted path, e.g. --set load.users=20 (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="no progress line; log events only")
    parser.add_argument("--progress-interval", default="30s", metavar="SPAN",
                        help="seconds between progress log lines when stdout is not a terminal (default 30s)")
    parser.add_argument("--json", action="store_true", help="with --status: print JSON")
    parser.add_argument("--check", action="store_true",
                        help="with --profile: validate the profile and options, create nothing, exit 0 or 2")


def _overrides(args) -> dict:
    import yaml  # start-up: only --set needs it, and `llmsoak` imports every command module

    out: dict = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CommandError(f"--set {item!r}: expected KEY=VALUE, e.g. --set load.users=20")
        out[key.strip()] = yaml.safe_load(value) if value else value
    if args.duration:
        out["run.duration"] = args.duration
    if args.checkpoint_interval:
        out["run.checkpoint_interval"] = args.checkpoint_interval
    if args.workers is not None:
        out["run.workers"] = args.workers
    if args.remote_workers is not None:
        out["run.remote_workers"] = args.remote_workers
    if args.master_bind:
        out["run.master_bind"] = args.master_bind
    if args.workers_timeout:
        out["run.workers_timeout"] = args.workers_timeout
    if args.sampler_remote:
        out["sampler.remote"] = args.sampler_remote
    return out


def run(args) -> int:
    # The orchestrator's modules (psutil, the profile loader, ...) load only for this command:
    # `llmsoak` imports every command module to build its parser.
    if args.status:
        from llmsoak.run.status import print_status  # start-up: see above

        return print_status(args.status, as_json=args.json)
    try:
        progress_interval_s = parse_timespan(args.progress_interval)
    except ValueError as err:
        raise CommandError(f"--progress-interval: {err}") from None
    if args.check:
        if not args.profile:
            raise CommandError("--check needs --profile FILE")
        from llmsoak.run import settings as run_settings  # start-up: see above

        _, settings = run_settings.load(args.profile, _overrides(args))
        print(f"llmsoak run: {args.profile}: OK ({settings.duration_s:g} s of load)")
        return 0
    from llmsoak.run.launch import resume_run, start_run  # start-up: see above

    if args.resume:
        return resume_run(args.resume, quiet=args.quiet, progress_interval_s=progress_interval_s)
    return start_run(args.profile, args.out, _overrides(args), quiet=args.quiet,
                     progress_interval_s=progress_interval_s)
