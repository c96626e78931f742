"""``llmsoak analyze``: leak verdict, projections, charts and report for a run or one samples CSV.

Exit codes: 0 no leak, 1 leak, 3 inconclusive (too little or too noisy data), 2 bad input.
The exit code follows the overall verdict of the target's memory, thread and file-descriptor
series (``run_dir.DECIDING_METRICS``; with --samples, the one --metric); latency and error-rate
drift decide too with --include-latency.
"""

from __future__ import annotations

from llmsoak.analysis.wording import cli_lines  # no numpy: wording is plain text
from llmsoak.errors import EXIT_BAD_INPUT, EXIT_IO_ERROR, CommandError
from llmsoak.rundir import RunDir
from llmsoak.units import parse_size

HELP = "Leak verdict, 7-day projection, charts and report for a run directory or a samples CSV."


def prepare_parser(parser) -> None:
    parser.add_argument("run_dir", nargs="?", metavar="RUN_DIR",
                        help="run directory written by `llmsoak run` (outputs go to RUN_DIR/analysis/)")
    parser.add_argument("--samples", metavar="FILE.csv",
                        help="analyse one samples CSV instead of a run directory")
    parser.add_argument("--metric", default="rss_bytes",
                        help="column of --samples to analyse (default: rss_bytes)")
    parser.add_argument("--limit", metavar="BYTES",
                        help="memory limit for the time-to-limit estimate, e.g. 4GiB or 4294967296 "
                             "(run directory: defaults to the profile's slo.memory_limit_bytes)")
    parser.add_argument("--min-growth-pct-per-hour", type=float, metavar="PCT",
                        help="growth below this many percent of the level per hour is not called a leak, "
                             "and 'ok' must rule out growth at it (default: 0.01 for memory; "
                             "docs/leak-statistics.md lists every metric's)")
    parser.add_argument("--json", metavar="PATH",
                        help="write the verdict JSON here (default for a run: RUN_DIR/analysis/verdict.json)")
    parser.add_argument("--charts", metavar="DIR",
                        help="write the PNG charts here (default for a run: RUN_DIR/analysis/charts/)")
    parser.add_argument("--out", metavar="DIR",
                        help="write verdict.json, charts/, report.html and summary.md into DIR, for a run directory "
                             "or --samples (default for a run: RUN_DIR/analysis/; for --samples: no "
                             "files unless --out, --json or --charts)")
    parser.add_argument("--no-charts", action="store_true", help="skip the charts (faster)")
    parser.add_argument("--include-latency", action="store_true",
                        help="let TTFT/ITL/e2e p95 and error-rate drift decide the verdict too")
    parser.add_argument("--quiet", action="store_true", help="print only the verdict line")


def run(args) -> int:
    from pathlib import Path

    if bool(args.run_dir) == bool(args.samples):
        raise CommandError("give either RUN_DIR or --samples FILE.csv (see --help)", EXIT_BAD_INPUT)
    limit = None
    if args.limit is not None:
        try:
            limit = float(parse_size(args.limit))
        except ValueError as err:
            raise CommandError(f"--limit: {err}") from None
    if args.min_growth_pct_per_hour is not None and args.min_growth_pct_per_hour < 0:
        raise CommandError("--min-growth-pct-per-hour must not be negative")

    from llmsoak.analysis.report import write_outputs  # start-up: numpy, matplotlib, pandas load for
    from llmsoak.analysis.run_dir import analyze_run, analyze_samples  # this command only (see above)

    if args.samples:
        analysis = analyze_samples(args.samples, args.metric, limit=limit,
                                   min_growth_pct_per_hour=args.min_growth_pct_per_hour)
        out_dir = Path(args.out) if args.out else None
        charts_dir = Path(args.charts) if args.charts and not args.no_charts else None
    else:
        analysis = analyze_run(args.run_dir, limit=limit, min_growth_pct_per_hour=args.min_growth_pct_per_hour,
                               include_latency=args.include_latency)
        out_dir = Path(args.out) if args.out else RunDir(Path(args.run_dir)).analysis
        charts_dir = None if args.no_charts else (Path(args.charts) if args.charts else out_dir / "charts")
    try:
        written = write_outputs(analysis, out_dir, json_path=Path(args.json) if args.json else None,
                                charts_dir=charts_dir, with_report=out_dir is not None,
                                with_charts=not args.no_charts)
    except OSError as err:
        raise CommandError(f"cannot write the analysis: {err.filename or ''}: {err.strerror or err}",
                           EXIT_IO_ERROR) from None
    lines = cli_lines(analysis.verdict)
    if args.quiet:
        lines = lines[:1]
    elif "report" in written:
        lines.append(f"  report: {written['report']}")
    try:
        print("\n".join(lines), flush=True)
    except BrokenPipeError:  # `llmsoak analyze ... | head`: the verdict still decides the exit code
        import os
        import sys

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return analysis.exit_code
