"""The Soak page's server side: one ``SoakMonitor`` per Locust master (or local runner).

A greenlet calls ``tick()`` every ``poll_interval_s``: it polls the sampler's live endpoint, reads
the LLM snapshot from the Locust side (on a master that is the state merged from the workers),
records a bounded LLM history for the latency chart, recomputes the memory trend at most every
``trend_interval_s`` (in gevent's thread pool, so the web server keeps answering), and checks the
profile's thresholds. ``state()`` only reads what the last tick left, so any number of open pages
costs the sampler and the analysis nothing more.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from pathlib import Path

import gevent

from llmsoak.locust.profile_switch import get_profile_switch
from llmsoak.profile import load_profile
from llmsoak.webui import llm_view
from llmsoak.webui.alerts import AlertLog, check_thresholds
from llmsoak.webui.live_source import SamplerSource, normalise_sampler_url
from llmsoak.webui.memory_trend import memory_trend

logger = logging.getLogger(__name__)

RECENT_LLM_POINTS = 1800
"""LLM history at full tick resolution: 1 h at 2 s."""
MINUTE_LLM_POINTS = 10_080
"""LLM history one point per minute: 7 days."""
LLM_SERIES_KEYS = ("users", "current_ttft_p50_ms", "current_ttft_p95_ms", "current_ttft_p99_ms",
                   "current_tokens_per_s", "current_error_rate", "requests")


class ProfileCache:
    """The llmsoak profile named by Locust's ``--profile`` (also editable in the start form), reloaded when its file changes."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self.profile = None
        self.error: str | None = None

    def get(self, path: str | None):
        if not path:
            self.profile, self.error, self._key = None, None, None
            return None
        try:
            mtime = os.stat(path).st_mtime
        except OSError as err:
            self.profile, self.error, self._key = None, f"profile {path}: {err.strerror}", None
            return None
        key = (path, mtime)
        if key != self._key:
            self._key = key
            try:
                self.profile, self.error = load_profile(path), None
            except Exception as err:  # noqa: BLE001 - ProfileError or anything else: say it on the page
                self.profile, self.error = None, str(err)
        return self.profile


def resolve_sampler_url(options, profile) -> tuple[str | None, str]:
    """The sampler live URL and where it came from: ``--sampler-url``, ``LLMSOAK_SAMPLER_URL``, or the
    profile (``sampler.remote``, else a fixed ``sampler.listen``)."""
    url = getattr(options, "sampler_url", None) if options is not None else None
    if url:
        return url, "--sampler-url"
    if os.environ.get("LLMSOAK_SAMPLER_URL"):
        return os.environ["LLMSOAK_SAMPLER_URL"], "LLMSOAK_SAMPLER_URL"
    if profile is not None and profile.sampler.remote:  # the target's sampler on its own host
        return profile.sampler.remote, "profile sampler.remote"
    listen = profile.sampler.listen if profile is not None else None
    if listen and not str(listen).endswith(":0"):
        return str(listen), "profile sampler.listen"
    return None, "none"


