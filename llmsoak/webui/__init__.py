"""llmsoak in Locust's web UI: LLM and Soak tabs, and a Soak page with the memory chart.

Use from a locustfile (llmsoak's ``locustfiles/llm_chat.py`` does)::

    import llmsoak.webui
    llmsoak.webui.install()          # at import time: adds --sampler-url, registers on init

or, from an existing ``init`` listener, ``llmsoak.webui.register(environment)``.
Nothing happens on workers or without a web UI. See docs/webui.md.
"""

from __future__ import annotations

import argparse
import logging

__all__ = ["add_arguments", "get_monitor", "install", "register"]

logger = logging.getLogger(__name__)
_ATTR = "_llmsoak_webui_monitor"


def get_monitor(environment):
    """The ``SoakMonitor`` registered on ``environment``, or None."""
    return getattr(environment, _ATTR, None)


def register(environment, *, poll_interval_s: float = 2.0, trend_interval_s: float = 30.0):
    """Add llmsoak's tabs, page and API to ``environment.web_ui``; returns the monitor (or None).

    Safe to call more than once (the second call returns the first monitor). Does nothing on a
    worker (the master's UI shows the merged state) or when Locust runs without a web UI.
    """
    existing = get_monitor(environment)
    if existing is not None:
        return existing
    web_ui = getattr(environment, "web_ui", None)
    if web_ui is None:
        return None
    from locust.runners import WorkerRunner  # locust is imported by now (register runs in its init)

    if isinstance(getattr(environment, "runner", None), WorkerRunner):
        return None
    # Only a master or local runner with a web UI gets here: headless runs and workers never
    # import the web UI's modules (the monitor, the tabs and what they pull in).
    import gevent

    from llmsoak.webui.monitor import SoakMonitor  # start-up: see above
    from llmsoak.webui.routes import add_routes, base_path  # start-up: see above
    from llmsoak.webui.tabs import install_tabs  # start-up: see above

    monitor = SoakMonitor(environment, poll_interval_s=poll_interval_s, trend_interval_s=trend_interval_s)
    setattr(environment, _ATTR, monitor)
    add_routes(environment, monitor)
    install_tabs(environment, monitor, base_path(environment) + "/llmsoak/")
    greenlet = gevent.spawn(monitor.run_forever)
    environment.events.quitting.add_listener(lambda **_: (monitor.stop(), greenlet.kill(block=False)))
    logger.info("llmsoak web UI: Soak page at %s/llmsoak/", base_path(environment))
    return monitor


def add_arguments(parser, **_kwargs) -> None:
    """Locust ``init_command_line_parser`` hook: ``--sampler-url`` (shown in the start form).

    Idempotent: a locustfile and ``install()`` may both call it.
    """
    try:
        parser.add_argument("--sampler-url", type=str, default="", include_in_web_ui=True,
                            env_var="LLMSOAK_SAMPLER_URL",
                            help="Live endpoint of `llmsoak sample --listen` (http://127.0.0.1:PORT) for the "
                                 "Soak page's memory and CPU; default: the profile's sampler.listen")
    except argparse.ArgumentError:
        pass  # already added (argparse refuses a second --sampler-url)


_installed = False


def install() -> None:
    """Call at locustfile import time: adds ``--sampler-url`` and calls ``register`` on ``init``."""
    global _installed
    if _installed:
        return
    _installed = True
    from locust import events  # importing locust patches the process with gevent: only when asked to

    events.init_command_line_parser.add_listener(lambda parser, **kw: add_arguments(parser, **kw))
    events.init.add_listener(lambda environment, **_: register(environment))
