"""A validated :class:`~llmsoak.profile.Profile` back to a plain dict in the YAML input schema.

The inverse of ``loading``: every default filled in, only the settings of the chosen load shape,
secrets only as environment variable *names* (a Profile never holds a secret value). The dict
loads back with ``profile_from_dict`` to an equal Profile. ``runs/<id>/profile.yaml`` is this
dict passed through the run's :class:`llmsoak.redact.Redactor` and dumped as YAML.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmsoak.profile.distributions import Distribution

if TYPE_CHECKING:
    from llmsoak.profile.model import Profile


def profile_to_dict(profile: Profile) -> dict:
    """The resolved ``profile`` as a plain dict in the YAML input schema (see module docstring)."""
    target = _plain(profile.target)
    if target["chat"] is None:
        del target["chat"]
    patterns = {}
    for spec in profile.patterns:
        body = _plain(spec)
        del body["name"]
        body.pop("users" if spec.users is None else "weight")
        patterns[spec.name] = body
    load = _plain(profile.load)
    for key in ("ramp", "steps", "spike", "diurnal"):
        if key != profile.load.shape:
            del load[key]
    run = _plain(profile.run)
    run["workers"] = "auto" if profile.run.workers is None else profile.run.workers
    prompts = _plain(profile.prompts)
    if prompts["path"] is None:
        del prompts["path"]
    out = {"name": profile.name, "description": profile.description, "target": target,
           "patterns": patterns, "prompts": prompts, "load": load, "run": run,
           "sampler": _plain(profile.sampler), "slo": _plain(profile.slo)}
    if profile.capacity is not None:
        capacity = _plain(profile.capacity)
        if profile.capacity.distribution != "gamma":
            del capacity["burstiness"]
        out["capacity"] = capacity
    if profile.arrivals is not None:
        arrivals = _plain(profile.arrivals)
        if profile.arrivals.distribution != "gamma":
            del arrivals["burstiness"]
        out["arrivals"] = arrivals
    return _rename(out)


# Dataclass attribute → profile key where the YAML spelling is a timespan without the unit suffix.
_YAML_KEYS = {"duration_s": "duration", "at_s": "at", "checkpoint_interval_s": "checkpoint_interval",
             "workers_timeout_s": "workers_timeout"}


def _rename(value: Any) -> Any:
    if isinstance(value, dict):
        return {_YAML_KEYS.get(k, k): _rename(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rename(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """Dataclasses → dicts, distributions → their YAML spelling, paths → strings."""
    if isinstance(value, Distribution):
        return value.to_spec()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value

