"""Random distributions for think times, session lengths and token counts, parsed from YAML.

One schema, two spellings (docs/profiles.md "Distributions"):

Short forms
    ``5``                    constant 5
    ``"90s"`` / ``"2m"``     constant, a timespan (only for fields in seconds)
    ``{constant: 5}``        constant 5
    ``{uniform: [2, 8]}``    uniform between 2 and 8
    ``{exponential: 30}``    exponential with mean 30
    ``{choice: [1, 2, 4]}``  one of the values, equally likely

Long form (every kind, plus optional ``min``/``max`` clipping)
    ``{dist: constant, value: 5}``
    ``{dist: uniform, min: 2, max: 8}``
    ``{dist: exponential, mean: 30, min: 1, max: 600}``
    ``{dist: lognormal, median: 10, sigma: 0.8, min: 1, max: 120}``
    ``{dist: normal, mean: 200, stddev: 50, min: 10, max: 400}``   (clipped, not truncated)
    ``{dist: choice, values: [1, 2, 4], weights: [3, 2, 1]}``

Values in seconds accept timespans (``"90s"``, ``"1h"``) wherever a number is expected.
Samples are always clipped to ``[min, max]`` when those are given, and never negative.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

from llmsoak.units import parse_timespan

KINDS = ("constant", "uniform", "exponential", "lognormal", "normal", "choice")

# Which keys each kind accepts in the long form (besides "dist").
_LONG_KEYS = {
    "constant": {"value"},
    "uniform": {"min", "max"},
    "exponential": {"mean", "min", "max"},
    "lognormal": {"median", "sigma", "min", "max"},
    "normal": {"mean", "stddev", "min", "max"},
    "choice": {"values", "weights", "min", "max"},
}
_REQUIRED = {
    "constant": ("value",),
    "uniform": ("min", "max"),
    "exponential": ("mean",),
    "lognormal": ("median", "sigma"),
    "normal": ("mean", "stddev"),
    "choice": ("values",),
}


class DistributionError(ValueError):
    """A distribution spec that cannot be read; ``field`` is the sub-path ("", "max", "uniform[1]")."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Distribution:
    """A random quantity: ``sample(rng)`` draws one value (float), clipped to ``[min, max]``.

    The unit is the unit of the field that holds it (seconds for ``*_s`` fields, tokens or
    turns otherwise).
    """

    kind: str
    value: float | None = None
    mean: float | None = None
    median: float | None = None
    sigma: float | None = None
    stddev: float | None = None
    values: tuple[float, ...] = ()
    weights: tuple[float, ...] = ()
    min: float | None = None
    max: float | None = None

    def sample(self, rng: random.Random) -> float:
        """One draw, clipped to ``[min, max]`` and to >= 0."""
        kind = self.kind
        if kind == "constant":
            x = float(self.value)  # type: ignore[arg-type]
        elif kind == "uniform":
            x = rng.uniform(self.min, self.max)  # type: ignore[arg-type]
        elif kind == "exponential":
            x = rng.expovariate(1.0 / self.mean) if self.mean else 0.0  # type: ignore[operator]
        elif kind == "lognormal":
            x = rng.lognormvariate(math.log(self.median), self.sigma)  # type: ignore[arg-type]
        elif kind == "normal":
            x = rng.gauss(self.mean, self.stddev)  # type: ignore[arg-type]
        elif kind == "choice":
            x = rng.choices(self.values, weights=self.weights or None)[0]
        else:  # pragma: no cover - constructor validates kind
            raise AssertionError(kind)
        return self.clip(x)

    def sample_int(self, rng: random.Random, minimum: int = 0) -> int:
        """One draw rounded to an integer, at least ``minimum`` (token counts, turns)."""
        return max(minimum, int(round(self.sample(rng))))

    def clip(self, x: float) -> float:
        if self.min is not None and x < self.min:
            x = self.min
        if self.max is not None and x > self.max:
            x = self.max
        return max(0.0, x)

    @property
    def typical(self) -> float:
        """The central value (mean, median or constant) before clipping, for docs and summaries."""
        if self.kind == "constant":
            return float(self.value)  # type: ignore[arg-type]
        if self.kind == "uniform":
            return (self.min + self.max) / 2  # type: ignore[operator]
        if self.kind in ("exponential", "normal"):
            return self.clip(float(self.mean))  # type: ignore[arg-type]
        if self.kind == "lognormal":
            return self.clip(float(self.median))  # type: ignore[arg-type]
        weights = self.weights or (1.0,) * len(self.values)
        return sum(v * w for v, w in zip(self.values, weights, strict=True)) / sum(weights)

    def to_spec(self) -> dict | float:
        """The long-form YAML spelling (what ``parse_distribution`` reads back)."""
        if self.kind == "constant":
            return float(self.value)  # type: ignore[arg-type]
        out: dict = {"dist": self.kind}
        for key in sorted(_LONG_KEYS[self.kind]):
            val = getattr(self, key)
            if val is None or val == ():
                continue
            out[key] = list(val) if isinstance(val, tuple) else val
        return out

    def describe(self) -> str:
        """Short human text: ``lognormal(median=10, sigma=0.8) in [1, 120]``."""
        if self.kind == "constant":
            return f"{_fmt(self.value)}"
        if self.kind == "uniform":
            return f"uniform {_fmt(self.min)}–{_fmt(self.max)}"
        if self.kind == "choice":
            text = "one of " + ", ".join(_fmt(v) for v in self.values)
        elif self.kind == "exponential":
            text = f"exponential(mean={_fmt(self.mean)})"
        elif self.kind == "lognormal":
            text = f"lognormal(median={_fmt(self.median)}, sigma={_fmt(self.sigma)})"
        else:
            text = f"normal(mean={_fmt(self.mean)}, stddev={_fmt(self.stddev)})"
        if self.min is not None or self.max is not None:
            text += f" in [{_fmt(self.min) if self.min is not None else '0'}, " \
                    f"{_fmt(self.max) if self.max is not None else '∞'}]"
        return text


