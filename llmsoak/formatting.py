"""Numbers for people: sizes, rates, durations, percentages and counts, formatted one way everywhere.

Used by the analysis (sentences, tables, chart titles), ``llmsoak run`` (progress line, status,
SLO details) and the web UI's Python side. Two precisions, each with its own functions:

- *three significant digits, no numerical dust* for findings (reports, verdict reasons, the
  web UI's trend): ``format_sig``, ``format_bytes_sig``, ``format_value``, ``format_pct_per_hour``,
  ``format_hours``, ``format_span_h``: "5464.123 %/h" reads "5460 %/h", "6.42e-16 count/h"
  reads "0 count/h" (with ``snap``) and 2,147,483,648 bytes reads "2 GiB";
- *fixed decimals* for live readings that change every second (the terminal's progress line,
  ``--status``): ``format_bytes`` ("1.2 GiB"), ``format_duration`` ("1h02m05s"),
  ``format_fixed``, ``format_num``, ``format_bytes_per_hour``.

A missing value (None, NaN) reads "n/a" unless a function takes a ``missing`` text. The Soak
page's JavaScript keeps its own copy of the web UI's functions (llmsoak/webui/static/format.js:
``fmtSig``, ``fmtBytes``, ``fmtPct``, ``fmtHours``, ``fmtNum``), checked against these on the
same values by tests/webui/test_format_js.py. So that both give the same text, rounding here
follows JavaScript's: a tie rounds away from zero (``2500.5`` → ``"2501"``, where Python's own
formatting would give ``"2500"``).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal, localcontext

SIG_DIGITS = 3
_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def _missing(v: float | None) -> bool:
    return v is None or not math.isfinite(float(v))


def _round_half_up(x: float) -> float:
    """The nearest integer, ties upwards (JavaScript's ``Math.round``; used on values >= 0)."""
    low = math.floor(x)
    return low + 1.0 if x - low >= 0.5 else float(low)


def _to_fixed(v: float, decimals: int) -> str:
    """``v`` with ``decimals`` places, a tie away from zero (JavaScript's ``toFixed``)."""
    with localcontext() as ctx:
        ctx.rounding = ROUND_HALF_UP
        return format(Decimal(v), f".{decimals}f")


def _to_exponential(v: float, decimals: int) -> str:
    """``v`` as ``d.dde+N`` (no leading zeros in the exponent), as JavaScript's ``toExponential``."""
    with localcontext() as ctx:
        ctx.rounding = ROUND_HALF_UP
        return format(Decimal(v), f".{decimals}e")


# -- three significant digits (findings) -----------------------------------------------------------
def format_sig(v: float | None, digits: int = SIG_DIGITS) -> str:
    """``v`` rounded to ``digits`` significant digits, without an exponent between 1e-4 and 1e9.

    ``format_sig(5464.123) == "5460"``, ``format_sig(0.012345) == "0.0123"``,
    ``format_sig(20.0) == "20"``; None or NaN → ``"n/a"``.
    """
    if _missing(v):
        return "n/a"
    v = float(v)
    if v == 0:
        return "0"
    mag = math.floor(math.log10(abs(v)))
    if mag < -4 or mag >= 9:
        return _to_exponential(v, digits - 1)
    decimals = digits - 1 - mag
    step = 10.0 ** -decimals
    rounded = math.copysign(_round_half_up(abs(v) / step), v) * step  # a tie away from zero
    if rounded != 0 and math.floor(math.log10(abs(rounded))) > mag:  # 999.7 → 1000: one digit fewer
        decimals -= 1
    text = _to_fixed(rounded, max(decimals, 0))
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_bytes_sig(n: float | None, digits: int = SIG_DIGITS) -> str:
    """Binary size with ``digits`` significant digits: ``"3.72 GiB"``, ``"400 MiB"``, ``"0 B"``."""
    if _missing(n):
        return "n/a"
    n = float(n)
    sign = "-" if n < 0 else ""
    v = abs(n)
    i = 0
    # Step up at 1000, not 1024, so at most three digits precede the point: "0.98 MiB", not "1000 KiB".
    while _round_half_up(v) >= 1000 and i < len(_BYTE_UNITS) - 1:
        v /= 1024
        i += 1
    text = _to_fixed(v, 0) if i == 0 else format_sig(v, digits)
    return f"{sign if text != '0' else ''}{text} {_BYTE_UNITS[i]}"


def snap(v: float | None, resolution: float) -> float | None:
    """``v``, or 0.0 when it is smaller than ``resolution`` (numerical dust from a flat fit)."""
    if v is None or not math.isfinite(v):
        return v
    return 0.0 if abs(v) < resolution else v


def format_value(v: float | None, unit: str) -> str:
    """``v`` in ``unit`` for a sentence: bytes as KiB/MiB/GiB, others with 3 significant digits.

    ``unit`` "percent" is already in percent; "ratio" is a fraction shown in percent.
    """
    if _missing(v):
        return "n/a"
    if unit == "bytes":
        return format_bytes_sig(v)
    if unit == "percent":
        return f"{format_sig(v)} %"
    if unit == "ratio":
        return f"{format_sig(100 * v)} %"
    return f"{format_sig(v)} {unit}".strip()


def format_pct_per_hour(pct: float | None) -> str:
    """Growth in percent of the level per hour with its sign: ``"+4.37 %/h"``, ``"-0.0123 %/h"``."""
    if _missing(pct):
        return "n/a"
    text = format_sig(pct)
    return f"{'' if text.startswith('-') or text == '0' else '+'}{text} %/h"


def format_hours(h: float | None) -> str:
    """Hours for a person: ``"0.42 h"``, ``"7.5 h"``, ``"76 h"``; from 72 h on the days too."""
    if _missing(h):
        return "n/a"
    if h >= 72:
        return f"{format_sig(h, 3)} h ({format_sig(h / 24, 2)} days)"
    return f"{format_sig(h, 2 if h < 10 else 3)} h"


def format_span_h(hours: float) -> str:
    """A stretch of time given in hours, for a sentence: "40 s", "4 min", "1.5 h", "96 h (4 days)"."""
    if hours * 60 < 1.5:
        return f"{max(1, round(hours * 3600))} s"
    if hours * 60 < 59.5:
        return f"{round(hours * 60)} min"
    return format_hours(hours)


# -- fixed decimals (live readings) -----------------------------------------------------------------
def format_bytes(n: float | None) -> str:
    """Binary size with one decimal: ``format_bytes(1536) == '1.5 KiB'``, ``'512 B'``; None → ``'n/a'``."""
    if _missing(n):
        return "n/a"
    sign = "-" if n < 0 else ""
    n = abs(float(n))
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{sign}{n:.0f} {unit}" if unit == "B" else f"{sign}{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def format_bytes_per_hour(slope: float) -> str:
    """A memory growth rate, signed: ``"+12.0 MiB/h"``; below 1 B/h no sign (never ``"-0 B/h"``)."""
    sign = "" if abs(slope) < 1 else ("+" if slope > 0 else "-")
    return f"{sign}{format_bytes(abs(slope))}/h"


def format_duration(seconds: float) -> str:
    """Compact duration of whole seconds: ``format_duration(3725) == '1h02m05s'``, ``'2d03h00m'``."""
    seconds = int(round(max(0.0, seconds)))
    d, rem = divmod(seconds, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    if d:
        return f"{d}d{h:02d}h{m:02d}m"
    if h:
        return f"{h}h{m:02d}m{s:02d}s"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"


def format_fixed(v: float | None, decimals: int = 0, missing: str = "-") -> str:
    """A count or rate with ``decimals`` places: users ``"40"``, req/s ``"12.3"``; None → ``missing``."""
    return missing if v is None else f"{v:.{decimals}f}"


def format_num(v: float | None, decimals: int = 1, missing: str = "–") -> str:
    """A measured figure for a table: ``decimals`` places below 100, none from 100 on ("12.3", "140")."""
    if _missing(v):
        return missing
    return _to_fixed(v, 0) if abs(v) >= 100 else _to_fixed(v, decimals)
