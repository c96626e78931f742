"""``llmsoak worker --master HOST:PORT``: join a remote ``llmsoak run`` master, with no files to copy.

The worker asks the master for its profile and prompt file over the master's Locust port
(llmsoak.locust.worker_join), writes them to a private temporary folder, and runs a Locust
worker on them. When that Locust worker ends (the master's segment ended, the link dropped), it
joins again, so a master restarted by ``llmsoak run`` gets its workers back; ``--once`` ends
after the first. A refusal (wrong ``LLMSOAK_WORKER_TOKEN``, another llmsoak or Locust version)
is one line and exit 2. API keys come from this machine's environment, as the profile names them.
"""

from __future__ import annotations

import argparse
import re

from llmsoak.errors import CommandError
from llmsoak.units import parse_timespan

HELP = "join a remote `llmsoak run` master as a Locust worker (the profile comes from the master)"

EPILOG = """exit codes: 0 stopped (SIGINT/SIGTERM, or --once and its Locust worker ended cleanly) ·
2 bad input: refused by the master (wrong or missing LLMSOAK_WORKER_TOKEN, another llmsoak or
Locust version) or a profile this machine cannot run (an unset API-key variable) ·
4 no master answered within --join-timeout.
The token comes only from the environment variable LLMSOAK_WORKER_TOKEN. See docs/soak.md."""

_HOST_PORT_RE = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$")
DEFAULT_MASTER_PORT = 5557


def prepare_parser(parser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--master", required=True, metavar="HOST[:PORT]",
                        help=f"the master's address (run.master_bind of its profile; port {DEFAULT_MASTER_PORT} by default)")
    parser.add_argument("--processes", type=int, default=1, metavar="N",
                        help="Locust worker processes on this machine, one core each (-1 = one per core; default 1)")
    parser.add_argument("--once", action="store_true",
                        help="end when the Locust worker ends instead of joining again")
    parser.add_argument("--join-timeout", default="0", metavar="SPAN",
                        help="give up when no master answers within SPAN (default 0: keep waiting)")
    parser.add_argument("--quiet", action="store_true", help="only errors and joins")


def parse_master(text: str) -> tuple[str, int]:
    """``HOST[:PORT]`` → (host, port); CommandError (exit 2) naming the option otherwise."""
    m = _HOST_PORT_RE.match(text.strip())
    port = int(m.group(2)) if m and m.group(2) else DEFAULT_MASTER_PORT
    if not m or not 0 < port < 65536:
        raise CommandError(f"--master {text!r}: expected HOST[:PORT], e.g. 10.0.0.5:5557")
    return m.group(1).strip("[]"), port


def run(args) -> int:
    host, port = parse_master(args.master)
    if args.processes == 0 or args.processes < -1:
        raise CommandError(f"--processes {args.processes}: expected a number of processes ≥ 1, or -1 (one per core)")
    try:
        join_timeout_s = parse_timespan(args.join_timeout) if args.join_timeout not in ("0", "") else 0.0
    except ValueError as err:
        raise CommandError(f"--join-timeout: {err}") from None
    # Locust and gevent load only for this command: `llmsoak` imports every command module.
    from llmsoak.run.worker_process import WorkerLoop  # start-up: see above

    return WorkerLoop(host, port, processes=args.processes, once=args.once, join_timeout_s=join_timeout_s,
                      quiet=args.quiet).run()

