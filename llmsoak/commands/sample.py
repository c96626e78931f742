"""``llmsoak sample``: the sidecar sampler (docs/sampler.md).

Exit codes: 0 stopped cleanly (SIGINT/SIGTERM, --duration over, a --pid target exited);
2 bad input (selector, interval, listen address — off loopback without $LLMSOAK_SAMPLER_TOKEN —,
an existing file with other columns);
4 target unavailable (unknown pid, nothing matched with --fail-if-missing or within
--wait-for-target, permission denied on the target); 5 I/O error (output unwritable, disk full —
rows already written stay intact).
"""

from __future__ import annotations

import argparse
import signal

from llmsoak.errors import CommandError
from llmsoak.units import parse_timespan

HELP = "Sample a process tree's memory, CPU, fds and I/O into an append-only CSV (sidecar)."


def prepare_parser(parser: argparse.ArgumentParser) -> None:
    target = parser.add_argument_group("target (exactly one)")
    target.add_argument("--pid", type=int, help="watch this process and its descendants")
    target.add_argument("--match", metavar="REGEX",
                        help="watch processes whose command line matches REGEX (re-attaches after restarts)")
    target.add_argument("--port", type=int, help="watch the process listening on this TCP port")
    target.add_argument("--cgroup", metavar="PATH",
                        help="watch every process in this cgroup (a container), e.g. /sys/fs/cgroup/system.slice/x")
    parser.add_argument("--out", required=True, metavar="FILE.csv",
                        help="samples CSV to create or append to (crash-safe, append-only)")
    parser.add_argument("--interval", default="1", metavar="SECONDS",
                        help="seconds between samples, or a span like 500ms (default 1)")
    parser.add_argument("--name", help="label in events and the live endpoint (default: the out file's stem)")
    parser.add_argument("--events", metavar="PATH",
                        help="events.csv to append to (default: RUN/events.csv for RUN/samples/x.csv, "
                             "else beside the out file)")
    missing = parser.add_mutually_exclusive_group()
    missing.add_argument("--wait-for-target", metavar="SECONDS",
                         help="give up (exit 4) if no target appears within this span (default: wait forever)")
    missing.add_argument("--fail-if-missing", action="store_true",
                         help="exit 4 at once if no target is there at start")
    parser.add_argument("--listen", metavar="HOST:PORT",
                        help="serve the latest samples as JSON and Prometheus text, and the file's rows to a "
                             "remote `llmsoak run` (e.g. 127.0.0.1:9464; port 0 picks one). Beyond loopback "
                             "it requires a token: set LLMSOAK_SAMPLER_TOKEN")
    parser.add_argument("--metrics-url", metavar="URL",
                        help="also scrape the target's Prometheus /metrics every sample")
    parser.add_argument("--metrics-out", metavar="FILE.csv",
                        help="CSV for the scraped series (timestamp,metric,labels,value)")
    parser.add_argument("--metrics-format", choices=("long", "server"), default="long",
                        help="long: every series (default); server: one row per sample with the "
                             "running/waiting requests, KV-cache use and preemptions of vLLM or llama.cpp")
    parser.add_argument("--duration", metavar="SPAN", help="stop after this long (e.g. 30s, 2h, 7d)")
    parser.add_argument("--uss", action="store_true",
                        help="also read USS (unique memory) via smaps: exact but costly on large processes")
    parser.add_argument("--no-gpu", action="store_true", help="do not read GPU columns through NVML")
    parser.add_argument("--exclude-self", action="store_true",
                        help="never count the sampler's own process (when it runs inside the watched "
                             "cgroup or tree)")
    parser.add_argument("--fsync-interval", default="10", metavar="SECONDS",
                        help="fsync the CSV at most this often (default 10; rows are written at once)")


def _span(value: str | None, flag: str, *, positive: bool = False) -> float | None:
    if value is None:
        return None
    try:
        seconds = parse_timespan(value)
    except ValueError as err:
        raise CommandError(f"{flag}: {err}") from None
    if positive and seconds <= 0:
        raise CommandError(f"{flag} must be greater than 0, got {value!r}")
    return seconds


def run(args: argparse.Namespace) -> int:
    # start-up: psutil and the sampler load only for this command (`llmsoak` imports every command module)
    from llmsoak.sampler import Sampler, build_selector

    interval_s = _span(args.interval, "--interval", positive=True)
    duration_s = _span(args.duration, "--duration", positive=True)
    fsync_s = _span(args.fsync_interval, "--fsync-interval")
    wait_s = 0.0 if args.fail_if_missing else _span(args.wait_for_target, "--wait-for-target")
    selector = build_selector(pid=args.pid, match=args.match, port=args.port, cgroup=args.cgroup)
    sampler = Sampler(selector, args.out, interval_s=interval_s, name=args.name,
                      events_path=args.events, wait_for_target_s=wait_s, uss=args.uss,
                      gpu=not args.no_gpu, listen=args.listen, metrics_url=args.metrics_url,
                      metrics_out=args.metrics_out, metrics_format=args.metrics_format,
                      duration_s=duration_s,
                      exclude_self=args.exclude_self, fsync_interval_s=fsync_s)

    def _on_signal(signum, frame) -> None:
        sampler.request_stop()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return sampler.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
