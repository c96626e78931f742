"""The profile switch: the web UI's start form names another profile, every Locust process runs it.

The start form's *Profile* field (Locust's own ``--profile`` option) may name another profile
than the one Locust was started with, or the same file edited since. The path from the form to
the users:

1. **Form check** (:func:`check_form_profile`, run by a Flask ``before_request`` hook ahead of
   Locust's ``/swarm`` view, behind Locust's ``auth_required_if_enabled``): the file is loaded and
   validated first; a problem answers ``{"success": false, "message": "llmsoak: <file>: <field>:
   <problem>"}`` (Locust's form shows it under the Start button), logs the same line, shows it on
   the Soak tab and page, and starts nothing: Locust's view never runs. A good profile is kept
   for ``test_start`` and its load shape replaces the running one (Locust picks the shape in that
   view). With ``--web-login`` nothing is read for a client that has not logged in.
2. **Master** (or local runner), ``test_start`` (:meth:`ProfileSwitch.on_test_start`): the profile
   is applied before Locust dispatches users: user class attributes, weights / fixed counts
   (llmsoak.locust.user_classes), the Host. Its path, content hash and any error go to the
   workers as llmsoak's custom arguments, which Locust forwards with the spawn message.
3. **Workers**, ``test_start``: each loads the same file (checked by hash) and applies it, or, if
   it cannot, stops its users before any request and tells the master (custom message
   :data:`ERROR_MESSAGE`), which stops the test and shows why.

Headless runs keep the profile read at import (llmsoak.locust.entry). See docs/webui.md,
"Changing the profile in the start form".
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
from dataclasses import dataclass

import gevent
from flask import jsonify, request

from llmsoak.errors import CommandError
from llmsoak.locust import internals
from llmsoak.locust.plugin import role
from llmsoak.locust.shapes import install_shape
from llmsoak.locust.timeseries import get_llm_state
from llmsoak.locust.user_classes import apply_profile, class_name
from llmsoak.locust.users import LLMChatUser
from llmsoak.locust.worker_auth import MASTER_SHA_ENV
from llmsoak.profile import load_profile
from llmsoak.prompts import prompt_source_from_profile

logger = logging.getLogger(__name__)

ERROR_MESSAGE = "llmsoak_profile_error"
"""Custom Locust message a worker sends to the master when it cannot apply the test's profile."""
OPT_PATH, OPT_SHA256, OPT_ERROR = "llmsoak_profile_path", "llmsoak_profile_sha256", "llmsoak_profile_error"
"""llmsoak's custom arguments (see :func:`add_arguments`) that carry the test's profile to workers."""
KNOWN_URLS_MAX = 64
"""Most target URLs remembered for the Host precedence rule (one per profile applied)."""
_SWITCH_ATTR = "_llmsoak_profile_switch"


def add_arguments(parser) -> None:
    """Locust ``init_command_line_parser`` hook: the hidden options that carry the profile to workers.

    The master sets them at ``test_start``; Locust forwards custom arguments to the workers with
    the spawn message (Locust's docs, "Custom arguments"). Never set on the command line.
    """
    for option in (OPT_PATH, OPT_SHA256, OPT_ERROR):
        parser.add_argument("--" + option.replace("_", "-"), default=None, include_in_web_ui=False,
                            help=argparse.SUPPRESS)


class ProfileSwitchError(Exception):
    """A profile that cannot run in this Locust process; the message is one line for people."""


@dataclass
class PreparedProfile:
    """A profile loaded and checked, ready for :meth:`ProfileSwitch.apply`."""

    path: str
    """Absolute path of the file."""
    sha256: str
    """Of the file's bytes: workers check they read the same file as the master."""
    profile: object
    prompt_source: object


def _file_key(path: str) -> tuple[str, str]:
    """(absolute path, sha256 of the content); OSError if unreadable."""
    with open(path, "rb") as fh:
        return os.path.abspath(path), hashlib.sha256(fh.read()).hexdigest()


