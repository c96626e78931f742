"""``python -m llmsoak.profile check FILE...``: validate profile files, one line each.

Prints ``FILE: ok (NAME)`` per valid file; stops at the first invalid one with its one-line
error on stderr and exit code 2.
"""

from __future__ import annotations

import sys

from llmsoak.profile.loading import load_profile
from llmsoak.profile.model import ProfileError


def main(argv: list[str]) -> int:
    try:
        for arg in argv:
            if arg != "check":
                print(f"{arg}: ok ({load_profile(arg).name})")
    except ProfileError as exc:
        print(exc, file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess in tests/test_profile.py
    sys.exit(main(sys.argv[1:]))
