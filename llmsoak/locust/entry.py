"""What ``locustfiles/llm_chat.py`` does, kept in the package: profile → user classes → listeners.

The profile is read at import (Locust needs the user classes and the shape class before it parses
the rest of the command line): from ``--profile PATH`` in ``sys.argv``, else ``$LLMSOAK_PROFILE``.
A missing or invalid profile, or an unset API-key variable, prints one line on stderr and exits 2
before any request is sent — the same headless, in the web UI, and on every worker.

In the web UI the start form's *Profile* field (Locust's own ``--profile`` option) can name
another profile: :class:`ProfileSwitch` loads it when a test starts, on the master and on every
worker, and makes the existing user classes run it (see docs/webui.md, "Changing the profile").
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from dataclasses import dataclass

EXIT_BAD_INPUT = 2
_HELP_FLAGS = {"-h", "--help", "-V", "--version", "--list", "-l", "--list-commands"}
_SWITCH_ATTR = "_llmsoak_profile_switch"
ERROR_MESSAGE = "llmsoak_profile_error"
"""Custom Locust message a worker sends to the master when it cannot apply the test's profile."""
# Extra keys in parsed_options: Locust forwards keys that are not its own options to the workers
# with every spawn message (its own ``profile`` option is not forwarded).
OPT_PATH, OPT_SHA256, OPT_ERROR = "llmsoak_profile_path", "llmsoak_profile_sha256", "llmsoak_profile_error"
KNOWN_URLS_MAX = 64
"""Most target URLs remembered for the Host precedence rule (one per profile applied)."""

logger = logging.getLogger(__name__)


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
    from llmsoak.errors import CommandError
    from llmsoak.profile import load_profile
    from llmsoak.prompts import prompt_source_from_profile

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


def load_profile_from_argv(argv: list[str] | None = None) -> tuple[object | None, dict]:
    """(profile, {name: class}) for the locustfile's globals: user classes and the shape class.

    The user classes include the built-in patterns the profile does not use (weight 0, never
    dispatched), so a profile picked later in the web UI's start form may use any of them.
    """
    from llmsoak.locust.users import build_user_classes

    argv = sys.argv if argv is None else argv
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
    classes: dict = dict(build_user_classes(profile, prompt_source=prepared.prompt_source, spare_builtins=True))
    _startup[0] = prepared
    if profile.load.shape != "none":
        from llmsoak.locust.shapes import shape_from_profile

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


def get_profile_switch(environment) -> ProfileSwitch | None:
    """The environment's :class:`ProfileSwitch` (None outside llmsoak's locustfile)."""
    return getattr(environment, _SWITCH_ATTR, None)


def _role(environment) -> str:
    from llmsoak.locust.plugin import _role as role_of

    return role_of(environment.runner)


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
    The web UI checks the form's profile before the test starts (:mod:`llmsoak.webui.start_form`),
    so an invalid one never starts a test.
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
        from llmsoak.locust.users import class_name

        missing = [s.name for s in prepared.profile.patterns if class_name(s.name) not in self.user_classes]
        if missing:
            raise ProfileSwitchError(
                f"{path}: pattern {', '.join(missing)} is not in the profile Locust was started with "
                f"({os.path.basename(self.path)}); the start form can use the built-in patterns and the "
                f"startup profile's own: restart Locust with --profile {path}")
        return prepared

    def apply(self, prepared: PreparedProfile) -> None:
        """Make the user classes run ``prepared`` (between tests: before users are created)."""
        from llmsoak.locust.plugin import get_llm_state
        from llmsoak.locust.users import apply_profile

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
        from llmsoak.locust.users import LLMChatUser

        LLMChatUser.blocked_reason = message

    # ------------------------------------------------------------------ test_start
    def on_test_start(self, **_kw) -> None:
        env = self.environment
        options = env.parsed_options
        if options is None:
            return
        self._block(None)
        if _role(env) == "worker":
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
        vars(options).update({OPT_PATH: self.path, OPT_SHA256: self.current.sha256, OPT_ERROR: error})

    def _worker_start(self, options) -> None:
        master_error = getattr(options, OPT_ERROR, None)
        if master_error:
            self._block(master_error)
            return
        path, sha256 = getattr(options, OPT_PATH, None), getattr(options, OPT_SHA256, None)
        if not path:
            return
        try:
            prepared = self.prepare(path, sha256)
        except ProfileSwitchError as err:
            message = f"worker {getattr(self.environment.runner, 'worker_index', '?')}: {err}"
            logger.error("llmsoak: %s; this worker's users stop before sending anything", message)
            self._block(message)
            self.environment.runner.send_message(ERROR_MESSAGE, message)
            return
        if prepared is not None:
            self.apply(prepared)

    def _fail(self, message: str) -> None:
        """Master/local: the test's profile cannot run: no user sends anything, the test stops."""
        import gevent

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


def init_environment(environment, profile, user_classes: dict | None = None) -> None:
    """The locustfile's ``init`` listener: metrics, time series, memory bounds, profile switching."""
    from llmsoak.locust.plugin import register

    patterns = [spec.name for spec in profile.patterns] if profile is not None else []
    register(environment, patterns)
    from llmsoak.locust.shapes import ProfileShape

    shape = environment.shape_class
    if isinstance(shape, ProfileShape) and shape.use_common_options and environment.parsed_options:
        shape.capture_common_options(environment.parsed_options)
    startup = _startup[0]
    if startup is None or user_classes is None or environment.runner is None:
        return
    switch = ProfileSwitch(environment, startup, user_classes)
    setattr(environment, _SWITCH_ATTR, switch)
    role = _role(environment)
    if role != "worker" and getattr(environment.parsed_options, "headless", False):
        return  # headless: the profile read at import is the only one
    # Locust drops weight-0 classes at start-up; the spare built-in ones come back here so a form
    # profile can use them (workers always: their master may be a web UI).
    if role == "worker" or environment.web_ui is not None:
        for cls in switch.user_classes.values():
            if cls not in environment.user_classes:
                environment.user_classes.append(cls)
    environment.events.test_start.add_listener(switch.on_test_start)
    if role == "master":
        environment.runner.register_message(ERROR_MESSAGE, switch.on_worker_error)
    if environment.web_ui is not None:
        from llmsoak.webui.start_form import install_profile_check

        install_profile_check(environment, switch)