class SoakMonitor:
    """Collects sampler data, LLM metrics, the memory trend and alerts for the web UI."""

    def __init__(self, environment, *, poll_interval_s: float = 2.0, trend_interval_s: float = 30.0,
                 clock=time.time) -> None:
        self.environment = environment
        self.poll_interval_s = poll_interval_s
        self.trend_interval_s = trend_interval_s
        self._clock = clock
        self.profiles = ProfileCache()
        self.source = SamplerSource(None)
        self.sampler_url_origin = "none"
        self.alerts = AlertLog()
        self.llm_rows: list[dict] = []
        self.llm_error: str | None = None
        self._llm_recent: deque[tuple] = deque(maxlen=RECENT_LLM_POINTS)
        self._llm_minutes: deque[tuple] = deque(maxlen=MINUTE_LLM_POINTS)
        self._llm_minute: int | None = None
        self.trend: dict = {"status": "waiting", "reason": "no sampler data yet"}
        self._trend_at = 0.0
        self.ticks = 0
        self.last_tick_s: float | None = None
        self._stopped = False

    # ------------------------------------------------------------------ configuration
    def _switch(self):
        return get_profile_switch(self.environment)

    def profile_path(self) -> str | None:
        """The profile the users run (llmsoak's locustfile), else Locust's ``profile`` option."""
        switch = self._switch()
        if switch is not None:
            return switch.path
        env = self.environment
        path = getattr(env, "profile", None) or getattr(getattr(env, "parsed_options", None), "profile", None)
        path = path or os.environ.get("LLMSOAK_PROFILE")  # the locustfile accepts it too
        return str(path) if path else None

    def profile_error(self) -> str | None:
        """Why the last profile named in the start form was not used, else a reload problem."""
        switch = self._switch()
        return (switch.error if switch is not None else None) or self.profiles.error

    def _configure(self):
        profile = self.profiles.get(self.profile_path())
        url, origin = resolve_sampler_url(getattr(self.environment, "parsed_options", None), profile)
        current = self.source.url
        if url:
            try:
                url = normalise_sampler_url(url)
            except ValueError as err:
                self.source, self.sampler_url_origin = SamplerSource(None), origin
                self.source.error = f"{origin}: {err}"
                return profile
        if url != current:
            self.source = SamplerSource(url)
            self.sampler_url_origin = origin
            self._trend_at = 0.0
        events_path = (profile.run.events_path if profile is not None else None) or os.environ.get("LLMSOAK_EVENTS")
        self.alerts.events_path = Path(events_path) if events_path else None
        return profile

    # ------------------------------------------------------------------ the loop
    def tick(self) -> None:
        """One round: sampler, LLM snapshot, history, trend (when due), alerts. Never raises."""
        started = time.perf_counter()
        try:
            profile = self._configure()
            self.source.poll()
            snapshot, self.llm_error = llm_view.read_snapshot(self.environment)
            self.llm_rows = llm_view.pattern_rows(snapshot)
            now = self._clock()
            self._record_llm(now)
            # While no trend exists yet, retry every tick (cheap: it returns at once without data).
            due = self.trend.get("status") != "ok" or now - self._trend_at >= self.trend_interval_s
            if due and self.source.url:
                self._trend_at = now
                self.trend = self._compute_trend(profile)
            self._check_alerts(profile)
        except Exception:  # noqa: BLE001 - a week-long run must not lose its page to one bad tick
            logger.exception("llmsoak web UI: monitor tick failed")
        self.ticks += 1
        self.last_tick_s = round(time.perf_counter() - started, 4)

    def _compute_trend(self, profile) -> dict:
        columns, rows = self.source.frame_rows()
        limit = profile.slo.memory_limit_bytes if profile is not None else None
        # The fit is CPU work: a pool thread keeps the web server's greenlets answering meanwhile.
        return gevent.get_hub().threadpool.apply(memory_trend, (columns, rows), {"limit_bytes": limit})

    def _record_llm(self, now: float) -> None:
        overall = llm_view.overall_row(self.llm_rows)
        if overall is None:
            return
        point = (round(now, 3), *(overall.get(k) for k in LLM_SERIES_KEYS))
        self._llm_recent.append(point)
        minute = int(now // 60)
        if self._llm_minute is not None and minute != self._llm_minute and len(self._llm_recent) > 1:
            self._llm_minutes.append(self._llm_recent[-2])
        self._llm_minute = minute

    def _check_alerts(self, profile) -> None:
        slo = profile.slo if profile is not None else None
        overall = llm_view.overall_row(self.llm_rows) or {}
        rss = self.source.latest_sample().get("rss_bytes")
        # Latency and errors judged on the current window when it has requests, else the whole run.
        current = bool(overall.get("current_requests"))
        alerts = check_thresholds(
            slo, rss_bytes=rss,
            ttft_p95_ms=overall.get("current_ttft_p95_ms" if current else "ttft_p95_ms"),
            error_rate=overall.get("current_error_rate" if current else "error_rate"),
            requests=int((overall.get("current_requests") if current else overall.get("requests")) or 0))
        self.alerts.update(alerts)

    def run_forever(self) -> None:
        """The greenlet body: tick every ``poll_interval_s`` until ``stop()``."""
        while not self._stopped:
            self.tick()
            gevent.sleep(self.poll_interval_s)

    def stop(self) -> None:
        self._stopped = True

    # ------------------------------------------------------------------ views
    def llm_series(self) -> dict:
        """``{"columns": ["timestamp", ...LLM_SERIES_KEYS], "rows": [...]}``: per-minute points, then recent."""
        first_recent = self._llm_recent[0][0] if self._llm_recent else None
        rows = [list(p) for p in self._llm_minutes if first_recent is None or p[0] < first_recent]
        recent = list(self._llm_recent)
        if len(recent) > 600:  # thin the hour at full resolution for the browser
            step = -(-len(recent) // 600)
            recent = recent[::step] + [recent[-1]]
        rows.extend(list(p) for p in recent)
        return {"columns": ["timestamp", *LLM_SERIES_KEYS], "rows": rows}

    def server_state(self, series: bool = True) -> dict | None:
        """The target's own gauges (KV cache, running/waiting requests, preemptions) when the
        sampler scrapes its /metrics (``llmsoak sample --metrics-format server``); else None."""
        src = self.source
        latest = src.server_latest()
        if latest is None:
            return None
        out: dict = {"latest": latest}
        if series:
            out.update({c: src.server_series(c) for c in ("kv_cache_usage_percent", "requests_running",
                                                          "requests_waiting", "preemptions_total")})
        return out

    def state(self, *, series: bool = True) -> dict:
        """Everything the Soak page shows, JSON-ready (see docs/webui.md for the fields).

        ``series=False`` leaves out the chart series (for Locust's table tabs, polled every 2 s).
        """
        profile = self.profiles.profile
        slo = profile.slo if profile is not None else None
        runner = getattr(self.environment, "runner", None)
        src = self.source
        latest = src.latest or {}
        return {
            "schema": 1,
            "generated_at": round(self._clock(), 3),
            "locust": {"state": getattr(runner, "state", None), "user_count": getattr(runner, "user_count", None),
                       "role": type(runner).__name__ if runner is not None else None,
                       "worker_count": getattr(runner, "worker_count", None)
                       if type(runner).__name__ == "MasterRunner" else None},
            "profile": {"path": self.profile_path(), "name": profile.name if profile is not None else None,
                        "error": self.profile_error(),
                        "slo": {k: getattr(slo, k, None) for k in ("ttft_p95_ms", "error_rate",
                                                                    "memory_warn_bytes", "memory_limit_bytes")}},
            "llm": {"patterns": self.llm_rows, "error": self.llm_error, "series": self.llm_series() if series else None},
            "sampler": {"url": src.url, "url_from": self.sampler_url_origin, "status": src.status,
                        "error": src.error, "name": latest.get("name"), "pid": latest.get("pid"),
                        "segment": latest.get("segment"), "interval_s": latest.get("interval_s"),
                        "latest": src.latest_sample(),
                        "rss_bytes": src.series("rss_bytes") if series else None,
                        "cpu_percent": src.series("cpu_percent") if series else None,
                        "events": list(src.events)[-50:]},
            "server": self.server_state(series),
            "trend": self.trend if series else {k: v for k, v in self.trend.items() if k not in ("envelope", "trend")},
            "alerts": self.alerts.to_json(),
            "monitor": {"ticks": self.ticks, "last_tick_s": self.last_tick_s,
                        "poll_interval_s": self.poll_interval_s},
        }
