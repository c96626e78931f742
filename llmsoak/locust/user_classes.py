"""One Locust user class per pattern of a profile: ``ActiveUser``, ``CasualUser``, ``SporadicUser``,
``StressUser``, and ``<Name>User`` for a custom pattern.

Each class is an :class:`~llmsoak.locust.users.LLMChatUser` whose class attributes carry its
pattern (llmsoak/profile/patterns.py: think time, turns, lengths), the target, the prompt
source, and Locust's ``weight`` or ``fixed_count``. :func:`build_user_classes` makes them when
the locustfile is imported; :func:`apply_profile` points the same classes at another profile
between tests (the web UI's start form: llmsoak.locust.profile_switch), since Locust cannot add
user classes to a running process.
"""

from __future__ import annotations

from llmsoak.locust.users import LLMChatUser
from llmsoak.profile import BUILTIN_PATTERNS

PATTERN_OF_CLASS: dict[str, str] = {}
"""Locust user class name → pattern name, for the profile in use (users per pattern)."""


def _int_weight(weight: float | None, scale: int) -> int:
    return max(1, int(round((1 if weight is None else weight) * scale)))


def class_name(pattern_name: str) -> str:
    """The Locust class name of a pattern: ``active`` → ``ActiveUser``, ``long_chat`` → ``LongChatUser``."""
    return "".join(part.capitalize() for part in pattern_name.replace("-", "_").split("_")) + "User"


def _weight_scale(profile) -> int:
    """Locust wants integer weights: fractional ones (0.5, 1.5) are scaled by 100 so ratios survive."""
    weights = [spec.weight for spec in profile.patterns if spec.users is None and spec.weight is not None]
    return 1 if all(float(w).is_integer() for w in weights) else 100


def class_attributes(profile, spec, *, scale: int, prompt_source=None) -> dict:
    """The class attributes that make a user class run ``spec`` (PatternSpec) of ``profile``.

    Read when a user is created (``network_timeout``/``connection_timeout`` by FastHttpUser, the
    rest by :class:`LLMChatUser`) and by Locust's dispatcher (``weight``, ``fixed_count``) when a
    test starts, so setting them on an existing class between tests takes effect in the next one.
    """
    target = profile.target
    system_prompt = profile.prompts.system_prompt
    if prompt_source is not None:
        system_prompt = prompt_source.system_prompt or system_prompt
    attrs = {
        "pattern": spec,
        "target": target,
        "host": target.url,
        "network_timeout": float(target.timeout_s),
        "connection_timeout": float(target.connect_timeout_s),
        "prompt_source": prompt_source,
        "system_prompt": system_prompt,
        "seed": profile.run.seed,
    }
    if spec.users is not None:
        attrs.update(fixed_count=int(spec.users), weight=1)
    else:
        attrs.update(fixed_count=0, weight=_int_weight(spec.weight, scale))
    return attrs


def build_user_classes(profile, *, prompt_source=None, spare_builtins: bool = False) -> dict[str, type[LLMChatUser]]:
    """Concrete Locust user classes for ``profile`` (llmsoak.profile.Profile), keyed by class name.

    Weights become Locust ``weight``; fixed counts become ``fixed_count``. Network timeouts come
    from ``target.timeout_s`` (idle gap between reads) and ``target.connect_timeout_s``.
    ``spare_builtins`` also defines the built-in patterns the profile does not use, with weight 0
    and no fixed count (never dispatched), so a profile chosen later in the web UI's start form
    can use any of them (:func:`apply_profile`).
    """
    classes: dict[str, type[LLMChatUser]] = {}
    scale = _weight_scale(profile)
    for spec in profile.patterns:
        name = class_name(spec.name)
        attrs = class_attributes(profile, spec, scale=scale, prompt_source=prompt_source)
        attrs.update(abstract=False, __module__=__name__, __doc__=spec.description)
        classes[name] = type(name, (LLMChatUser,), attrs)
    if spare_builtins:
        for pattern_name, spec in BUILTIN_PATTERNS.items():
            name = class_name(pattern_name)
            if name not in classes:
                attrs = class_attributes(profile, spec, scale=scale, prompt_source=prompt_source)
                attrs.update(abstract=False, __module__=__name__, __doc__=spec.description, weight=0, fixed_count=0)
                classes[name] = type(name, (LLMChatUser,), attrs)
    _map_patterns(profile, classes)
    return classes


def apply_profile(classes: dict[str, type[LLMChatUser]], profile, *, prompt_source=None) -> None:
    """Make the existing user ``classes`` (from :func:`build_user_classes`) run ``profile``.

    Call between tests (Locust's ``test_start``, before users are created and dispatched).
    Classes of patterns the profile does not list get weight 0 and no fixed count. Raises
    ValueError naming the patterns that have no class (Locust cannot add user classes to a
    running process).
    """
    missing = [spec.name for spec in profile.patterns if class_name(spec.name) not in classes]
    if missing:
        raise ValueError(", ".join(missing))
    scale = _weight_scale(profile)
    used = set()
    for spec in profile.patterns:
        name = class_name(spec.name)
        used.add(name)
        for key, value in class_attributes(profile, spec, scale=scale, prompt_source=prompt_source).items():
            setattr(classes[name], key, value)
    for name, cls in classes.items():
        if name not in used:
            cls.weight, cls.fixed_count = 0, 0
    _map_patterns(profile, classes)


def _map_patterns(profile, classes) -> None:
    """PATTERN_OF_CLASS holds the profile's patterns only (unused classes count no users)."""
    for name in classes:
        PATTERN_OF_CLASS.pop(name, None)
    for spec in profile.patterns:
        PATTERN_OF_CLASS[class_name(spec.name)] = spec.name
