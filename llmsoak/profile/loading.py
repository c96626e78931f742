"""Profile files → :class:`Profile`: reading YAML strictly, applying overrides, then validating.

``load_profile(path, overrides)`` is the entry point every command uses. The YAML reader refuses
duplicate keys (a later ``url:`` would otherwise silently win) and reports syntax errors with line
and column; ``overrides`` (nested or dotted keys) are merged before validation, so an override is
checked exactly like the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llmsoak.profile.fields import _Fail
from llmsoak.profile.model import Profile, ProfileError
from llmsoak.profile.sections import _DIST_COUNTS, _DIST_SECONDS, profile_from_dict


def load_profile(path: str | os.PathLike, overrides: Mapping[str, Any] | None = None, *,
                 placeholders: Mapping[str, str] | None = None) -> Profile:
    """Read, merge ``overrides`` into, and validate the profile at ``path``.

    ``overrides`` is a nested mapping, or dotted keys (``{"target.url": "http://..."}``), applied
    on top of the file before validation. ``placeholders`` fills ``{name}`` in ``target.url`` and
    ``target.command`` (``llmsoak run`` passes ``{"port": "<a free port>"}``, so a profile can
    start its own target where nothing listens). Raises ProfileError naming file, field path and
    problem.
    """
    path = Path(path)
    raw = _read_yaml(path)
    if overrides:
        if not isinstance(raw, dict):
            raw = {} if raw is None else raw
        raw = _merge(raw, _expand_dotted(overrides)) if isinstance(raw, dict) else raw
    if placeholders and isinstance(raw, dict):
        raw = _fill_placeholders(raw, placeholders)
    return profile_from_dict(raw, source=path, base_dir=path.parent)


def validate_profile_file(path: str | os.PathLike) -> Profile:
    """Same as :func:`load_profile`; named for callers that only want the check."""
    return load_profile(path)


def _expand_dotted(overrides: Mapping[str, Any]) -> dict:
    out: dict = {}
    for key, value in overrides.items():
        parts = str(key).split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _merge(base: dict, extra: Mapping) -> dict:
    """Deep merge; distributions and chat bodies are replaced whole, not merged."""
    out = dict(base)
    for key, value in extra.items():
        whole = key in _DIST_SECONDS or key in _DIST_COUNTS or key == "body"
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and not whole:
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _fill_placeholders(raw: dict, placeholders: Mapping[str, str]) -> dict:
    """``{name}`` → value in ``target.url`` and ``target.command`` (a string or a list of arguments)."""
    target = raw.get("target")
    if not isinstance(target, dict):
        return raw

    def fill(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        for name, text in placeholders.items():
            value = value.replace("{" + name + "}", str(text))
        return value

    target = dict(target)
    for key in ("url", "command"):
        if key in target:
            value = target[key]
            target[key] = [fill(v) for v in value] if isinstance(value, list) else fill(value)
    return {**raw, "target": target}


def _read_yaml(path: Path) -> Any:
    import yaml  # imported here so `llmsoak --help` stays fast

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(f"{path}: no such profile file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ProfileError(f"{path}: cannot read: {getattr(err, 'strerror', None) or err}") from None

    class _StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
        seen: dict = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node)
            if key in seen:
                raise _Fail(f"line {key_node.start_mark.line + 1}", f"duplicate key {key!r}")
            seen[key] = True
        return loader.construct_mapping(node)

    _StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except _Fail as err:
        raise ProfileError(f"{path}: {err.path}: {err.message}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ProfileError(f"{path}: {where}not valid YAML: {problem}") from None
    if data is None:
        raise ProfileError(f"{path}: empty profile (expected a mapping with at least target.url)")
    return data
