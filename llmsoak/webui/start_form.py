"""The start form's *Profile* field, checked before Locust starts a test.

A Flask ``before_request`` hook on Locust's web UI app runs ahead of Locust's ``/swarm`` view (the
form's Start button, or an HTTP client): when the form names a profile other than the one in use
(another path, or the same file edited since), it is loaded and checked first
(:func:`llmsoak.locust.profile_switch.check_form_profile`). A problem answers
``{"success": false, "message": "llmsoak: <file>: <field>: <problem>"}`` — Locust's form shows
that message under the Start button — logs the same line, shows it on the Soak tab and page,
and starts nothing; Locust's view never runs. A good profile goes on to Locust's view and is
applied at ``test_start``. The check runs behind Locust's ``auth_required_if_enabled``: with
``--web-login`` nothing is read for a client that has not logged in.
"""

from __future__ import annotations

import logging

from flask import jsonify, request

from llmsoak.locust.profile_switch import check_form_profile, get_profile_switch

logger = logging.getLogger(__name__)


def install_profile_check(environment, swarm_path: str) -> None:
    """Check the form's profile on every ``POST swarm_path`` (Locust's ``/swarm`` under its base path)."""
    web_ui = environment.web_ui

    def check():
        switch = get_profile_switch(environment)
        if switch is None:
            return None  # not llmsoak's locustfile: nothing to check
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
            return guarded()  # None lets the request through; a response ends it here
        return None
