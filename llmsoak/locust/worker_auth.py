"""Who may join a master: the worker token's proof, the version check (no Locust import here).

The token (``LLMSOAK_WORKER_TOKEN``, environment only, the same on master and workers) never
travels: a worker sends ``HMAC-SHA256(token, kind|worker id|time|nonce)``; the master
(:class:`Credentials`) refuses a proof older than :data:`MAX_CLOCK_SKEW_S`, a nonce it has seen
(a replay), or a worker of another llmsoak or Locust version. Kept apart from
llmsoak.locust.worker_join so that ``llmsoak run`` (which must not import Locust: it patches the
process with gevent) can read the same names.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections import OrderedDict
from importlib.metadata import version as dist_version

from llmsoak import __version__

TOKEN_ENV = "LLMSOAK_WORKER_TOKEN"
"""Environment variable holding the shared secret of a master and its workers."""
MASTER_SHA_ENV = "LLMSOAK_MASTER_PROFILE_SHA256"
"""Set by ``llmsoak worker`` for its Locust process: the sha256 of the master's profile file, so
the worker's local copy counts as the same profile at ``test_start`` (llmsoak.locust.profile_switch)."""
EXPECTED_ENV = "LLMSOAK_REMOTE_WORKERS"
"""Set by ``llmsoak run`` for its master: how many remote workers the run expects."""
MAX_CLOCK_SKEW_S = 300.0
"""A proof is accepted this long after (or before) the master's clock."""
NONCES_KEPT = 4096
"""Nonces remembered against replays (and refused worker ids, against repeated events)."""


def versions() -> dict:
    """``{"llmsoak": "0.1.0", "locust": "2.47.0"}`` of this installation."""
    return {"llmsoak": __version__, "locust": dist_version("locust")}


def _mac(token: str, kind: str, client_id: str, ts: float, nonce: str) -> str:
    message = f"{kind}|{client_id}|{ts:.3f}|{nonce}".encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


def credentials(kind: str, client_id: str, token: str | None) -> dict:
    """What a worker sends with :data:`JOIN` or :data:`HELLO`: versions and, with a token, its proof."""
    ts = round(time.time(), 3)
    nonce = secrets.token_hex(12)
    data = {**versions(), "ts": ts, "nonce": nonce, "host": os.uname().nodename}
    if token:
        data["mac"] = _mac(token, kind, client_id, ts, nonce)
    return data


def version_mismatch(data: dict) -> str | None:
    """One line naming the differing versions, or None."""
    mine = versions()
    theirs = {k: data.get(k) for k in mine}
    diff = [f"{k} {theirs[k] or '(unknown)'} on the worker, {mine[k]} on the master"
            for k in mine if theirs[k] != mine[k]]
    if diff:
        return "; ".join(diff) + ": install the same llmsoak and Locust on both (pip install -r requirements.txt)"
    return None


class Credentials:
    """Master: checks workers' proofs (token from :data:`TOKEN_ENV`, None = loopback, no token)."""

    def __init__(self, token: str | None) -> None:
        self._token = token or None
        self._nonces: OrderedDict[str, None] = OrderedDict()

    @property
    def required(self) -> bool:
        return self._token is not None

    def check(self, kind: str, client_id: str, data: object, now: float | None = None) -> str | None:
        """None when ``data`` may join, else one line why not (no secret in it)."""
        if not isinstance(data, dict) or "llmsoak" not in data:
            return ("no llmsoak hello: a plain Locust worker or an older llmsoak; start workers with "
                    "`llmsoak worker --master HOST:PORT`")
        if reason := version_mismatch(data):
            return reason
        if self._token is None:
            return None
        mac = data.get("mac")
        if not mac:
            return f"this master needs {TOKEN_ENV} and the worker sent no proof of it: set it on the worker"
        try:
            ts, nonce = float(data["ts"]), str(data["nonce"])
        except (KeyError, TypeError, ValueError):
            return "malformed hello"
        if not hmac.compare_digest(str(mac), _mac(self._token, kind, client_id, ts, nonce)):
            return f"wrong {TOKEN_ENV} (not the master's)"
        now = time.time() if now is None else now
        if abs(now - ts) > MAX_CLOCK_SKEW_S:
            return (f"the worker's clock differs from the master's by {abs(now - ts):.0f} s (over "
                    f"{MAX_CLOCK_SKEW_S:.0f} s): synchronise the clocks (NTP)")
        if nonce in self._nonces:
            return "a replayed hello (nonce seen before)"
        self._nonces[nonce] = None
        while len(self._nonces) > NONCES_KEPT:
            self._nonces.popitem(last=False)
        return None
