"""Errors that carry their exit code, so the CLI prints one line instead of a traceback."""

from __future__ import annotations

# Exit codes shared by every command (documented in README "Exit codes").
EXIT_OK = 0
EXIT_FAILED = 1  # analyze: leak found; run: SLO breached
EXIT_BAD_INPUT = 2  # usage errors, bad files, bad profiles, port in use
EXIT_INCONCLUSIVE = 3  # analyze: not enough data to decide
EXIT_TARGET_UNAVAILABLE = 4  # nothing to attach to / target does not answer
EXIT_IO_ERROR = 5  # output not writable, disk full
EXIT_WORKERS_MISSING = 6  # run: the remote workers did not join within run.workers_timeout


class CommandError(Exception):
    """A user-facing error: ``str(err)`` is the one line printed, ``exit_code`` the status."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code