def prepare_profile(path: str) -> PreparedProfile:
    """Load, validate and resolve everything a profile needs before any request is sent.

    Raises :class:`ProfileSwitchError` with one line (file, field path, problem): a missing file,
    an invalid profile, an unset API-key variable, a bad prompt file.
    """
    try:
        abspath, sha256 = _file_key(path)
        profile = load_profile(path)
        profile.target.resolve_headers()  # fail now if the API-key variable is unset; value dropped
        prompt_source = prompt_source_from_profile(profile)
    except CommandError as err:
        raise ProfileSwitchError(str(err)) from None
    except OSError as err:
        raise ProfileSwitchError(f"{path}: cannot read profile: {err.strerror or err}") from None
    return PreparedProfile(abspath, sha256, profile, prompt_source)


def get_profile_switch(environment) -> ProfileSwitch | None:
    """The environment's :class:`ProfileSwitch` (None outside llmsoak's locustfile)."""
    return getattr(environment, _SWITCH_ATTR, None)


def _norm_url(url: str | None) -> str:
    return (url or "").strip().rstrip("/")


class ProfileSwitch:
    """Which profile the user classes run, and changing it when a test starts.

    On the master (or local runner) the profile named by Locust's ``profile`` option (the start
    form's *Profile* field) is loaded at ``test_start`` if it is not the one in use (another path,
    or the same file edited), and applied before Locust dispatches users: user class attributes,
    weights / fixed counts, the Host (see :meth:`_resolve_host`). Its path and content hash go to
    the workers in the spawn message; each worker loads the same file and applies it the same way,
    or, if it cannot, stops its users before any request and tells the master, which stops the test.
    The web UI checks the form's profile before the test starts (:func:`check_form_profile`), so
    an invalid one never starts a test.
    """

    def __init__(self, environment, startup: PreparedProfile, classes: dict) -> None:
        self.environment = environment
        self.current = startup
        self.user_classes = {n: c for n, c in classes.items() if getattr(c, "pattern", None) is not None}
        self.pending: PreparedProfile | None = None
        """Prepared by the start form's check, applied at the next test_start."""
        self.error: str | None = None
        """The last profile that could not be applied (shown on the Soak page), None after a success."""
        self.known_urls: list[str] = [_norm_url(startup.profile.target.url)]
        self.shape_profile = startup.profile
        """The profile whose load shape Locust runs (the start form swaps it)."""
        self._startup = startup

    @property
    def path(self) -> str:
        return self.current.path

    @property
    def profile(self):
        return self.current.profile

    def is_current(self, path: str, sha256: str | None = None) -> bool:
        """Whether ``path`` (with this content, if given; else as on disk now) is the profile in use."""
        try:
            key = (os.path.abspath(path), sha256) if sha256 else _file_key(path)
        except OSError:
            return False
        return key == (self.current.path, self.current.sha256)

    def prepare(self, path: str, sha256: str | None = None) -> PreparedProfile | None:
        """None when ``path`` is the profile in use; else the loaded profile, checked against this
        process (its patterns must have user classes). Raises ProfileSwitchError."""
        if self.is_current(path, sha256):
            return None
        prepared = prepare_profile(path)
        if sha256 and prepared.sha256 != sha256:
            raise ProfileSwitchError(f"{path}: not the same file as on the master (content differs)")
        missing = [s.name for s in prepared.profile.patterns if class_name(s.name) not in self.user_classes]
        if missing:
            raise ProfileSwitchError(
                f"{path}: pattern {', '.join(missing)} is not in the profile Locust was started with "
                f"({os.path.basename(self.path)}); the start form can use the built-in patterns and the "
                f"startup profile's own: restart Locust with --profile {path}")
        return prepared

    def apply(self, prepared: PreparedProfile) -> None:
        """Make the user classes run ``prepared`` (between tests: before users are created)."""
        profile = prepared.profile
        apply_profile(self.user_classes, profile, prompt_source=prepared.prompt_source)
        state = get_llm_state(self.environment)
        names = [spec.name for spec in profile.patterns]
        # Rows: the new profile's patterns, and earlier ones only where they have numbers.
        state.patterns[:] = [p for p in state.patterns if p in names or p in state.cumulative]
        state.patterns.extend(n for n in names if n not in state.patterns)
        self.current = prepared
        url = _norm_url(profile.target.url)
        if url not in self.known_urls:
            self.known_urls = [*self.known_urls[-(KNOWN_URLS_MAX - 1):], url]
        options = self.environment.parsed_options
        if options is not None:
            options.profile = prepared.path
        self.environment.profile = prepared.path
        logger.info("llmsoak: profile %s (%s) applied: patterns %s, target %s", prepared.path, profile.name,
                    ", ".join(s.name for s in profile.patterns), profile.target.url)

    def _resolve_host(self) -> None:
        """The Host precedence: a Host (form field or ``-H``) that is not the ``target.url`` of a
        profile this process has loaded is an explicit choice and wins; otherwise (empty, or still
        showing some profile's URL) the profile in use decides."""
        env = self.environment
        host = _norm_url(env.host)
        if host and host not in self.known_urls:
            return
        env.host = self.profile.target.url
        if env.parsed_options is not None:
            env.parsed_options.host = env.host
        for cls in self.user_classes.values():
            cls.host = env.host

    def _block(self, message: str | None) -> None:
        LLMChatUser.blocked_reason = message

    # ------------------------------------------------------------------ test_start
    def on_test_start(self, **_kw) -> None:
        env = self.environment
        options = env.parsed_options
        if options is None:
            return
        self._block(None)
        if role(env.runner) == "worker":
            self._worker_start(options)
            return
        path = getattr(env, "profile", None) or getattr(options, "profile", None) or self.path
        prepared, self.pending = self.pending, None
        error = None
        try:
            if prepared is None or (prepared.path, prepared.sha256) != _file_key(path):
                prepared = self.prepare(path)
        except ProfileSwitchError as err:
            error = str(err)
        except OSError as err:
            error = f"{path}: cannot read profile: {err.strerror or err}"
        if error is None and prepared is not None:
            self.apply(prepared)
        if error is None:
            self.error = None
            self._resolve_host()
        else:  # the form was checked; this is a file changed since, or a start without the form
            self._fail(error)
        # llmsoak's custom arguments: Locust sends them to the workers with the spawn message
        setattr(options, OPT_PATH, self.path)
        setattr(options, OPT_SHA256, self.current.sha256)
        setattr(options, OPT_ERROR, error)

    def _worker_start(self, options) -> None:
        master_error = getattr(options, OPT_ERROR, None)
        if master_error:
            self._block(master_error)
            return
        path, sha256 = getattr(options, OPT_PATH, None), getattr(options, OPT_SHA256, None)
        if not path:
            return
        if sha256 and sha256 == os.environ.get(MASTER_SHA_ENV) and self.current is self._startup:
            return  # `llmsoak worker`: the master's profile, received at join and running since start-up
        try:
            prepared = self.prepare(path, sha256)
        except ProfileSwitchError as err:
            reason = str(err)
            if os.environ.get(MASTER_SHA_ENV):  # `llmsoak worker`: it has only what it received at join
                reason = (f"{path}: not the profile this remote worker joined with: `llmsoak worker` receives "
                          "the profile when it joins; restart the workers (they join again and receive it)")
            message = f"worker {getattr(self.environment.runner, 'worker_index', '?')}: {reason}"
            logger.error("llmsoak: %s; this worker's users stop before sending anything", message)
            self._block(message)
            self.environment.runner.send_message(ERROR_MESSAGE, message)
            return
        if prepared is not None:
            self.apply(prepared)

    def _fail(self, message: str) -> None:
        """Master/local: the test's profile cannot run: no user sends anything, the test stops."""
        logger.error("llmsoak: %s; the test is stopped", message)
        self.error = message
        self._block(message)
        runner = self.environment.runner
        gevent.spawn_later(0.1, runner.stop)

    def on_worker_error(self, environment=None, msg=None, **_kw) -> None:
        """Master: a worker could not apply the profile; stop the test and say why."""
        message = str(getattr(msg, "data", msg))
        if self.error != message:
            self._fail(message)


