"""One redaction for everything a run writes: secret values never reach a file or a log.

Profiles name secrets by environment variable and never hold them (docs/profiles.md, "Secrets"),
but the values travel: into request headers, a target's own log of its arguments, an error
message quoting that log. Before ``llmsoak run`` writes profile or run data (``profile.yaml``,
``run.json``, ``events.csv`` details, its own log lines, and the children's logs once they have
stopped), it passes them through one :class:`Redactor`, which

- replaces every occurrence of a secret *value*: those of the variables the profile names
  (``target.api_key_env``, ``target.headers_env``) and of any environment variable whose name
  looks secret (``KEY``, ``TOKEN``, ``SECRET``, ``PASSWORD``, ``CREDENTIAL``, ``AUTH``), if at
  least MIN_SECRET_LEN characters long (shorter values such as ``1`` would mask innocent text);
- replaces the token after ``Bearer`` in text (an ``Authorization`` header in a log line);
- in mappings, replaces the string under a secret-looking key (``api_key``, ``token``,
  ``password``, ``Authorization``, ``cookie`` …), except under ``*_env`` keys, which hold
  variable *names*.

Everything masked reads REDACTED. docs/soak.md ("Secrets") says the same for users.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmsoak.profile import Profile

REDACTED = "***REDACTED***"
MIN_SECRET_LEN = 6
"""Environment values shorter than this are not treated as secrets (they would mask innocent text)."""

_SECRET_KEY_RE = re.compile(
    r"^(.*[_-])?(api[_-]?key|token|access[_-]?token|secret|password|passwd|authorization|cookie|credentials?)$",
    re.IGNORECASE)
_SECRET_ENV_NAME_RE = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)", re.IGNORECASE)
_BEARER_RE = re.compile(r"(\bBearer\s+)[^\s\"',;}\]]+", re.IGNORECASE)


def _looks_secret_key(key: object) -> bool:
    text = str(key)
    return bool(_SECRET_KEY_RE.search(text)) and not text.lower().endswith("_env")


@dataclass(frozen=True)
class Redactor:
    """Masks the secret values it holds (longest first) and secret-looking keys; see the module docstring."""

    secret_values: tuple[str, ...] = ()
    """The values to mask wherever they appear; never written anywhere (``repr`` hides them)."""

    def __repr__(self) -> str:
        return f"Redactor({len(self.secret_values)} secret values)"

    @classmethod
    def from_environment(cls, env_names: Iterable[str] = (),
                         environ: Mapping[str, str] | None = None) -> Redactor:
        """Secrets = the values of ``env_names`` plus those of every variable whose name looks secret."""
        environ = os.environ if environ is None else environ
        named = set(env_names)
        values = {value for name, value in environ.items()
                  if (name in named or _SECRET_ENV_NAME_RE.search(name)) and len(value) >= MIN_SECRET_LEN}
        return cls(tuple(sorted(values, key=lambda v: (-len(v), v))))

    @classmethod
    def for_profile(cls, profile: Profile, environ: Mapping[str, str] | None = None) -> Redactor:
        """The redactor of a run of ``profile``: its API key and header variables, and the environment's."""
        names = [profile.target.api_key_env, *profile.target.headers_env.values(),
                 (profile.sampler.token_env or "LLMSOAK_SAMPLER_TOKEN") if profile.sampler.remote else None]
        return cls.from_environment([n for n in names if n], environ)

    def text(self, text: str) -> str:
        """``text`` with every secret value and ``Bearer`` token replaced by REDACTED."""
        for secret in self.secret_values:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return _BEARER_RE.sub(lambda m: m.group(1) + REDACTED, text)

    def data(self, value: object, *, _names: bool = False) -> object:
        """A copy of ``value`` (mappings, lists, tuples as lists, strings) with secrets masked.

        A non-empty string under a secret-looking key is replaced whole; every string is passed
        through :meth:`text`. Keys are passed through :meth:`text` too. Other values are kept.
        """
        if isinstance(value, Mapping):
            out = {}
            for key, item in value.items():
                names = _names or str(key).lower().endswith("_env")  # values are variable names
                if not names and _looks_secret_key(key) and isinstance(item, str) and item:
                    out[self.text(str(key))] = REDACTED
                else:
                    out[self.text(str(key))] = self.data(item, _names=names)
            return out
        if isinstance(value, (list, tuple)):
            return [self.data(item, _names=_names) for item in value]
        if isinstance(value, str):
            return self.text(value)
        return value

    def scrub_file(self, path: str | os.PathLike) -> bool:
        """Rewrite ``path`` without any secret value (atomically: a reader sees the old or the new file).

        For files nobody writes to any more (a stopped child's log): a writer holding it open
        would go on writing to the replaced file. Returns True when something was masked.
        """
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError:
            return False
        text = data.decode("utf-8", "surrogateescape")
        clean = self.text(text)
        if clean == text:
            return False
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(clean.encode("utf-8", "surrogateescape"))
            os.chmod(tmp, path.stat().st_mode & 0o777)
            os.replace(tmp, path)
        except OSError:
            Path(tmp).unlink(missing_ok=True)
            return False
        return True
