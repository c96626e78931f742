"""Every sentence the analysis says about a verdict, in one place.

The statistics (``verdict.py``) return numbers and a ``reason.Reason`` (a code and its figures);
this module turns them into words for every reporter: the ``reason`` of verdict.json
(docs/formats.md: "one sentence a person can act on"), the CLI's stdout lines
(``commands/analyze.py``), the end-of-run line of ``llmsoak run``, the tables of summary.md and
report.html, and the web UI's trend cards. Figures have three significant digits
(``formatting.py``). It imports no numpy, so the orchestrator can use it without the analysis.
"""

from __future__ import annotations

import math

from llmsoak.analysis import reason as R
from llmsoak.analysis.reason import MAX_EXTRAPOLATION, Reason
from llmsoak.formatting import (
    format_bytes,
    format_bytes_per_hour,
    format_hours,
    format_pct_per_hour,
    format_sig,
    format_span_h,
    format_value,
    snap,
)

ZERO_LEVEL_FRACTION = 1e-6  # a level below a millionth of the threshold (or slope) counts as zero
NOT_A_TREND = "not a trend yet"

_SETTLING = {"memory": "warm-up or allocator steps", "count": "a pool or warm-up opening a few more",
             "cpu": "warm-up or load settling", "latency": "queues and caches settling",
             "throughput": "load settling", "rate": "a burst of errors"}


# ---------------------------------------------------------------- durations
def more_hours(hours: float) -> str:
    """ "1 more hour", "3 more hours" (rounded up)."""
    n = math.ceil(hours)
    return f"{n} more hour" if n == 1 else f"{n} more hours"


def more_time(hours: float) -> str:
    """ "3 more minutes" under an hour, else "N more hours"."""
    if hours < 1.0:
        n = max(1, math.ceil(hours * 60 - 1e-9))
        return f"{n} more minute" if n == 1 else f"{n} more minutes"
    return more_hours(hours)


# ---------------------------------------------------------------- the reason of one metric
def reason_sentence(r: Reason) -> str:
    """The one sentence a person can act on, for ``r`` (verdict.json ``reason``)."""
    render = _RENDER.get(r.code)
    if render is None:
        raise ValueError(f"no wording for reason code {r.code!r}")
    return render(r)


def _pooled_note(r: Reason) -> str:
    if r.pooled_runs < 2:
        return ""
    return (f" (pooled over {r.pooled_runs} runs between restarts, "
            f"{r.pooled_growing or 0.0:.0%} of them growing)")


def _fv(r: Reason):
    def fv(x):
        return format_value(x, r.unit)
    return fv


def _too_few_samples(r: Reason) -> str:
    return (f"{r.metric} has only {r.samples} sample(s); at least {r.min_samples} over an hour or more "
            "are needed to judge a trend.")


def _too_short_to_fit(r: Reason) -> str:
    return (f"{r.metric}: the current run of the target ({r.regime_hours:.1f} h) is too short to fit a trend; "
            "collect at least an hour of samples.")


def _rate_and_span(r: Reason) -> tuple[str, str]:
    """("<slope>/h (95% CI a to b/h, +x %/h)", "over the last ...") for the trend sentences."""
    fv = _fv(r)
    threshold, level = r.threshold_per_hour, r.level
    resolution = 1e-4 * max(threshold, abs(level) * 1e-6, 1e-300)
    s, lo, hi = (snap(x, resolution) for x in (r.slope_per_hour, r.slope_lo, r.slope_hi))
    rate = f"{fv(s)}/h (95% CI {fv(lo)} to {fv(hi)}/h"
    if r.growth_pct_per_hour is not None:
        rate += f", {format_pct_per_hour(snap(r.growth_pct_per_hour, 1e-6))})"
    elif abs(level) <= ZERO_LEVEL_FRACTION * max(threshold, abs(r.slope_per_hour), 1e-300):
        rate += "; its level is 0, so growth in %/h is undefined)"
    else:
        rate += ")"
    regime_h, from_h = r.regime_hours, r.warmup_hours or 0.0
    since = (f"over the last {format_span_h(regime_h)} (after the first {format_span_h(from_h)} of warm-up or a "
             "level shift)" if from_h > 0.05 * max(regime_h, 1e-9) else f"over {format_span_h(regime_h)}")
    return rate, since