def check_form_profile(environment, switch, form) -> str | None:
    """None when the test may start (profile unchanged, or prepared for ``test_start``), else the
    one-line error to show. ``form`` is the request's form mapping."""
    if "profile" not in form:
        return None  # the "edit running test" form, or an API call without the field
    path = (form.get("profile") or "").strip() or switch.path  # empty field: keep the one in use
    runner = environment.runner
    if getattr(runner, "state", None) in ("spawning", "running"):
        if switch.is_current(path):
            return None
        return f"{path}: stop the test before changing the profile"
    try:
        prepared = switch.prepare(path)
    except ProfileSwitchError as err:
        return str(err)
    profile = switch.profile if prepared is None else prepared.profile
    if switch.shape_profile is not profile:
        error = _swap_shape(environment, profile, form)
        if error:
            return error
        switch.shape_profile = profile
    switch.pending = prepared
    return None


def _swap_shape(environment, profile, form) -> str | None:
    """Make the form profile's ``load`` shape the one Locust starts (or none for ``shape: none``)."""
    if profile.load.shape == "none":
        if environment.shape_class is not None and not form.get("user_count"):
            return (f"{profile.source_path}: load.shape: none needs the form's user count, which Locust "
                    "hides while the startup profile has a shape: restart Locust with --profile "
                    f"{profile.source_path}")
        environment.shape_class = None
        return None
    if install_shape(environment, profile) is None:
        environment.shape_class = None
    return None


