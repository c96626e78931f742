"""Flask routes of the Soak page on Locust's web UI app, every one behind ``auth_required_if_enabled``.

``/llmsoak/`` (the page), ``/llmsoak/static/<file>`` (its script and style, from the package) and
``/llmsoak/api/state`` (JSON from ``SoakMonitor.state()``), all under Locust's ``--web-base-path``.
With ``--web-login`` they answer only a logged-in user, exactly like Locust's own routes.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, jsonify

STATIC_DIR = Path(__file__).with_name("static")
STATIC_FILES = {"format.js": "application/javascript", "soak.js": "application/javascript", "soak.css": "text/css"}
"""The only files served: a fixed list, so no path from a request ever reaches the file system."""


def base_path(environment) -> str:
    """Locust's ``--web-base-path`` without a trailing slash ('' when unset)."""
    path = getattr(getattr(environment, "parsed_options", None), "web_base_path", None) or ""
    return ("/" + path.strip("/")) if path.strip("/") else ""


def add_routes(environment, monitor) -> None:
    """Register the Soak page's routes on ``environment.web_ui.app``."""
    web_ui = environment.web_ui
    guard = web_ui.auth_required_if_enabled
    bp = Blueprint("llmsoak", __name__, url_prefix=base_path(environment) + "/llmsoak")

    @bp.route("/")
    @guard
    def soak_page() -> Response:
        html = (STATIC_DIR / "soak.html").read_text(encoding="utf-8")
        return Response(html, mimetype="text/html", headers={"Cache-Control": "no-store"})

    @bp.route("/static/<name>")
    @guard
    def soak_static(name: str) -> Response:
        if name not in STATIC_FILES:
            return Response("not found", status=404, mimetype="text/plain")
        return Response((STATIC_DIR / name).read_bytes(), mimetype=STATIC_FILES[name],
                        headers={"Cache-Control": "no-store"})

    @bp.route("/api/state")
    @guard
    def soak_state() -> Response:
        response = jsonify(monitor.state())
        response.headers["Cache-Control"] = "no-store"
        return response

    web_ui.app.register_blueprint(bp)