def _memory_like(r: Reason) -> bool:
    return r.kind in ("memory", "count")


def times(x: float) -> str:
    """An extrapolation factor for a sentence: "4.6×", "75×", "2,520×"."""
    if x < 10:
        return f"{format_sig(x, 2)}×"
    return f"{int(float(format_sig(x, 3))):,}×"


def verdict_word(mv: dict) -> str:
    """The verdict of one per-metric dict for a headline: "leak (slow)", "ok", "inconclusive"."""
    word = str(mv.get("verdict", "n/a"))
    return f"{word} ({mv['severity']})" if word == "leak" and mv.get("severity") else word


def _leak_noun(r: Reason) -> str:
    return "leak" if _memory_like(r) else "drift"


def _projection_clause(r: Reason) -> str:
    """"; after 7 days of uptime it would be X (...)" or why there is no projection; "" when not projected."""
    fv = _fv(r)
    x = r.extrapolation
    if x is None:  # a utilisation: never projected
        return ""
    if r.projected_7d is None:
        return (f"; no 7-day projection: {format_span_h(r.regime_hours)} of data would be carried "
                f"{times(x)} beyond it")
    text = f"; after 7 days of uptime it would be {fv(r.projected_7d)}"
    if r.projected_interval_7d is not None and x >= 0.1:
        lo, hi = r.projected_interval_7d
        text += (f" (95% interval {fv(lo)} to {fv(hi)}, carried {times(x)} beyond the "
                 f"{format_span_h(r.regime_hours)} of data)")
    return text


def _growing(r: Reason) -> str:
    fv = _fv(r)
    rate, since = _rate_and_span(r)
    grows = "grows" if _memory_like(r) else ("falls" if r.direction < 0 else "drifts up")
    text = f"{r.metric} {grows} {rate} {since}{_pooled_note(r)}"
    if r.severity is not None:
        text += f": a {r.severity} {_leak_noun(r)}"
        if r.hours_to_limit is not None:
            text += f", it reaches the {fv(r.limit)} limit in {format_hours(r.hours_to_limit)}"
        elif r.growth_pct_per_hour is not None and (r.extrapolation or 0.0) <= MAX_EXTRAPOLATION:
            text += f" ({format_pct_per_hour(r.growth_pct_per_hour * 168).removesuffix(' %/h')} % of its level a week)"
    elif r.hours_to_limit is not None:
        text += f"; it reaches the {fv(r.limit)} limit in {format_hours(r.hours_to_limit)}"
    return text + _projection_clause(r) + "."


def _ruled_out(r: Reason) -> str:
    fv = _fv(r)
    rate, since = _rate_and_span(r)
    sign = r.direction
    resolution = 1e-4 * max(r.threshold_per_hour, abs(r.level) * 1e-6, 1e-300)
    lo, hi = (snap(x, resolution) for x in (r.slope_lo, r.slope_hi))
    bad = "growth" if sign > 0 else "a fall"
    bad_lo, bad_hi = (lo, hi) if sign > 0 else (-hi, -lo)
    memory_like = _memory_like(r)
    if bad_lo > 0:  # real but slower than counts as a leak
        what = ("grows slowly" if memory_like else "drifts slowly") if sign > 0 else "falls slowly"
    elif bad_hi < 0:  # significant movement in the harmless direction: say so, not "flat"
        what = "falls" if sign > 0 else "rises"
    else:
        what = "is flat" if memory_like else "shows no drift"
    # Only what the interval really excludes: its upper end (in the bad direction), not the threshold.
    ruled_out = (f"which rules out {bad} of {fv(bad_hi)}/h or more" if bad_hi > 0 else f"which rules out any {bad}")
    threshold = r.threshold_per_hour
    counts = f" ({'a ' + _leak_noun(r) if memory_like else 'a drift'} counts from {fv(threshold)}/h)" if threshold > 0 else ""
    return f"{r.metric} {what}: {rate} {since}{_pooled_note(r)}, {ruled_out}{counts}."