def install(environment, startup: PreparedProfile, user_classes: dict) -> ProfileSwitch:
    """Make ``environment`` switch profiles at ``test_start`` (from an ``init`` listener).

    ``startup`` is the profile read at import, ``user_classes`` the classes built for it. A
    headless master or local runner gets a switch that never switches (the profile read at import
    is the only one); :func:`get_profile_switch` still tells the web UI which profile runs.
    """
    switch = ProfileSwitch(environment, startup, user_classes)
    setattr(environment, _SWITCH_ATTR, switch)
    node = role(environment.runner)
    if node != "worker" and getattr(environment.parsed_options, "headless", False):
        return switch
    # Locust drops weight-0 classes at start-up; the spare built-in ones come back here so a form
    # profile can use them (workers always: their master may be a web UI).
    if node == "worker" or environment.web_ui is not None:
        internals.restore_user_classes(environment, switch.user_classes.values())
    environment.events.test_start.add_listener(switch.on_test_start)
    if node == "master":
        environment.runner.register_message(ERROR_MESSAGE, switch.on_worker_error)
    if environment.web_ui is not None:
        _install_form_check(environment, switch)
    return switch


def _install_form_check(environment, switch: ProfileSwitch) -> None:
    """Run :func:`check_form_profile` on every ``POST /swarm`` (under ``--web-base-path``)."""
    web_ui = environment.web_ui
    base = (getattr(environment.parsed_options, "web_base_path", None) or "").strip("/")
    swarm_path = ("/" + base if base else "") + "/swarm"

    def check():
        error = check_form_profile(environment, switch, request.form)
        if not error:
            return None  # on to Locust's own view
        switch.error = error
        logger.error("llmsoak: %s; the test was not started", error)
        return jsonify({"success": False, "message": f"llmsoak: {error}", "host": environment.host})

    guarded = web_ui.auth_required_if_enabled(check)

    @web_ui.app.before_request
    def _llmsoak_check_form_profile():
        if request.method == "POST" and request.path == swarm_path:
            return guarded()  # None lets the request through to Locust; a response ends it here
        return None


