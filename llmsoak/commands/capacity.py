"""``llmsoak capacity``: how much load a server holds within the profile's SLOs (open-loop sweep)."""

from __future__ import annotations

import argparse

from llmsoak.errors import CommandError

HELP = "sweep the load to find the highest rate and number of users that meet the profile's SLOs"

EPILOG = """exit codes: 0 the profile's capacity.target_rate/target_users is sustainable (or none is set)
· 1 a target is not sustainable · 2 bad input or profile · 3 cannot tell (a target above every load
measured, all of which met the SLOs) · 4 target unavailable · 5 I/O error. See docs/capacity.md."""


def _rates(text: str) -> tuple[float, ...]:
    out = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected requests per second like 1,2.5,4, got {part!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"rates must be > 0 requests per second (got {part.strip()})")
        out.append(value)
    if len(out) < 2:
        raise argparse.ArgumentTypeError(f"a sweep needs at least 2 rates (got {len(out)})")
    return tuple(out)


def _steps(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"a sweep needs at least 2 steps (got {value})")
    return value


def _processes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (got {value})")
    return value


def prepare_parser(parser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--profile", metavar="FILE", required=True,
                        help="profile YAML: target, patterns, slo, and an optional capacity section")
    parser.add_argument("--out", metavar="RUN_DIR",
                        help="run directory (default runs/<YYYYmmdd-HHMMSS>-<profile name>-capacity)")
    parser.add_argument("--processes", type=_processes, default=0, metavar="N",
                        help="Locust worker processes (0 = one process); the open-loop rate is split exactly")
    parser.add_argument("--steps", type=_steps, metavar="N", help="override capacity.steps (>= 2)")
    parser.add_argument("--rates", type=_rates, metavar="R1,R2,...",
                        help="override capacity.rates: open-loop req/s to measure instead of --steps")
    parser.add_argument("--warmup", metavar="SPAN", help="override capacity.warmup_s (e.g. 5s)")
    parser.add_argument("--measure", metavar="SPAN", help="override capacity.measure_s (e.g. 20s)")
    parser.add_argument("--no-users", action="store_true", help="skip the search in users of the pattern mix")
    parser.add_argument("--listen", metavar="HOST:PORT",
                        help="serve the live Capacity view there (e.g. 127.0.0.1:0); off loopback it needs "
                             "$LLMSOAK_CAPACITY_TOKEN")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any profile field by dotted path, e.g. --set slo.ttft_p95_ms=800")


def _overrides(args) -> dict:
    import yaml  # start-up: only this command needs it

    out: dict = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CommandError(f"--set {item!r}: expected KEY=VALUE, e.g. --set capacity.steps=4")
        out[key.strip()] = yaml.safe_load(value) if value else value
    if args.steps is not None:
        out["capacity.steps"] = args.steps
    if args.rates is not None:
        out["capacity.rates"] = list(args.rates)
    if args.warmup:
        out["capacity.warmup_s"] = args.warmup
    if args.measure:
        out["capacity.measure_s"] = args.measure
    if args.no_users:
        out["capacity.users"] = False
    return out


def run(args) -> int:
    from llmsoak.capacity.command import run_capacity  # start-up: `llmsoak` imports every command module

    return run_capacity(args.profile, args.out, _overrides(args), processes=args.processes, listen=args.listen)
