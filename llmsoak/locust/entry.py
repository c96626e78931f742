"""What ``locustfiles/llm_chat.py`` does, kept in the package: profile → user classes → listeners.

The profile is read at import (Locust needs the user classes and the shape class before it parses
the rest of the command line): from ``--profile PATH`` in ``sys.argv``, else ``$LLMSOAK_PROFILE``.
A missing or invalid profile, or an unset API-key variable, prints one line on stderr and exits 2
before any request is sent — the same headless, in the web UI, and on every worker.

The data flow from here: :func:`load_profile_from_argv` builds the user classes
(llmsoak.locust.user_classes) and the load shape (llmsoak.locust.shapes);
:func:`add_arguments` declares llmsoak's options; :func:`init_environment` attaches the
metrics, time series and memory bounds (llmsoak.locust.plugin) and the profile switch of the
web UI's start form (llmsoak.locust.profile_switch, see docs/webui.md).
"""

from __future__ import annotations

import os
import sys

from llmsoak.errors import EXIT_BAD_INPUT
from llmsoak.locust import plugin, profile_switch, worker_join
from llmsoak.locust.profile_switch import PreparedProfile, ProfileSwitchError, prepare_profile
from llmsoak.locust.shapes import ProfileShape, shape_from_profile
from llmsoak.locust.timeseries import get_llm_state
from llmsoak.locust.user_classes import build_user_classes

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


def load_profile_from_argv(argv: list[str] | None = None) -> tuple[object | None, dict]:
    """(profile, {name: class}) for the locustfile's globals: user classes and the shape class.

    The user classes include the built-in patterns the profile does not use (weight 0, never
    dispatched), so a profile picked later in the web UI's start form may use any of them.
    """
    argv = sys.argv if argv is None else argv
    # A worker's hello must go out before Locust's client_ready, sent from the runner's constructor.
    worker_join.install_worker_hello()
    path = profile_path_from_argv(argv) or os.environ.get("LLMSOAK_PROFILE")
    if not path:
        if _HELP_FLAGS.intersection(argv):
            return None, {}
        _die("no profile: pass --profile FILE.yaml (or set LLMSOAK_PROFILE)")
    try:
        prepared = prepare_profile(path)
    except ProfileSwitchError as err:
        _die(str(err))
    profile = prepared.profile
    _startup[0] = prepared
    if profile.arrivals is not None:
        # Open-loop arrivals replace the profile's users: one driver per process, its own shape.
        from llmsoak.locust import arrivals_driver  # only for profiles with an arrivals section

        classes = arrivals_driver.user_classes(profile, prepared.prompt_source)
        classes["ArrivalsShape"].use_common_options = _headless(argv)
        return profile, classes
    classes: dict = dict(build_user_classes(profile, prompt_source=prepared.prompt_source, spare_builtins=True))
    if profile.load.shape != "none":
        shape = shape_from_profile(profile)
        if shape is not None:
            # Headless: -t (and -u/-r for a constant shape) reach the shape instead of being ignored.
            shape.use_common_options = _headless(argv)
            classes[shape.__name__] = shape
    return profile, classes


def _headless(argv: list[str]) -> bool:
    """Whether Locust runs headless (``--headless`` or ``LOCUST_HEADLESS``); read before Locust parses."""
    return "--headless" in argv or os.environ.get("LOCUST_HEADLESS", "").lower() in ("1", "true", "yes")


_startup: list[PreparedProfile | None] = [None]
"""The profile read at import (set by load_profile_from_argv)."""


def add_arguments(parser) -> None:
    """The locustfile's ``init_command_line_parser`` listener: every option llmsoak adds to Locust."""
    plugin.add_arguments(parser)
    profile_switch.add_arguments(parser)


def init_environment(environment, profile, user_classes: dict | None = None) -> None:
    """The locustfile's ``init`` listener: metrics, time series, memory bounds, profile switching."""
    patterns = [spec.name for spec in profile.patterns] if profile is not None else []
    plugin.register(environment, patterns)
    shape = environment.shape_class
    if isinstance(shape, ProfileShape) and shape.use_common_options and environment.parsed_options:
        shape.capture_common_options(environment.parsed_options)
    startup = _startup[0]
    if startup is None or user_classes is None or environment.runner is None:
        return
    if startup.profile.arrivals is not None:
        from llmsoak.locust import arrivals_driver  # only for profiles with an arrivals section

        arrivals_driver.init_environment(environment)
        get_llm_state(environment).arrivals_on = True
        return  # the web UI's profile switch needs the profile's user classes, which arrivals replace
    switch = profile_switch.install(environment, startup, user_classes)
    if plugin.role(environment.runner) == "master":
        worker_join.install_master(environment, lambda: switch.path)