def _fmt(x: float | None) -> str:
    if x is None:
        return "?"
    return f"{x:g}"


def constant(value: float) -> Distribution:
    return Distribution("constant", value=float(value))


def uniform(lo: float, hi: float) -> Distribution:
    return Distribution("uniform", min=float(lo), max=float(hi))


def lognormal(median: float, sigma: float, lo: float | None = None, hi: float | None = None) -> Distribution:
    return Distribution("lognormal", median=float(median), sigma=float(sigma),
                        min=None if lo is None else float(lo), max=None if hi is None else float(hi))


def _number(raw: object, field: str, seconds: bool) -> float:
    if isinstance(raw, bool) or raw is None:
        raise DistributionError(f"expected a number, got {raw!r}", field)
    if isinstance(raw, (int, float)):
        if not math.isfinite(raw):
            raise DistributionError(f"expected a finite number, got {raw!r}", field)
        return float(raw)
    if isinstance(raw, str) and seconds:
        try:
            return parse_timespan(raw)
        except ValueError as err:
            raise DistributionError(str(err), field) from None
    if isinstance(raw, str):
        try:
            return float(raw)
        except ValueError:
            pass
    kind = "a number or a timespan like '30s'" if seconds else "a number"
    raise DistributionError(f"expected {kind}, got {raw!r}", field)