def _warming_up(r: Reason) -> str:
    """Why growth that slows down is "inconclusive": the evidence, and how much longer to run."""
    fv = _fv(r)
    memory_like = _memory_like(r)
    head = "is still warming up: its growth" if memory_like else "is still settling: its drift"
    first, middle, last = r.warmup_thirds_per_hour
    text = (f"{r.metric} {head} slowed from {fv(first)}/h in the first third of the last "
            f"{format_span_h(r.warmup_hours_seen)} to {fv(last)}/h in the last")
    evidence = []
    if r.warmup_thirds_falling:
        evidence.append(f"each later third grew less than the one before: {fv(first)}, {fv(middle)}, {fv(last)}/h")
    if r.warmup_fit_gain is not None and r.warmup_fit_gain >= 1.5 and r.warmup_level_off is not None:
        evidence.append(f"a levelling-off curve fits {format_sig(r.warmup_fit_gain, 2)}× better than a straight "
                        f"line and tops out near {fv(r.warmup_level_off)}")
    if evidence:
        text += f" ({'; '.join(evidence)})"
    return (text + f": not a leak until it keeps growing at a steady rate; about {more_time(r.hours_needed)} "
            "of samples would tell whether it levels off.")


def _changes_course(r: Reason) -> str:
    rate, _since = _rate_and_span(r)
    return (f"{r.metric} changes course during the run ({rate} in its latest stretch{_pooled_note(r)}); "
            f"no single trend yet, about {more_hours(r.hours_needed)} at a steady load would tell.")


def _undecided(r: Reason) -> str:
    fv = _fv(r)
    rate, since = _rate_and_span(r)
    return (f"{r.metric} cannot be judged yet: {rate} {since}{_pooled_note(r)} includes both no growth and "
            f"the {fv(r.threshold_per_hour)}/h threshold; about {more_hours(r.hours_needed)} of samples would decide.")


def _too_little_change(r: Reason) -> str:
    """Why a fast but small observed change is "inconclusive": what was seen, what is needed, how long."""
    def fv(x):  # a change of a percentage is in points, not in % of itself
        if r.unit in ("percent", "ratio"):
            text = format_sig(100 * x if r.unit == "ratio" else x)
            return f"{text} {'point' if text == '1' else 'points'}"
        return format_value(x, r.unit)

    observed, level = r.observed_change, r.level
    moved = "rose" if observed >= 0 else "fell"
    pct = f" ({format_sig(100 * abs(observed) / abs(level))} % of its level)" if abs(level) > 0 else ""
    what = _SETTLING.get(r.kind, "warm-up")
    return (f"{r.metric} {moved} {fv(abs(observed))}{pct} in {format_span_h(r.regime_hours)}{_pooled_note(r)}: too little to "
            f"tell a leak from {what} (a leak verdict needs {fv(r.min_change)} of observed change); "
            f"about {more_hours(r.hours_needed)} of samples would decide.")


def _too_short_to_rule_out(r: Reason) -> str:
    """Why a flat-looking metric is not "ok": a leak at the threshold would not have shown yet."""
    u, threshold, span_h = r.unit, r.threshold_per_hour, r.regime_hours
    return (f"{r.metric}: too short to rule out a leak of {format_value(threshold, u)}/h (it would have grown "
            f"only {format_value(threshold * span_h, u)} in {format_span_h(span_h)}{_pooled_note(r)}, under twice the "
            f"measurement resolution of {format_value(r.resolution, u)}); about {more_time(r.hours_needed)} "
            "of samples would tell.")


