"""YAML profiles → frozen dataclasses, validated once, with errors naming file and field path.

``load_profile("profiles/smoke.yaml")`` returns a :class:`Profile`; anything wrong raises
:class:`ProfileError` (exit 2) with one line such as
``profiles/x.yaml: patterns.active.think_time_s.max: must be >= min (got 1 < 3)``.
The schema is documented field by field in docs/profiles.md.

Secrets never live in a profile: ``target.api_key_env`` and ``target.headers_env`` name
environment variables, read only when requests are built (``Target.resolve_headers()``).

Modules: ``model`` (the dataclasses, allowed values, ProfileError), ``patterns`` (the four user
patterns' defaults, PatternSpec), ``distributions`` (think times, lengths: parsing and sampling),
``fields`` (reading a mapping with field paths), ``sections`` (the schema per section,
``profile_from_dict``), ``loading`` (files, strict YAML, overrides), ``dumping`` (back to the input
schema, for ``runs/<id>/profile.yaml``) and ``__main__`` (``python -m llmsoak.profile check
FILE...``). Import from this package, not from the modules: only the names below are public.
"""

from llmsoak.profile.distributions import Distribution, DistributionError, parse_distribution
from llmsoak.profile.loading import load_profile, validate_profile_file
from llmsoak.profile.model import (
    CHAT_STREAMS,
    ENDPOINTS,
    FLAVOURS,
    PROMPT_SOURCES,
    SHAPES,
    WEEKDAYS,
    ArrivalsConfig,
    CapacityConfig,
    ChatApi,
    DiurnalConfig,
    EndSession,
    LoadConfig,
    Profile,
    ProfileError,
    PromptsConfig,
    RampConfig,
    RunConfig,
    SamplerConfig,
    SloConfig,
    SpikeConfig,
    StepConfig,
    Target,
)
from llmsoak.profile.patterns import BUILTIN_NAMES, BUILTIN_PATTERNS, PatternSpec
from llmsoak.profile.sections import profile_from_dict

__all__ = [
    "BUILTIN_NAMES",
    "BUILTIN_PATTERNS",
    "ArrivalsConfig",
    "CapacityConfig",
    "CHAT_STREAMS",
    "ChatApi",
    "Distribution",
    "DistributionError",
    "DiurnalConfig",
    "ENDPOINTS",
    "EndSession",
    "FLAVOURS",
    "LoadConfig",
    "load_profile",
    "parse_distribution",
    "PatternSpec",
    "Profile",
    "profile_from_dict",
    "ProfileError",
    "PROMPT_SOURCES",
    "PromptsConfig",
    "RampConfig",
    "RunConfig",
    "SamplerConfig",
    "SHAPES",
    "SloConfig",
    "SpikeConfig",
    "StepConfig",
    "Target",
    "validate_profile_file",
    "WEEKDAYS",
]
