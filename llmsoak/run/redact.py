"""The resolved profile as written to ``RUN/profile.yaml``, with secrets redacted.

Profiles name secrets by environment variable (``api_key_env: OPENAI_API_KEY``) and never hold
them, but a run directory gets shared, so this also (1) masks the value of any key that looks
secret (``api_key``, ``token``, ``password``, ``Authorization`` …; ``*_env`` names are kept) and
(2) masks any occurrence of the *value* of a secret-looking environment variable, or of the one
the profile names, wherever it appears.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import re
from pathlib import Path

REDACTED = "***REDACTED***"
_SECRET_KEY_RE = re.compile(
    r"^(.*[_-])?(api[_-]?key|token|access[_-]?token|secret|password|passwd|authorization|cookie|credentials?)$",
    re.IGNORECASE)
_SECRET_ENV_RE = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)", re.IGNORECASE)
_MIN_SECRET_LEN = 6  # shorter values ("1", "true") would mask innocent text


def to_plain(value):
    """Dataclasses, tuples, paths and enums as plain YAML-able data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return to_plain(value.value)
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "to_dict"):
        return to_plain(value.to_dict())
    return repr(value)


def secret_values(extra_env_names: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Values of environment variables that are (or look) secret, longest first."""
    values = set()
    for name, value in os.environ.items():
        if (name in extra_env_names or _SECRET_ENV_RE.search(name)) and len(value) >= _MIN_SECRET_LEN:
            values.add(value)
    return sorted(values, key=len, reverse=True)


def redact(data, secrets: list[str]):
    """A copy of ``data`` with secret-looking keys and any known secret value masked."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            looks_secret = _SECRET_KEY_RE.search(str(key)) and not str(key).lower().endswith("_env")
            if looks_secret and isinstance(value, str) and value:
                out[key] = REDACTED
            else:
                out[key] = redact(value, secrets)
        return out
    if isinstance(data, list):
        return [redact(v, secrets) for v in data]
    if isinstance(data, str):
        for secret in secrets:
            if secret in data:
                data = data.replace(secret, REDACTED)
        return data
    return data


def resolved_profile_yaml(profile, source_path: Path, api_key_env: str | None) -> str:
    """YAML text of the resolved profile, redacted, with a header naming its source."""
    import yaml

    plain = profile.to_redacted_dict() if hasattr(profile, "to_redacted_dict") else to_plain(profile)
    if not isinstance(plain, dict):  # unknown profile object: fall back to the file as written
        plain = yaml.safe_load(source_path.read_text(encoding="utf-8")) or {}
    secrets = secret_values([api_key_env] if api_key_env else [])
    text = yaml.safe_dump(redact(plain, secrets), sort_keys=False, allow_unicode=True)
    for secret in secrets:  # belt and braces: nothing survives in keys either
        text = text.replace(secret, REDACTED)
    return f"# resolved from {source_path} by llmsoak run; secrets redacted\n{text}"