def _utilisation_settling(r: Reason) -> str:
    """Why a utilisation rising in a short run is not a drift: load settles over minutes."""
    s = r.slope_per_hour
    moved = "rose" if s >= 0 else "fell"
    return (f"{r.metric} {moved} {format_value(abs(s), r.unit)}/h over {format_span_h(r.regime_hours)}{_pooled_note(r)}: "
            f"a utilisation settles for minutes after the load starts, so a drift verdict needs at least "
            f"{format_span_h(r.min_trend_hours)} of steady load; about {more_time(r.hours_needed)} of samples "
            "would tell.")


_RENDER = {
    R.TOO_FEW_SAMPLES: _too_few_samples, R.TOO_SHORT_TO_FIT: _too_short_to_fit, R.GROWING: _growing,
    R.RULED_OUT: _ruled_out, R.CHANGES_COURSE: _changes_course, R.UNDECIDED: _undecided,
    R.TOO_LITTLE_CHANGE: _too_little_change, R.TOO_SHORT_TO_RULE_OUT: _too_short_to_rule_out,
    R.UTILISATION_SETTLING: _utilisation_settling, R.WARMING_UP: _warming_up,
}


def too_short_note(metric: str, unit: str, threshold_per_hour: float, resolution: float) -> str:
    """The verdict.json note for a count set aside because the run is too short to resolve it."""
    total_h = 2.0 * resolution / threshold_per_hour  # a run this long would resolve it
    return (f"{metric}: too short to rule out {format_value(threshold_per_hour, unit)}/h; about "
            f"{format_span_h(total_h)} of samples would tell (not counted in the verdict: memory decided it)")


# ---------------------------------------------------------------- figures in tables (report, summary, CLI)
def fmt_figure(value, unit: str, per_hour: bool = False, resolution: float = 1e-9) -> str:
    """``value`` with 3 significant digits in human units; ``resolution`` snaps dust to 0; None → "–"."""
    if value is None:
        return "–"
    value = snap(value, resolution)
    suffix = "/h" if per_hour else ""
    if unit in ("bytes", "percent", "ratio"):
        return f"{format_value(value, unit)}{suffix}"
    if unit == "ms":
        return f"{format_sig(value)} ms{suffix}"
    return f"{format_sig(value)}{suffix}"


def dust(mv: dict) -> float:
    """Slopes smaller than 1/10,000 of the metric's practical threshold read as 0."""
    thr = mv.get("min_growth_per_hour")
    return 1e-4 * thr if thr else 1e-9


def fmt_interval(values, unit: str, per_hour: bool = False, resolution: float = 1e-9) -> str:
    """``[a, b]`` of an interval, or "" when it is missing."""
    if not values or None in values:
        return ""
    return f"[{fmt_figure(values[0], unit, per_hour, resolution)}, {fmt_figure(values[1], unit, per_hour, resolution)}]"


