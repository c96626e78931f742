"""Remote workers joining a master: the profile travels over Locust's own port, workers prove a token.

``llmsoak worker --master HOST:PORT`` (llmsoak.commands.worker) joins in two steps, both over the
master's Locust port (ZMQ), so a worker machine needs no copy of any file:

1. **Join request** (:func:`fetch_profile`, before its Locust process starts, like Locust's own
   ``-f -`` download): message :data:`JOIN` with both versions and the token proof; the master
   answers :data:`JOIN_REPLY` with the profile file's bytes and its prompt file, or one line why
   not (another llmsoak/Locust version, a wrong or missing token). The worker writes them to a
   private temporary folder and starts ``locust --worker --profile <that copy>``.
2. **Hello** (:func:`install_worker_hello`, in that Locust process): right before each
   ``client_ready``, message :data:`HELLO` with the same proof, on the same connection. The
   master (:class:`WorkerGate`) lets ``client_ready`` through only from a worker whose hello it
   accepted: a plain ``locust --worker``, another version or a wrong token is never counted as
   connected, gets no users, and is recorded in ``events.csv`` (kind ``worker``).

The token (``LLMSOAK_WORKER_TOKEN``, environment only, the same on master and workers) never
travels: the proof and the version check are llmsoak.locust.worker_auth. Without a token on
the master (it binds 127.0.0.1 then: ``llmsoak run`` refuses another address without one) any
llmsoak worker of the same versions may join. The profile and prompts themselves travel in
clear: keep the port on a private network.

The master also watches its workers (:meth:`WorkerGate.watch`): a worker that joins, is lost
(missing heartbeats, or quit) or rejoins (same host again) is an event, and ``RUN/workers.json``
(:func:`llmsoak.rundir.RunDir.workers`) keeps the counts and the largest users shortfall for the
run's summary. Format: docs/formats.md ("workers.json").
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import time
from collections import OrderedDict
from pathlib import Path

from locust.exception import RPCError

from llmsoak.events import append_event
from llmsoak.locust import internals
from llmsoak.locust.worker_auth import (
    EXPECTED_ENV,
    NONCES_KEPT,
    TOKEN_ENV,
    Credentials,
    credentials,
)

logger = logging.getLogger(__name__)

JOIN, JOIN_REPLY, HELLO = "llmsoak_join", "llmsoak_join_reply", "llmsoak_hello"
"""Message types of the join request, its answer, and the hello before ``client_ready``."""
PROMPTS_MAX_BYTES = 64 * 2**20
"""Largest prompt file the master sends to a worker (64 MiB)."""
RECORDS_KEPT = 64
"""Workers listed in workers.json (the most recent; counts cover all of them)."""
WATCH_INTERVAL_S = 1.0
ACTIVE_STATES = ("ready", "spawning", "running", "stopping", "cleanup")


def worker_host(client_id: str) -> str:
    """The host part of a Locust worker id (``<hostname>_<hex>``)."""
    return client_id.rsplit("_", 1)[0] if "_" in client_id else client_id


class WorkerGate:
    """Master: admits workers that proved the token, answers join requests, records who comes and goes."""

    def __init__(self, environment, profile_path, *, token: str | None, expected: int = 0,
                 events_path: Path | None = None, state_path: Path | None = None) -> None:
        self.environment = environment
        self.profile_path = profile_path
        """Callable → the path of the profile file the workers must run."""
        self.credentials = Credentials(token)
        self.expected = expected
        self.events_path = events_path
        self.state_path = state_path
        self.admitted: OrderedDict[str, float] = OrderedDict()
        self._refused_ids: OrderedDict[str, None] = OrderedDict()
        self._told_to_quit: OrderedDict[str, None] = OrderedDict()
        self.active: set[str] = set()
        self.records: OrderedDict[str, dict] = OrderedDict()
        self.lost_hosts: dict[str, int] = {}
        self.counts = {"joined": 0, "lost": 0, "rejoined": 0, "refused": 0}
        self.max_shortfall_users = 0
        self.shortfall_at: float | None = None
        self.test_ended = False
        """Set at ``test_stop``: workers leaving then were told to by the master."""
        self._carry_over()

    def _carry_over(self) -> None:
        """A new segment's master continues the run's counts (workers.json of the last segment)."""
        if self.state_path is None:
            return
        try:
            old = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return
        if not isinstance(old, dict):
            return
        for key in self.counts:
            if isinstance(old.get(key), int):
                self.counts[key] = old[key]
        if isinstance(old.get("max_shortfall_users"), int):
            self.max_shortfall_users = old["max_shortfall_users"]
            self.shortfall_at = old.get("max_shortfall_at")

    # -- events ------------------------------------------------------------------------------
    def event(self, detail: str, error: bool = False) -> None:
        (logger.warning if error else logger.info)("llmsoak: %s", detail)
        if self.events_path is not None:
            try:
                append_event(self.events_path, "worker", detail)
            except OSError as exc:
                logger.error("llmsoak: cannot write %s: %s", self.events_path, exc)

    def _refuse(self, client_id: str, reason: str, what: str) -> None:
        if client_id in self._refused_ids:
            return  # Locust retries client_ready: one event per worker
        self._refused_ids[client_id] = None
        while len(self._refused_ids) > NONCES_KEPT:
            self._refused_ids.popitem(last=False)
        self.counts["refused"] += 1
        self.event(f"worker refused ({what}): {worker_host(client_id)} ({client_id}): {reason}", error=True)
        self.write_state()

    # -- messages ----------------------------------------------------------------------------
    def allow(self, client_id: str, msg_type: str, data) -> bool:
        """The master's message filter (llmsoak.locust.internals.filter_master_messages)."""
        if msg_type == HELLO:
            reason = self.credentials.check(HELLO, client_id, data)
            if reason is None:
                self.admitted[client_id] = time.time()
                while len(self.admitted) > NONCES_KEPT:
                    self.admitted.popitem(last=False)
            else:
                self._refuse(client_id, reason, "hello")
            return False
        if msg_type == JOIN:
            self._answer_join(client_id, data)
            return False
        if client_id in self.admitted:
            return True
        if msg_type == "client_ready":
            self._refuse(client_id, self.credentials.check(HELLO, client_id, None) or "no hello", "connect")
        elif msg_type == "heartbeat" and client_id not in self._told_to_quit:
            # A worker of this port's previous master (Locust was restarted for a new segment): ZMQ
            # reconnected it here, but it never joined this master. Told to quit, `llmsoak worker`
            # joins again at once instead of after Locust's 60 s master-heartbeat timeout.
            self._told_to_quit[client_id] = None
            while len(self._told_to_quit) > NONCES_KEPT:
                self._told_to_quit.popitem(last=False)
            self.environment.runner.send_message("quit", None, client_id=client_id)
        return False  # heartbeats, stats … of a worker never admitted

    def _answer_join(self, client_id: str, data) -> None:
        runner = self.environment.runner
        reason = self.credentials.check(JOIN, client_id, data)
        if reason is not None:
            self._refuse(client_id, reason, "join")
            runner.send_message(JOIN_REPLY, {"ok": False, "error": reason}, client_id=client_id)
            return
        try:
            reply = profile_payload(self.profile_path())
        except (OSError, ValueError) as err:
            reply = {"ok": False, "error": f"the master cannot send its profile: {err}"}
        runner.send_message(JOIN_REPLY, reply, client_id=client_id)

    # -- watching ----------------------------------------------------------------------------
    def watch(self) -> None:
        """One look at the master's workers: events for joins and losses, workers.json."""
        runner = self.environment.runner
        states = internals.worker_states(runner)
        now_active = {cid for cid, state in states.items() if state in ACTIVE_STATES}
        changed = False
        for cid in sorted(now_active - self.active):
            host = worker_host(cid)
            rejoin = self.lost_hosts.get(host, 0) > 0
            if rejoin:
                self.lost_hosts[host] -= 1
                self.counts["rejoined"] += 1
            self.counts["joined"] += 1
            self.records[cid] = {"id": cid, "host": host, "joined_at": round(time.time(), 3), "lost_at": None}
            self.active.add(cid)
            self.event(f"worker {'rejoined' if rejoin else 'joined'}: {host} ({cid}); "
                       f"{self._connected_text()}")
            changed = True
        for cid in sorted(self.active - now_active):
            host = worker_host(cid)
            self.active.discard(cid)
            if self.test_ended and states.get(cid) != "missing":
                continue  # the master told its workers to quit at the end of the test: not a loss
            self.lost_hosts[host] = self.lost_hosts.get(host, 0) + 1
            self.counts["lost"] += 1
            record = self.records.setdefault(cid, {"id": cid, "host": host, "joined_at": None})
            record["lost_at"] = round(time.time(), 3)
            how = "missing heartbeats" if states.get(cid) == "missing" else "disconnected"
            self.event(f"worker lost ({how}): {host} ({cid}); {self._connected_text()}; "
                       f"{self._users_text()}", error=True)
            changed = True
        while len(self.records) > RECORDS_KEPT:
            self.records.popitem(last=False)
        shortfall = self.shortfall_users()
        if shortfall > self.max_shortfall_users:
            self.max_shortfall_users, self.shortfall_at = shortfall, time.time()
            changed = True
        if changed or not self._state_written:
            self.write_state()

    _state_written = False

    def shortfall_users(self) -> int:
        """Users the load shape asks for that no worker runs, while workers are missing (else 0:
        a ramp is not a shortfall)."""
        runner = self.environment.runner
        if self.expected <= 0 or len(self.active) >= self.expected or runner.state != "running":
            return 0
        target = int(getattr(runner, "target_user_count", 0) or 0)
        return max(0, target - int(runner.user_count or 0))

    def _connected_text(self) -> str:
        if self.expected:
            return f"{len(self.active)} of {self.expected} expected workers connected"
        return f"{len(self.active)} worker(s) connected"

    def _users_text(self) -> str:
        runner = self.environment.runner
        target = getattr(runner, "target_user_count", None)
        return f"users {runner.user_count} running" + (f" of {target} asked" if target else "")

    def state(self) -> dict:
        runner = self.environment.runner
        return {"schema": 1, "updated_at": round(time.time(), 3), "expected": self.expected,
                "connected": len(self.active), **self.counts,
                "token_required": self.credentials.required,
                "users": int(runner.user_count or 0),
                "target_users": getattr(runner, "target_user_count", None),
                "max_shortfall_users": self.max_shortfall_users,
                "max_shortfall_at": self.shortfall_at,
                "workers": list(self.records.values())}

    def write_state(self) -> None:
        if self.state_path is None:
            return
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(self.state(), indent=1) + "\n")
            os.replace(tmp, self.state_path)
            self._state_written = True
        except OSError as exc:
            logger.error("llmsoak: cannot write %s: %s", self.state_path, exc)


