"""Durations and sizes parsed once, the same way everywhere ("1h30m", "512MiB").

Formatting them back for people is llmsoak/formatting.py."""

from __future__ import annotations

import re

_TIMESPAN_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|d|h|m|s)")
_TIMESPAN_UNITS_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?i?[bB]?)\s*$")
_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 10**3, "kb": 10**3, "kib": 2**10, "ki": 2**10,
    "m": 10**6, "mb": 10**6, "mib": 2**20, "mi": 2**20,
    "g": 10**9, "gb": 10**9, "gib": 2**30, "gi": 2**30,
    "t": 10**12, "tb": 10**12, "tib": 2**40, "ti": 2**40,
}


def parse_timespan(value: str | int | float) -> float:
    """Seconds in ``value``: a number of seconds, or a span like ``"90s"``, ``"1h30m"``, ``"7d"``.

    Raises ValueError with a message naming the value when it cannot be read.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"duration must not be negative: {value!r}")
        return float(value)
    text = str(value).strip().lower()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if seconds < 0:
            raise ValueError(f"duration must not be negative: {value!r}")
        return seconds
    pos, total = 0, 0.0
    for match in _TIMESPAN_RE.finditer(text):
        if match.start() != pos and text[pos:match.start()].strip():
            break
        total += float(match.group(1)) * _TIMESPAN_UNITS_S[match.group(2)]
        pos = match.end()
    if pos == 0 or text[pos:].strip():
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 5m, 1h30m, 7d)")
    return total


def parse_size(value: str | int | float) -> int:
    """Bytes in ``value``: a number of bytes, or ``"512MiB"``, ``"2GB"``, ``"1.5G"`` (G = 10^9, GiB = 2^30)."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"size must not be negative: {value!r}")
        return int(value)
    match = _SIZE_RE.match(str(value))
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"not a size: {value!r} (use e.g. 1048576, 512MiB, 2GB)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])