def parse_distribution(raw: object, *, seconds: bool = False) -> Distribution:
    """Read a distribution from its YAML form (see the module docstring).

    ``seconds`` allows timespans such as ``"90s"`` for values. Raises DistributionError with
    ``field`` set to the failing sub-key.
    """
    if isinstance(raw, (int, float, str)) and not isinstance(raw, bool):
        value = _number(raw, "", seconds)
        if value < 0:
            raise DistributionError(f"must be >= 0 (got {value:g})")
        return constant(value)
    if not isinstance(raw, Mapping):
        raise DistributionError(
            f"expected a number or a mapping like {{uniform: [2, 8]}} or {{dist: lognormal, median: 10, "
            f"sigma: 0.8}}, got {type(raw).__name__}")
    if "dist" in raw:
        return _parse_long(raw, seconds)
    if len(raw) != 1:
        raise DistributionError(f"short form takes exactly one key of {', '.join(KINDS[:3])}, choice; "
                                f"or use the long form with 'dist:' (got keys {sorted(map(str, raw))})")
    (kind, args), = raw.items()
    if kind == "constant":
        if isinstance(args, (Mapping, list, tuple)) or args is None:
            raise DistributionError("constant takes a number", "constant")
        try:
            return parse_distribution(args, seconds=seconds)
        except DistributionError as err:
            raise DistributionError(str(err), "constant") from None
    if kind == "uniform":
        if not isinstance(args, (list, tuple)) or len(args) != 2:
            raise DistributionError("uniform takes [min, max]", "uniform")
        lo = _number(args[0], "uniform[0]", seconds)
        hi = _number(args[1], "uniform[1]", seconds)
        return _check(Distribution("uniform", min=lo, max=hi), {"min": "uniform[0]", "max": "uniform[1]"})
    if kind == "exponential":
        mean = _number(args, "exponential", seconds)
        return _check(Distribution("exponential", mean=mean), {"mean": "exponential"})
    if kind == "choice":
        if not isinstance(args, (list, tuple)) or not args:
            raise DistributionError("choice takes a non-empty list of values", "choice")
        values = tuple(_number(v, f"choice[{i}]", seconds) for i, v in enumerate(args))
        return _check(Distribution("choice", values=values), {"values": "choice"})
    if kind in ("lognormal", "normal"):
        raise DistributionError(f"{kind} has no short form: use {{dist: {kind}, ...}}", str(kind))
    raise DistributionError(f"unknown distribution {kind!r} (choose from {', '.join(KINDS)})", str(kind))


def _parse_long(raw: Mapping, seconds: bool) -> Distribution:
    kind = raw["dist"]
    if kind not in KINDS:
        raise DistributionError(f"unknown distribution {kind!r} (choose from {', '.join(KINDS)})", "dist")
    allowed = _LONG_KEYS[kind]
    for key in raw:
        if key != "dist" and key not in allowed:
            raise DistributionError(f"unknown key for {kind} (allowed: {', '.join(sorted(allowed))})", str(key))
    for key in _REQUIRED[kind]:
        if key not in raw:
            raise DistributionError(f"{kind} needs {key!r}", str(key))
    fields: dict = {}
    for key in allowed - {"values", "weights"}:
        if key in raw and raw[key] is not None:
            fields[key] = _number(raw[key], key, seconds and key != "sigma")
    for key in ("values", "weights"):
        if key in raw:
            seq = raw[key]
            if not isinstance(seq, (list, tuple)) or not seq:
                raise DistributionError("expected a non-empty list", key)
            fields[key] = tuple(_number(v, f"{key}[{i}]", seconds and key == "values") for i, v in enumerate(seq))
    return _check(Distribution(kind, **fields))


def _check(dist: Distribution, names: dict[str, str] | None = None) -> Distribution:
    """Reject impossible parameters; ``names`` maps an attribute to the sub-path to blame."""
    names = names or {}

    def fail(msg: str, key: str) -> None:
        raise DistributionError(msg, names.get(key, key))

    for key in ("value", "mean", "median", "min", "max"):
        val = getattr(dist, key)
        if val is not None and val < 0 and not (dist.kind == "normal" and key == "mean"):
            fail(f"must be >= 0 (got {val:g})", key)
    if dist.min is not None and dist.max is not None and dist.max < dist.min:
        fail(f"must be >= min (got {dist.max:g} < {dist.min:g})", "max")
    if dist.kind == "lognormal":
        if not dist.median or dist.median <= 0:
            fail(f"must be > 0 (got {dist.median:g})", "median")
        if dist.sigma is None or dist.sigma < 0:
            fail(f"must be >= 0 (got {dist.sigma})", "sigma")
    if dist.kind == "normal" and (dist.stddev is None or dist.stddev < 0):
        fail(f"must be >= 0 (got {dist.stddev})", "stddev")
    if dist.kind == "choice":
        if any(v < 0 for v in dist.values):
            fail("values must be >= 0", "values")
        if dist.weights:
            if len(dist.weights) != len(dist.values):
                fail(f"needs one weight per value ({len(dist.values)}), got {len(dist.weights)}", "weights")
            if any(w < 0 for w in dist.weights) or sum(dist.weights) <= 0:
                fail("weights must be >= 0 with a positive sum", "weights")
    return dist
