"""Reading one YAML mapping with field paths: every error names where it is, e.g. ``load.steps[1].duration``.

:class:`_Section` wraps a mapping found at a dotted path; its typed getters (``string``,
``number``, ``timespan``, ``size``, ``distribution``, ...) return defaults for missing or null keys
and raise :class:`_Fail` (path, message) for anything else that is wrong. Unknown keys fail at
once, with a did-you-mean hint. ``llmsoak.profile.sections`` turns ``_Fail`` into ProfileError.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from llmsoak.profile.distributions import Distribution, DistributionError, parse_distribution
from llmsoak.units import parse_size, parse_timespan

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Fail(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class _Section:
    """A mapping being read at ``path``: every key must be consumed, unknown keys are errors."""

    def __init__(self, raw: object, path: str, allowed: tuple[str, ...]) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise _Fail(path, f"expected a mapping, got {_kind(raw)}")
        self.raw = raw
        self.path = path
        for key in raw:
            if key not in allowed:
                raise _Fail(self.sub(str(key)), _unknown_key(str(key), allowed))

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.raw and self.raw[key] is not None

    def get(self, key: str, default: Any = None) -> Any:
        value = self.raw.get(key)
        return default if value is None else value

    def string(self, key: str, default: str | None = None, choices: tuple[str, ...] | None = None) -> Any:
        value = self.raw.get(key)
        if value is None:
            return default
        if isinstance(value, (bool, Mapping, list)):
            raise _Fail(self.sub(key), f"expected a string, got {_kind(value)}")
        value = str(value)
        if choices and value not in choices:
            hint = difflib.get_close_matches(value, choices, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise _Fail(self.sub(key), f"must be one of {', '.join(choices)} (got {value!r}){extra}")
        return value

    def boolean(self, key: str, default: bool | None) -> Any:
        value = self.raw.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise _Fail(self.sub(key), f"expected true or false, got {value!r}")
        return value

    def number(self, key: str, default: Any = None, *, minimum: float | None = None,
               maximum: float | None = None, integer: bool = False, above: float | None = None) -> Any:
        value = self.raw.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Fail(self.sub(key), f"expected {'an integer' if integer else 'a number'}, got {value!r}")
        if integer and (isinstance(value, float) and not value.is_integer()):
            raise _Fail(self.sub(key), f"expected an integer, got {value!r}")
        _bounds(self.sub(key), value, minimum, maximum, above)
        return int(value) if integer else float(value)

    def timespan(self, key: str, default: Any = None, *, above: float | None = None) -> Any:
        value = self.raw.get(key)
        if value is None:
            return default
        try:
            seconds = parse_timespan(value)
        except ValueError as err:
            raise _Fail(self.sub(key), str(err)) from None
        _bounds(self.sub(key), seconds, None, None, above)
        return seconds

    def size(self, key: str) -> int | None:
        value = self.raw.get(key)
        if value is None:
            return None
        try:
            return parse_size(value)
        except ValueError as err:
            raise _Fail(self.sub(key), str(err)) from None

    def env_name(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not _ENV_NAME_RE.match(value):
            raise _Fail(path, f"expected an environment variable name like MY_API_KEY, got {value!r}")
        return value

    def distribution(self, key: str, default: Distribution, *, seconds: bool) -> Distribution:
        if key not in self.raw:
            return default
        try:
            return parse_distribution(self.raw[key], seconds=seconds)
        except DistributionError as err:
            path = self.sub(key)
            if err.field:
                path += err.field if err.field.startswith("[") else "." + err.field
            raise _Fail(path, str(err)) from None


def _bounds(path: str, value: float, minimum: float | None, maximum: float | None,
            above: float | None) -> None:
    if minimum is not None and value < minimum:
        raise _Fail(path, f"must be >= {minimum:g} (got {value:g})")
    if above is not None and value <= above:
        raise _Fail(path, f"must be > {above:g} (got {value:g})")
    if maximum is not None and value > maximum:
        raise _Fail(path, f"must be <= {maximum:g} (got {value:g})")


def _kind(value: object) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _unknown_key(key: str, allowed: tuple[str, ...]) -> str:
    hint = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if key == "api_key":
        return ("secrets are not stored in profiles: put the key in an environment variable and "
                "name it with api_key_env: MY_KEY_VARIABLE")
    text = f"unknown field {key!r}"
    if hint:
        text += f" (did you mean {hint[0]!r}?)"
    else:
        text += f" (known: {', '.join(allowed)})"
    return text

