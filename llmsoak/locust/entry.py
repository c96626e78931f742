"""What ``locustfiles/llm_chat.py`` does, kept in the package: profile → user classes → listeners.

The profile is read at import (Locust needs the user classes and the shape class before it parses
the rest of the command line): from ``--profile PATH`` in ``sys.argv``, else ``$LLMSOAK_PROFILE``.
A missing or invalid profile, or an unset API-key variable, prints one line on stderr and exits 2
before any request is sent — the same headless, in the web UI, and on every worker.
"""

from __future__ import annotations

import os
import sys

EXIT_BAD_INPUT = 2
_HELP_FLAGS = {"-h", "--help", "-V", "--version", "--list", "-l", "--list-commands"}


def profile_path_from_argv(argv: list[str]) -> str | None:
    """The value of ``--profile`` in ``argv`` (``--profile X`` or ``--profile=X``), if any."""
    for i, arg in enumerate(argv):
        if arg == "--profile" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--profile="):
            return arg.split("=", 1)[1]
    return None


def _die(message: str) -> None:
    sys.stderr.write(f"llmsoak: {message}\n")
    sys.stderr.flush()
    raise SystemExit(EXIT_BAD_INPUT)


def _prompt_source(profile):
    """The profile's prompt source as ``(rng, tokens) -> str``, or None for the built-in words."""
    try:
        from llmsoak.prompts import prompt_source_from_profile  # type: ignore[attr-defined]
    except ImportError:
        return None
    return prompt_source_from_profile(profile)


def load_profile_from_argv(argv: list[str] | None = None) -> tuple[object | None, dict]:
    """(profile, {name: class}) for the locustfile's globals: user classes and the shape class."""
    from llmsoak.errors import CommandError
    from llmsoak.locust.users import build_user_classes
    from llmsoak.profile import load_profile

    argv = sys.argv if argv is None else argv
    path = profile_path_from_argv(argv) or os.environ.get("LLMSOAK_PROFILE")
    if not path:
        if _HELP_FLAGS.intersection(argv):
            return None, {}
        _die("no profile: pass --profile FILE.yaml (or set LLMSOAK_PROFILE)")
    try:
        profile = load_profile(path)
        profile.target.resolve_headers()  # fail now if the API-key variable is unset; value dropped
        prompt_source = _prompt_source(profile)
    except CommandError as err:
        _die(str(err))
    except OSError as err:
        _die(f"{path}: cannot read profile: {err.strerror or err}")
    classes: dict = dict(build_user_classes(profile, prompt_source=prompt_source))
    if profile.load.shape != "none":
        from llmsoak.locust.shapes import shape_from_profile

        shape = shape_from_profile(profile)
        if shape is not None:
            classes[shape.__name__] = shape
    return profile, classes


def init_environment(environment, profile) -> None:
    """The locustfile's ``init`` listener: attach metrics, time series and memory bounds."""
    from llmsoak.locust.plugin import register

    patterns = [spec.name for spec in profile.patterns] if profile is not None else []
    register(environment, patterns)
