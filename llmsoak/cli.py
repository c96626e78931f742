"""``llmsoak`` command line: one module per subcommand under ``llmsoak.commands``.

Each command module defines ``HELP`` (one line), ``prepare_parser(parser)`` and
``run(args) -> int``. Command modules import heavy libraries (pandas, locust) inside ``run`` so
``llmsoak --help`` and ``llmsoak stub`` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from llmsoak import __version__
from llmsoak.errors import EXIT_BAD_INPUT, CommandError

COMMANDS = ("stub", "sample", "analyze", "run", "capacity")


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line (no usage dump) on a user mistake."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="llmsoak",
        description="Load and soak testing for chat and LLM endpoints, built on Locust.",
    )
    parser.add_argument("--version", action="version", version=f"llmsoak {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        module = importlib.import_module(f"llmsoak.commands.{name}")
        cmd_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.prepare_parser(cmd_parser)
        cmd_parser.set_defaults(_run=module.run, _parser=cmd_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # name the subcommand in the error ("llmsoak run: error: ..."), not just "llmsoak"
        (getattr(args, "_parser", None) or parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return int(args._run(args) or 0)
    except CommandError as err:
        print(f"llmsoak {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130