def profile_payload(path: str | os.PathLike) -> dict:
    """The :data:`JOIN_REPLY` of a master running ``path``: the file's bytes, its sha256, and the
    prompt file it names (``prompts.path``), if any. ValueError for a prompt file over the cap."""
    import yaml  # start-up: only a master answering a join reads YAML here

    raw = Path(path).read_bytes()
    reply = {"ok": True, "profile": raw.decode("utf-8"), "profile_sha256": hashlib.sha256(raw).hexdigest(),
             "prompts": None}
    doc = yaml.safe_load(raw) or {}
    prompts_path = ((doc.get("prompts") or {}) if isinstance(doc, dict) else {}).get("path")
    if prompts_path:
        p = Path(os.path.expanduser(str(prompts_path)))
        if not p.is_absolute():
            p = Path(path).resolve().parent / p
        size = p.stat().st_size
        if size > PROMPTS_MAX_BYTES:
            raise ValueError(f"prompt file {p} is {size} bytes, over the {PROMPTS_MAX_BYTES} a worker is sent")
        reply["prompts"] = {"name": p.name, "content": p.read_bytes()}
    return reply


def write_payload(reply: dict, folder: Path) -> Path:
    """Write a :data:`JOIN_REPLY` into ``folder``: the profile (its ``prompts.path`` pointing at the
    copy of the prompt file beside it); returns the profile's path."""
    import yaml  # start-up: see profile_payload

    text = reply["profile"]
    prompts = reply.get("prompts")
    if prompts:
        name = Path(str(prompts["name"])).name or "prompts"
        (folder / name).write_bytes(prompts["content"])
        doc = yaml.safe_load(text)
        doc["prompts"]["path"] = name
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    profile = folder / "profile.yaml"
    profile.write_text(text, encoding="utf-8")
    return profile


