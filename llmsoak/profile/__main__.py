"""``python -m llmsoak.profile check FILE...``: validate profile files, one line each.

Prints ``FILE: ok (NAME)`` per valid file; stops at the first invalid one with its one-line
error on stderr and exit code 2. ``--help`` prints the usage (exit 0); no file at all prints it
on stderr (exit 2).
"""

from __future__ import annotations

import sys

from llmsoak.errors import EXIT_BAD_INPUT, EXIT_OK
from llmsoak.profile.loading import load_profile
from llmsoak.profile.model import ProfileError

USAGE = """usage: python -m llmsoak.profile check FILE...

Validate llmsoak profile files (YAML): prints 'FILE: ok (NAME)' for each valid file, or stops at
the first invalid one with one line naming the file and field on stderr (exit 2).
See docs/profiles.md for the fields."""


def main(argv: list[str]) -> int:
    if any(arg in ("-h", "--help") for arg in argv):
        print(USAGE)
        return EXIT_OK
    files = argv[1:] if argv[:1] == ["check"] else argv
    if not files:
        print(USAGE, file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        for arg in files:
            print(f"{arg}: ok ({load_profile(arg).name})")
    except ProfileError as exc:
        print(exc, file=sys.stderr)
        return exc.exit_code
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess in tests/profile/test_profile.py
    sys.exit(main(sys.argv[1:]))