def figure_cells(mv: dict) -> dict[str, tuple[str, bool]]:
    """Table cells of one per-metric verdict (verdict.json dict) as ``{column: (text, muted)}``.

    Only a leak's 7-day projection and hours to the limit are findings. For "ok" the projection is
    the flat level carried forward (shown muted, marked "no leak"); for "inconclusive" the line is
    not a trend yet, so the cell says so instead of a number that would read as a finding
    (verdict.json keeps every figure).
    """
    unit = mv.get("unit") or ""
    res = dust(mv)
    verdict = mv.get("verdict")
    pct, htl, proj = mv.get("growth_pct_per_hour"), mv.get("hours_to_limit"), mv.get("projected_7d")
    cells = {
        "slope": (fmt_figure(mv.get("slope_per_hour"), unit, True, res), False),
        "interval": (fmt_interval(mv.get("slope_interval_per_hour"), unit, True, res), False),
        "growth": ("–" if pct is None else format_pct_per_hour(snap(pct, 1e-6)).removesuffix(" %/h"), False),
    }
    if verdict == "leak":
        if proj is None and mv.get("extrapolation") is not None:  # too far beyond the data
            cells["projected"] = (f"({projection_note(mv)})", True)
            cells["projected_interval"] = ("–", True)
        else:
            cells["projected"] = (fmt_figure(proj, unit), False)
            cells["projected_interval"] = (fmt_interval(mv.get("projected_interval_7d"), unit), False)
        cells["hours_to_limit"] = ("–" if htl is None else format_hours(htl), False)
    elif verdict == "ok":
        cells["projected"] = ("–" if proj is None else f"{fmt_figure(proj, unit)} (no leak)", True)
        cells["projected_interval"] = ("–", True)
        cells["hours_to_limit"] = ("–" if htl is None else f"{format_hours(htl)} (slow growth)", True)
    else:
        cells["projected"] = ("–" if proj is None else f"({NOT_A_TREND})", True)
        cells["projected_interval"] = ("–", True)
        cells["hours_to_limit"] = ("–" if htl is None else f"({NOT_A_TREND})", True)
    return cells


def projection_note(mv: dict) -> str:
    """Why a per-metric dict has no 7-day projection: "none from 4 min of data (2,520× beyond it)"."""
    x, hours = mv.get("extrapolation"), mv.get("regime_hours")
    if x is None:
        return "none: a utilisation is not projected"
    if hours is None:
        return "none"
    return f"none from {format_span_h(hours)} of data ({times(x)} beyond it)"


# ---------------------------------------------------------------- one-line summaries
def cli_lines(verdict: dict) -> list[str]:
    """``llmsoak analyze``'s stdout: the verdict line, then one line per metric (reasons for deciding ones)."""
    decided_by = set(verdict.get("decided_by") or [])
    lines = [f"verdict: {verdict['verdict']} ({verdict.get('source')})"]
    groups = [("", verdict.get("metrics", {})), ("latency ", verdict.get("latency") or {})]
    for prefix, metrics in groups:
        for metric, v in metrics.items():
            unit = v.get("unit") or ""
            text = f"  {prefix}{metric}: {verdict_word(v)}, {fmt_figure(v.get('slope_per_hour'), unit, True)}"
            # A projection is a finding only for a leak; for ok/inconclusive it would read as one.
            is_leak = v.get("verdict") == "leak"
            if is_leak and unit == "bytes" and v.get("projected_7d") is not None:
                text += f", 7 days {fmt_figure(v.get('projected_7d'), unit)}"
            if is_leak and v.get("hours_to_limit") is not None:
                text += f", limit in {v['hours_to_limit']:.1f} h"
            if metric in decided_by and v.get("reason"):
                text += f"\n      {v['reason']}"
            lines.append(text)
    if (verdict.get("load") or {}).get("summary"):
        lines.append(f"  load: {verdict['load']['summary']}")
    if (verdict.get("server") or {}).get("reason"):
        lines.append(f"  server: {verdict['server']['reason']}")
    top = (verdict.get("tracemalloc") or {}).get("top") or []
    if top:
        lines.append(f"  top growing allocation site: {top[0]['site']} (+{fmt_figure(top[0]['growth_bytes'], 'bytes')})")
    if verdict.get("notes"):
        lines.append(f"  notes: {len(verdict['notes'])} (repairs and gaps: see the report / verdict.json)")
    return lines


def headline_metric(verdict: dict) -> tuple[str | None, dict]:
    """The metric that decided the verdict (``decided_by``; the first whose own verdict matches the
    overall one, RSS first), and its entry; (None, {}) when the analysis names none."""
    metrics = verdict.get("metrics") or {}
    names = [m for m in (verdict.get("decided_by") or []) if m in metrics]
    names.sort(key=lambda m: m != "rss_bytes")  # memory first when it is among them: the headline
    for name in names:
        if (metrics[name] or {}).get("verdict") == verdict.get("verdict"):
            return name, metrics[name] or {}
    return (names[0], metrics[names[0]] or {}) if names else (None, {})