class JoinRefused(Exception):
    """The master answered the join request with a refusal (the message says why)."""


def fetch_profile(host: str, port: int, token: str | None, timeout_s: float, on_wait=None) -> dict:
    """Ask the master at ``host:port`` for its profile (resending every second until it answers).

    Returns the :data:`JOIN_REPLY`; raises :class:`JoinRefused` for a refusal and TimeoutError
    when nothing answered within ``timeout_s``. ``on_wait(elapsed_s)`` is called every 10 s.
    """
    import gevent  # start-up: `llmsoak --help` imports this command's module

    client_id = f"{os.uname().nodename}_llmsoak_join_{secrets.token_hex(8)}"
    client = internals.rpc_client(host, port, client_id)
    done = [False]

    def ask() -> None:
        while not done[0]:
            client.send(internals.rpc_message(JOIN, credentials(JOIN, client_id, token), client_id))
            gevent.sleep(1.0)

    def wait() -> None:
        started = time.monotonic()
        while not done[0]:
            gevent.sleep(10.0)
            if not done[0] and on_wait is not None:
                on_wait(time.monotonic() - started)

    def receive():
        while True:
            try:
                msg = client.recv()
            except RPCError:  # nobody there yet, or the link dropped: ZMQ reconnects by itself
                gevent.sleep(1.0)
                continue
            if msg.type == JOIN_REPLY:
                return msg.data

    sender, waiter, receiver = gevent.spawn(ask), gevent.spawn(wait), gevent.spawn(receive)
    try:
        reply = receiver.get(timeout=timeout_s)
    except gevent.Timeout:
        raise TimeoutError(f"no answer from a master at {host}:{port} within {timeout_s:g} s") from None
    finally:
        done[0] = True
        gevent.killall([sender, waiter, receiver])
        client.close(linger=0)
    if not reply.get("ok"):
        raise JoinRefused(str(reply.get("error") or "refused"))
    return reply


