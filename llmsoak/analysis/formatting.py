"""Numbers for people: three significant digits, human units, no numerical dust.

Every sentence, table and chart title of the analysis formats its figures here, so "5464.123 %/h"
reads "5460 %/h", "6.42e-16 count/h" reads "0 count/h" and 2,147,483,648 bytes reads "2 GiB".
The web UI's JavaScript (``llmsoak/webui/static/soak.js``: ``fmtSig``, ``fmtBytes``) follows the
same rules.
"""

from __future__ import annotations

import math

SIG_DIGITS = 3
_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def format_sig(v: float | None, digits: int = SIG_DIGITS) -> str:
    """``v`` rounded to ``digits`` significant digits, without an exponent between 1e-4 and 1e9.

    ``format_sig(5464.123) == "5460"``, ``format_sig(0.012345) == "0.0123"``,
    ``format_sig(20.0) == "20"``; None or NaN → ``"n/a"``.
    """
    if v is None or not math.isfinite(float(v)):
        return "n/a"
    v = float(v)
    if v == 0:
        return "0"
    mag = math.floor(math.log10(abs(v)))
    if mag < -4 or mag >= 9:  # exponent without leading zeros, as JavaScript's toExponential
        mantissa, exponent = f"{v:.{digits - 1}e}".split("e")
        return f"{mantissa}e{exponent[0]}{int(exponent[1:])}"
    decimals = digits - 1 - mag
    rounded = round(v, decimals)
    if rounded != 0 and math.floor(math.log10(abs(rounded))) > mag:  # 999.7 → 1000: one digit fewer
        decimals -= 1
    text = f"{rounded:.{max(decimals, 0)}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_bytes_sig(n: float | None, digits: int = SIG_DIGITS) -> str:
    """Binary size with ``digits`` significant digits: ``"3.72 GiB"``, ``"400 MiB"``, ``"0 B"``."""
    if n is None or not math.isfinite(float(n)):
        return "n/a"
    n = float(n)
    sign = "-" if n < 0 else ""
    v = abs(n)
    i = 0
    # Step up at 1000, not 1024, so at most three digits precede the point: "0.98 MiB", not "1000 KiB".
    while round(v, 0) >= 1000 and i < len(_BYTE_UNITS) - 1:
        v /= 1024
        i += 1
    text = f"{v:.0f}" if i == 0 else format_sig(v, digits)
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
    if v is None or not math.isfinite(float(v)):
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
    if pct is None or not math.isfinite(pct):
        return "n/a"
    text = format_sig(pct)
    return f"{'' if text.startswith('-') or text == '0' else '+'}{text} %/h"


def format_hours(h: float | None) -> str:
    """Hours for a person: ``"0.42 h"``, ``"7.5 h"``, ``"76 h"``; from 72 h on the days too."""
    if h is None or not math.isfinite(h):
        return "n/a"
    if h >= 72:
        return f"{format_sig(h, 3)} h ({format_sig(h / 24, 2)} days)"
    return f"{format_sig(h, 2 if h < 10 else 3)} h"