def verdict_line(verdict: dict | None) -> str:
    """``leak (decided by rss_bytes), +12.0 MiB/h, 7-day projection 2.1 GiB: <the metric's reason>``:
    the end-of-run and checkpoint line of ``llmsoak run`` (events, terminal, run.json)."""
    if not verdict:
        return "no verdict"
    name, metric = headline_metric(verdict)
    word = str(verdict.get("verdict"))
    severity = metric.get("severity") if word == "leak" and metric.get("verdict") == "leak" else None
    head = word + (f" ({severity}, decided by {name})" if severity and name else
                   f" (decided by {name})" if name else "")
    parts = [head]
    if name == "rss_bytes" and metric.get("slope_per_hour") is not None:
        parts.append(format_bytes_per_hour(metric["slope_per_hour"]))
    # A projection is a finding only for a leak (the analysis greys it out otherwise).
    if name == "rss_bytes" and metric.get("verdict") == "leak" and metric.get("projected_7d") is not None:
        parts.append(f"7-day projection {format_bytes(metric['projected_7d'])}")
    line = ", ".join(parts)
    return f"{line}: {metric['reason']}" if metric.get("reason") else line


# ---------------------------------------------------------------- the web UI's live trend cards
def trend_cards(mv: dict) -> list[list[str]]:
    """The Soak page's trend cards for a memory verdict dict: ``[label, value, css class, note]`` rows.

    Only a leak's 7-day projection and hours to the limit are findings (muted otherwise). A rate per
    hour is no headline from a regime under 3 minutes (1/``MAX_EXTRAPOLATION`` of an hour: a 45-s run
    showed "+3660 %/h"): the slope card then says how much it moved in how long, the growth card
    nothing; a projection held back for reaching too far beyond its data says so.
    """
    verdict = mv.get("verdict")
    slope, observed, hours = mv.get("slope_per_hour"), mv.get("observed_change"), mv.get("regime_hours")
    ci = mv.get("slope_interval_per_hour") or [None, None]
    rising = ci[0] is not None and ci[0] > 0
    brief = hours is not None and hours * MAX_EXTRAPOLATION < 1.0

    def signed(x: float) -> str:
        text = format_value(x, "bytes")
        return ("+" if x > 0 and text != "0 B" else "") + text

    if slope is None:
        slope_card = ["Memory slope", "–", "", ""]
    elif brief and observed is not None:
        slope_card = ["Memory slope", f"{signed(observed)} in {format_span_h(hours)}", "", "(too short for a rate per hour)"]
    else:
        slope_card = ["Memory slope", f"{signed(slope)}/h", "", ""]
    pct = mv.get("growth_pct_per_hour")
    if brief:
        growth_card = ["Growth", "—", "muted", f"(not per hour from {format_span_h(hours)} of data)"]
    else:
        growth_card = ["Growth", "–" if pct is None else format_pct_per_hour(snap(pct, 1e-6)), "", ""]
    proj = mv.get("projected_7d")
    if verdict == "leak" and proj is not None:
        proj_card = ["Projected at 7 d", format_value(proj, "bytes"), "", ""]
    elif verdict == "leak":
        proj_card = ["Projected at 7 d", "—", "muted", f"({projection_note(mv)})"]
    elif verdict == "ok" and proj is not None:
        proj_card = ["Projected at 7 d", format_value(proj, "bytes"), "muted", "(no leak: flat)"]
    elif verdict == "ok":
        proj_card = ["Projected at 7 d", "–", "", ""]
    else:
        proj_card = ["Projected at 7 d", "—", "muted", f"({NOT_A_TREND})"]
    htl = mv.get("hours_to_limit")
    if htl is not None and (verdict == "leak" or rising):
        htl_card = ["Hours to limit", format_hours(htl), "" if verdict == "leak" else "muted",
                    "" if verdict == "leak" else f"({NOT_A_TREND})"]
    elif verdict == "inconclusive":
        htl_card = ["Hours to limit", "—", "muted", f"({NOT_A_TREND})"]
    else:
        htl_card = ["Hours to limit", "–", "", ""]
    word = verdict_word(mv) if verdict else "–"
    return [slope_card, growth_card, proj_card, htl_card,
            ["Verdict so far", word, verdict if verdict in ("leak", "ok") else "", ""]]


