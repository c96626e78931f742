"""The one redaction (llmsoak/redact.py) and the redacted profile.yaml of a run (llmsoak/run/launch.py).

The end-to-end check (a real run with the API key in the environment and in the target's own
log, and no file of the run directory holding it) is tests/run/test_run.py."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import yaml

from llmsoak.profile import load_profile, profile_from_dict
from llmsoak.redact import REDACTED, Redactor
from llmsoak.run.launch import resolved_profile_yaml

KEY = "sk-live-0123456789"
TOKEN = "tok-abcdefgh"


def _profile(tmp_path: Path) -> Path:
    path = tmp_path / "secrets.yaml"
    path.write_text("""name: secrets
target:
  url: http://127.0.0.1:8000
  model: m
  api_key_env: MY_KEY
  headers: {X-Team: qa}
  headers_env: {X-Session-Token: APP_SESSION}
  command: llmsoak stub --port 8000
""")
    return path


def test_values_of_the_profiles_variables_and_secret_looking_ones_are_masked(tmp_path):
    # GIVEN a profile naming MY_KEY and APP_SESSION, and an environment with other variables
    env = {"MY_KEY": KEY, "APP_SESSION": TOKEN, "GITHUB_TOKEN": "ghp_xyz12345", "SHORT_KEY": "abc",
           "HOME": "/home/someone"}
    redactor = Redactor.for_profile(load_profile(_profile(tmp_path)), environ=env)
    # WHEN text holding them passes the redactor
    text = redactor.text(f"args: --api-key {KEY} --token={TOKEN} gh ghp_xyz12345 short abc home /home/someone")
    # THEN the named variables' values and the secret-looking variable's value are gone; a value
    # too short to be a secret and innocent variables stay
    assert text == f"args: --api-key {REDACTED} --token={REDACTED} gh {REDACTED} short abc home /home/someone"
    # AND the values never show in its repr (it may end up in a log)
    assert KEY not in repr(redactor) and "3 secret values" in repr(redactor)


def test_bearer_tokens_in_text_are_masked_even_when_unknown():
    redactor = Redactor()
    assert redactor.text("{'Authorization': 'Bearer abc.def-123'} ok") == f"{{'Authorization': 'Bearer {REDACTED}'}} ok"
    assert redactor.text("authorization: bearer xyz") == f"authorization: bearer {REDACTED}"
    assert redactor.text("no tokens here") == "no tokens here"


def test_data_masks_secret_keys_but_keeps_variable_names():
    redactor = Redactor(secret_values=(KEY,))
    data = {"overrides": {"target.headers.X-Token": "literal-1", "load.users": 20},
            "api_key": "literal-2", "api_key_env": "MY_KEY", "max_tokens": 64,
            "headers_env": {"X-Session-Token": "APP_SESSION"},
            "argv": ("llmsoak", "stub", f"--key={KEY}"), "password": "", "token": None}
    assert redactor.data(data) == {
        "overrides": {"target.headers.X-Token": REDACTED, "load.users": 20},
        "api_key": REDACTED, "api_key_env": "MY_KEY", "max_tokens": 64,
        "headers_env": {"X-Session-Token": "APP_SESSION"},  # names of variables, not secrets
        "argv": ["llmsoak", "stub", f"--key={REDACTED}"], "password": "", "token": None}


def test_resolved_profile_yaml_holds_no_secret_and_loads_back_equal(tmp_path, monkeypatch):
    # GIVEN a profile whose header variable has a secret-looking header name (docs/profiles.md's
    # own example) and whose variables are set
    path = _profile(tmp_path)
    monkeypatch.setenv("MY_KEY", KEY)
    monkeypatch.setenv("APP_SESSION", TOKEN)
    profile = load_profile(path)
    # WHEN it is written as the run directory's profile.yaml
    text = resolved_profile_yaml(profile, path, Redactor.for_profile(profile))
    # THEN no secret is in it, the variable names are, and it loads back to the same profile
    assert KEY not in text and TOKEN not in text
    assert "api_key_env: MY_KEY" in text and "X-Session-Token: APP_SESSION" in text
    assert text.startswith(f"# resolved from {path} by llmsoak run; secrets redacted\n")
    again = profile_from_dict(yaml.safe_load(text), source=path)
    assert again.to_dict() == profile.to_dict()
    assert again.target.resolve_headers()["X-Session-Token"] == TOKEN


def test_scrub_file_rewrites_only_files_holding_a_secret(tmp_path):
    redactor = Redactor(secret_values=(KEY,))
    log = tmp_path / "target.log"
    log.write_bytes(f"INFO args: api_key={KEY}\n\xff binary tail\n".encode("latin-1"))
    os.chmod(log, 0o600)
    clean = tmp_path / "sampler.log"
    clean.write_text("nothing secret\n")
    inode = clean.stat().st_ino
    # WHEN both are scrubbed
    assert redactor.scrub_file(log) is True
    assert redactor.scrub_file(clean) is False
    assert redactor.scrub_file(tmp_path / "missing.log") is False
    # THEN the secret is gone, other bytes and the file mode are kept, the clean file is untouched
    assert log.read_bytes() == f"INFO args: api_key={REDACTED}\n\xff binary tail\n".encode("latin-1")
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert clean.stat().st_ino == inode and clean.read_text() == "nothing secret\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left
