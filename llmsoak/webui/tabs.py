"""The Locust-native part: two table tabs in Locust's own UI, a link to the chart page, download links.

Locust's modern UI renders ``template_args["extended_tabs"]`` as tabs whose rows arrive in the
``extended_stats`` field of ``/stats/requests`` (added here in an ``after_request`` hook). A table
tab cannot draw a chart and its cells are plain text, so the Soak page is linked from the
*Download Data* tab (``extended_csv_files`` entries are real links) and from a small fixed link
added to Locust's index page.
"""

from __future__ import annotations

import json

from flask import request

from llmsoak.formatting import (
    format_bytes,
    format_bytes_sig,
    format_hours,
    format_num,
    format_pct_per_hour,
    format_sig,
)
from llmsoak.webui import llm_view

LLM_TAB = "llmsoak-llm"
SOAK_TAB = "llmsoak-soak"
# Keys are camel-cased by Locust's UI on both sides (structure and rows): keep them simple.
LLM_STRUCTURE = [
    {"key": "pattern", "title": "Pattern"}, {"key": "users", "title": "Users"},
    {"key": "requests", "title": "Requests"}, {"key": "failures", "title": "Failures"},
    {"key": "failclasses", "title": "Failures by class"},
    {"key": "ttft", "title": "TTFT p50 / p95 / p99 (ms)"}, {"key": "itl", "title": "ITL p50 / p95 (ms)"},
    {"key": "e2e", "title": "E2E p50 / p95 / p99 (ms)"}, {"key": "tps", "title": "Tokens/s now"},
    {"key": "tokens", "title": "Tokens in / out"},
]
SOAK_STRUCTURE = [{"key": "item", "title": "What"}, {"key": "value", "title": "Now"}]


def _ms(*values) -> str:
    return " / ".join(format_num(v) for v in values)


def llm_table_rows(rows: list[dict]) -> list[dict]:
    """Rows for the LLM tab: one per pattern, ``all`` last; numbers formatted for reading."""
    out = []
    for r in rows:
        tps = r.get("current_tokens_per_s")
        out.append({
            "name": r["pattern"], "pattern": r["pattern"], "users": "–" if r.get("users") is None else r["users"],
            "requests": r.get("requests") or 0, "failures": r.get("failures") or 0,
            "failclasses": llm_view.format_failures(r.get("failures_by_class") or {}),
            "ttft": _ms(r.get("ttft_p50_ms"), r.get("ttft_p95_ms"), r.get("ttft_p99_ms")),
            "itl": _ms(r.get("itl_p50_ms"), r.get("itl_p95_ms")),
            "e2e": _ms(r.get("e2e_p50_ms"), r.get("e2e_p95_ms"), r.get("e2e_p99_ms")),
            "tps": "–" if tps is None else f"{tps:.1f}",
            "tokens": f"{r.get('input_tokens') or 0} / {r.get('output_tokens') or 0}",
        })
    return out


def soak_table_rows(state: dict, page_url: str) -> list[dict]:
    """Key/value rows for the Soak tab: memory, CPU, trend, projection, alerts and where the chart is."""
    sampler, trend = state["sampler"], state["trend"]
    latest = sampler.get("latest") or {}
    verdict = trend.get("verdict") or {}
    slo = state["profile"]["slo"]
    rows = [("Memory chart", f"open {page_url} (memory curve, trend, 7-day projection, CPU, TTFT)")]
    profile = state["profile"]
    rows.append(("Profile", f"{profile.get('name') or '–'} ({profile.get('path') or 'none'})"))
    if profile.get("error"):
        rows.append(("Profile error", profile["error"]))
    if sampler.get("url") is None:
        rows.append(("Sampler", sampler.get("error") or "not configured: --sampler-url or profile sampler.listen"))
    else:
        rows.append(("Sampler", f"{sampler['status']} {sampler['url']}" + (f" ({sampler['error']})" if sampler.get("error") else "")))
    rows.append(("Target RSS", format_bytes(latest.get("rss_bytes"))))
    cpu = latest.get("cpu_percent")
    rows.append(("Target CPU", "–" if cpu is None else f"{cpu:.0f} % of one core"))
    server = (state.get("server") or {}).get("latest")
    if server is not None:  # the sampler scrapes the target's /metrics
        rows.append(("Server (its /metrics)", server_text(server)))
    if trend.get("status") == "ok":
        rows += trend_rows(verdict)
    else:
        rows.append(("Memory trend", trend.get("reason") or trend.get("status")))
    limits = [f"{name} {fmt(slo[key])}" for name, key, fmt in (
        ("warn", "memory_warn_bytes", format_bytes), ("limit", "memory_limit_bytes", format_bytes),
        ("TTFT p95", "ttft_p95_ms", lambda v: f"{v:.0f} ms"), ("error rate", "error_rate", lambda v: f"{v:.2%}"))
        if slo.get(key) is not None]
    rows.append(("Profile thresholds", ", ".join(limits) if limits else "none set in the profile"))
    active = state["alerts"]["active"]
    rows.append(("Alerts", "; ".join(a["message"] for a in active) if active else "none"))
    # Locust's table sorts rows by ``name``: a zero-padded index keeps this reading order.
    return [{"name": f"{i:02d}", "item": k, "value": str(v)} for i, (k, v) in enumerate(rows)]


