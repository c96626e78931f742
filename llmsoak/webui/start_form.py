"""The start form's *Profile* field, checked before Locust starts a test.

Locust's ``/swarm`` view (the form's Start button, or an HTTP client) is wrapped: when the form
names a profile other than the one in use (another path, or the same file edited since), the
profile is loaded and checked first (:meth:`llmsoak.locust.entry.ProfileSwitch.prepare`). A
problem answers ``{"success": false, "message": "llmsoak: <file>: <field>: <problem>"}`` — Locust's
form shows that message under the Start button — logs the same line, shows it on the Soak tab and
page, and starts nothing. A good profile is handed to the switch, which applies it at
``test_start``; its load shape replaces the running one here because Locust picks the shape in
this view. The wrapper carries Locust's ``auth_required_if_enabled``: with ``--web-login`` nothing
is read for a client that has not logged in (no new unauthenticated route or behaviour).
"""

from __future__ import annotations

import functools
import logging

logger = logging.getLogger(__name__)


def _swarm_endpoint(app) -> str | None:
    for rule in app.url_map.iter_rules():
        if rule.rule.endswith("/swarm") and "POST" in (rule.methods or ()):
            return rule.endpoint
    return None


def check_form_profile(environment, switch, form) -> str | None:
    """None when the test may start (profile unchanged, or prepared for ``test_start``), else the
    one-line error to show. ``form`` is the request's form mapping."""
    from llmsoak.locust.entry import ProfileSwitchError

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
    from llmsoak.locust.shapes import install_shape

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


def install_profile_check(environment, switch) -> bool:
    """Wrap Locust's ``/swarm`` view with :func:`check_form_profile`; False if there is none."""
    from flask import jsonify, request

    web_ui = environment.web_ui
    app = web_ui.app
    endpoint = _swarm_endpoint(app)
    if endpoint is None:
        logger.warning("llmsoak: Locust's /swarm route not found; the start form's profile is not checked")
        return False
    original = app.view_functions[endpoint]

    @functools.wraps(original)
    def swarm_with_profile_check():
        error = check_form_profile(environment, switch, request.form)
        if error:
            switch.error = error
            logger.error("llmsoak: %s; the test was not started", error)
            return jsonify({"success": False, "message": f"llmsoak: {error}", "host": environment.host})
        return original()

    app.view_functions[endpoint] = web_ui.auth_required_if_enabled(swarm_with_profile_check)
    return True