def install_worker_hello() -> None:
    """Worker side (at locustfile import): send the hello before every ``client_ready``."""
    token = os.environ.get(TOKEN_ENV) or None
    internals.send_before_client_ready(lambda client_id: (HELLO, credentials(HELLO, client_id, token)))


def install_master(environment, profile_path) -> WorkerGate:
    """Master side (from the ``init`` listener): the gate, the join answers, the watcher greenlet."""
    import gevent

    from llmsoak.rundir import RunDir  # start-up: not needed by workers

    run_dir = os.environ.get("LLMSOAK_RUN_DIR")
    events = os.environ.get("LLMSOAK_EVENTS")
    try:
        expected = int(os.environ.get(EXPECTED_ENV) or 0)
    except ValueError:
        expected = 0
    gate = WorkerGate(environment, profile_path, token=os.environ.get(TOKEN_ENV), expected=expected,
                      events_path=Path(events) if events else None,
                      state_path=RunDir(Path(run_dir)).workers if run_dir else None)
    internals.filter_master_messages(environment.runner, gate.allow)

    def watcher() -> None:
        while True:
            try:
                gate.watch()
            except Exception:  # a bookkeeping error must not end a week-long soak
                logger.exception("llmsoak: watching the workers failed")
            gevent.sleep(WATCH_INTERVAL_S)

    gevent.spawn(watcher)
    environment.events.quitting.add_listener(lambda **_kw: gate.write_state())

    def on_test_start(**_kw) -> None:
        gate.test_ended = False

    def on_test_stop(**_kw) -> None:
        gate.test_ended = True

    environment.events.test_start.add_listener(on_test_start)
    environment.events.test_stop.add_listener(on_test_stop)
    return gate