def server_text(server: dict) -> str:
    """``"4 running, 0 waiting, KV cache 12.5 %, 0 preemptions"`` from the latest server gauges."""
    if not server:
        return "waiting for the server's metrics"
    parts = []
    for key, word in (("requests_running", "running"), ("requests_waiting", "waiting")):
        if server.get(key) is not None:
            parts.append(f"{server[key]:.0f} {word}")
    if server.get("kv_cache_usage_percent") is not None:
        parts.append(f"KV cache {format_sig(server['kv_cache_usage_percent'])} %")
    if server.get("preemptions_total") is not None:
        parts.append(f"{server['preemptions_total']:.0f} preemptions")
    return ", ".join(parts) or "not exposed: none of the gauges llmsoak records"


def trend_rows(verdict: dict) -> list[tuple[str, str]]:
    """Slope, growth, projection, hours to limit and verdict as (item, text) rows, 3 significant digits.

    Only a leak's projection and hours to the limit are findings: for "inconclusive" they read
    "(not a trend yet)", for "ok" the projection is marked as the flat level, and hours to the limit
    appear only for a leak or while the slope interval excludes zero upward (as on the Soak page).
    """
    word = verdict.get("verdict")
    slope = verdict.get("slope_per_hour")
    ci = verdict.get("slope_interval_per_hour") or [None, None]
    rising = ci[0] is not None and ci[0] > 0
    slope_text = "–" if slope is None else format_bytes_sig(slope)
    if slope is not None and slope > 0 and slope_text != "0 B":
        slope_text = "+" + slope_text
    proj = verdict.get("projected_7d")
    if proj is None:
        proj_text = "–"
    elif word == "leak":
        proj_text = format_bytes_sig(proj)
    elif word == "ok":
        proj_text = f"{format_bytes_sig(proj)} (no leak: the flat level)"
    else:
        proj_text = "— (not a trend yet)"
    htl = verdict.get("hours_to_limit")
    if htl is not None and (word == "leak" or rising):
        htl_text = format_hours(htl) + ("" if word == "leak" else " (not a trend yet)")
    else:
        htl_text = "— (not a trend yet)" if word == "inconclusive" else "–"
    growth = verdict.get("growth_pct_per_hour")
    return [("Memory slope", "–" if slope is None else f"{slope_text}/h"),
            ("Growth per hour", format_pct_per_hour(growth) if growth is not None else "–"),
            ("Projected at 7 days uptime", proj_text), ("Hours to limit", htl_text),
            ("Verdict so far", f"{word}: {verdict.get('reason')}")]


def install_tabs(environment, monitor, page_path: str) -> None:
    """Add the tabs to Locust's template args and fill their rows in ``/stats/requests`` responses."""
    web_ui = environment.web_ui
    prefix = page_path[: -len("/llmsoak/")]
    web_ui.template_args["extended_tabs"] = [
        *[t for t in web_ui.template_args.get("extended_tabs") or [] if t.get("key") not in (LLM_TAB, SOAK_TAB)],
        {"title": "LLM", "key": LLM_TAB}, {"title": "Soak", "key": SOAK_TAB}]
    web_ui.template_args["extended_tables"] = [
        *[t for t in web_ui.template_args.get("extended_tables") or [] if t.get("key") not in (LLM_TAB, SOAK_TAB)],
        {"key": LLM_TAB, "structure": LLM_STRUCTURE}, {"key": SOAK_TAB, "structure": SOAK_STRUCTURE}]
    web_ui.template_args["extended_csv_files"] = [
        *(web_ui.template_args.get("extended_csv_files") or []),
        {"href": "./llmsoak/", "title": "llmsoak Soak page: memory chart, trend, 7-day projection, alerts"},
        {"href": "./llmsoak/api/state", "title": "llmsoak live state (JSON)"}]
    link = ('<a id="llmsoak-soak-link" href="./llmsoak/" title="llmsoak: memory chart, trend, alerts" '
            'style="position:fixed;right:16px;bottom:16px;z-index:2000;padding:8px 14px;border-radius:18px;'
            'background:#1565c0;color:#fff;font:600 14px sans-serif;text-decoration:none;'
            'box-shadow:0 2px 6px rgba(0,0,0,.3)">Soak charts</a>')

    @web_ui.app.after_request
    def _llmsoak_extend(response):
        path = request.path
        if path == prefix + "/stats/requests" and response.status_code == 200 and response.is_json:
            data = response.get_json(silent=True)
            if isinstance(data, dict):
                state = monitor.state(series=False)
                data["extended_stats"] = [
                    {"key": LLM_TAB, "data": llm_table_rows(state["llm"]["patterns"])},
                    {"key": SOAK_TAB, "data": soak_table_rows(state, page_path)}]
                response.set_data(json.dumps(data))
        elif path in (prefix + "/", prefix or "/") and response.status_code == 200 and response.mimetype == "text/html":
            html = response.get_data(as_text=True)
            if "llmsoak-soak-link" not in html and "</body>" in html:
                response.set_data(html.replace("</body>", link + "</body>", 1))
        return response