# ---------------------------------------------------------------- the server's own telemetry
def _n(value) -> str:
    """A count or mean of requests: ``3``, ``2.5``, ``0.04``."""
    return "–" if value is None else format_sig(value)


def queue_reason(q: dict) -> str:
    """One sentence on the waiting requests (``server.queue`` of verdict.json)."""
    if q.get("verdict") == "inconclusive":
        return (f"only {q.get('samples', 0)} scrape(s) of the server's waiting requests: too few to say "
                "whether its queue grows")
    first, last = _n(q.get("first_quarter_mean")), _n(q.get("last_quarter_mean"))
    if q["verdict"] == "growing":
        return (f"the server's queue grows: {first} waiting requests on average in the first quarter of "
                f"the run, {last} in the last (up to {_n(q.get('max'))}): it takes in more than it "
                "serves; fewer users or more capacity (replicas, batch size, KV cache)")
    return (f"no queue growth: {first} waiting requests on average in the first quarter of the run, "
            f"{last} in the last (at most {_n(q.get('max'))})")


def kv_cache_reason(kv: dict) -> str:
    """One sentence on the KV-cache use (``server.kv_cache`` of verdict.json)."""
    if kv.get("share_full") is None:
        return "the server reported no KV-cache use"
    share = f"{100.0 * kv['share_full']:.0f} %"
    full = f"{format_sig(kv['full_percent'])} %"
    figures = f"mean {format_sig(kv['mean'])} %, p95 {format_sig(kv['p95'])} %, max {format_sig(kv['max'])} %"
    if kv["verdict"] == "saturated":
        return (f"KV cache saturated: at or above {full} for {share} of the run ({figures}); requests wait "
                "or are preempted for cache space: more KV cache (memory, a shorter context) or fewer users")
    if kv["verdict"] == "inconclusive":
        return f"only {kv['samples']} KV-cache reading(s): too few to judge ({figures})"
    return f"KV cache not saturated: at or above {full} for {share} of the run ({figures})"


def preemptions_reason(total: float | None, duration_h: float) -> str:
    """One sentence on the preemptions counted during the run."""
    if not total:
        return "no request was preempted"
    span = format_span_h(duration_h) if duration_h > 0 else "the run"
    return (f"{format_sig(total)} request(s) preempted in {span}: the KV cache ran out and vLLM "
            "recomputed or swapped them (it costs latency)")


def server_reason(server: dict) -> str:
    """The headline of the server telemetry: what is wrong first, else that nothing is."""
    problems = [server[k]["reason"] for k in ("queue", "kv_cache")
                if server.get(k) and server[k]["verdict"] in ("growing", "saturated")]
    if (server.get("preemptions") or {}).get("total"):
        problems.append(server["preemptions"]["reason"])
    if problems:
        return "; ".join(problems)
    if not server.get("samples"):
        return ("not exposed: the server's /metrics never answered with the gauges llmsoak records "
                "(running and waiting requests, KV cache, preemptions); events.csv says why")
    if not server.get("exported"):
        return "not exposed: the server's /metrics had none of the gauges llmsoak records"
    parts = [server[k]["reason"] for k in ("queue", "kv_cache") if server.get(k)]
    return "; ".join(parts) or "no server telemetry to judge"
