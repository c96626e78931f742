"""Every use of Locust's and geventhttpclient's internals, in one module, pinned to their versions.

llmsoak extends Locust through its public API: events (``request``, ``init``, ``test_start``,
``report_to_master``/``worker_report``, ``quitting``), custom arguments (forwarded to workers by
Locust), ``register_message``/``send_message``, ``User.wait()``, ``RequestStats.get``,
``StatsEntry.log``, ``WebUI.auth_required_if_enabled``, Flask hooks. Where no public API does the
job, or the public one costs too much on a per-token hot path or over a week-long soak, it uses
the internals below, and only through this module. tests/locust/test_internals.py checks that each
one still exists with the shape used here and that the installed versions are within
:data:`SUPPORTED`, the range pyproject.toml declares. Imported under another version, this
module prints one line naming both and exits 2 (docs/locust.md, "Supported versions").

geventhttpclient 2.6, a streamed response (``HTTPSocketPoolResponse``):

* ``_body_buffer``, ``_sock``, ``feed()``, ``message_complete``, ``release()``
  (:func:`body_reader`): read a stream once per arrival; and of gevent's socket (the one
  geventhttpclient hands over, gevent 24 to 26), ``socket._read_event``, ``socket._sock`` and
  ``socket.timeout``: wait until readable on the hub (``Hub.wait``; the idle timeout is one
  libev timer per stream, :class:`_IdleTimer`), then one ``recv``. ``readline`` costs a search and a copy
  per line and Locust's ``iter_content`` waits for 1 KiB, hiding the first token; see the
  benchmark in docs/locust.md.
* ``_sock``, ``_pool.release_socket()`` (:func:`close_quietly`): a failed stream's connection is
  dropped, never pooled for the next request.

Locust 2.47:

* ``User._state``, read only (:func:`user_is_stopping`): a think time of 0 checks for a graceful
  stop the way ``User.wait()`` does, without its yield to the gevent hub (several µs per turn of
  a Stress user). Longer waits go through the public ``User.wait()``.
* ``ResponseContextManager.request_meta`` (``"response_time"``, ``"exception"``)
  (:func:`set_response_time`, :func:`request_exception`), and ``FastResponse.error``, set by
  ``FastHttpSession`` on a request that got no response (:func:`response_error`): a streamed
  request's response time is the end of the stream (Locust records the headers' arrival), and a
  body that failed to arrive is reported with its cause.
* ``StatsEntry`` counters (``num_requests``, ``num_reqs_per_sec``, ``last_request_timestamp``,
  ``total_response_time``, ``min_response_time``, ``max_response_time``, ``response_times``)
  with the public ``locust.stats.bucket_response_time`` (:func:`log_many`): one ITL per token is
  logged in bulk, the same fields ``StatsEntry.log`` updates, at a fraction of its per-call cost.
* ``StatsEntry.num_reqs_per_sec``/``num_fail_per_sec``, ``RequestStats.history``,
  ``RequestStats.errors`` and ``StatsError`` (:func:`stats_rows`, :func:`per_second_counters`,
  :func:`chart_history`, :func:`error_rows`, :func:`error_row`): llmsoak.locust.bounded_memory
  trims what the master would otherwise keep for ever (docs/locust.md, "Bounded memory").
* ``StatsCSV(environment, PERCENTILES_TO_REPORT).requests_csv/failures_csv``
  (:func:`stats_csv_writers`): ``--csv``'s final rows, written once more at quit with Locust's own
  formatter (its CSV greenlet stops before the last requests are counted).
* ``MasterRunner.reported_user_classes_count`` (:func:`users_per_class`): users per class as the
  workers last reported them (a master runs no users of its own).
* Mutating ``Environment.user_classes`` after start-up (:func:`restore_user_classes`): Locust
  drops weight-0 classes when the environment is created; the profile switch needs them back.
* ``Environment.shape_class``, ``Environment.available_shape_classes``, ``LoadTestShape.runner``
  and ``WebUI.update_template_args()`` (:func:`set_running_shape`): the start form's profile
  replaces the running load shape.
* ``WorkerRunner.connect_to_master``, ``WorkerRunner.client``/``client_id`` and
  ``locust.rpc.Message`` (:func:`send_before_client_ready`): a worker's llmsoak hello (versions,
  token proof) goes out on the worker's own connection right before each ``client_ready``, which
  Locust sends from the runner's constructor, before any ``init`` listener runs.
* ``MasterRunner.handle_message(client_id, msg)``, called per message by the master's
  ``client_listener`` (:func:`filter_master_messages`): the master drops a worker that has not
  proved it holds the token before Locust counts it as connected.
* ``MasterRunner.clients`` and ``WorkerNode.id``/``state`` (:func:`worker_states`), and
  ``locust.rpc.Client`` (:func:`rpc_client`): who is connected; the ``llmsoak worker`` join
  request, sent before its Locust process starts (like Locust's own ``-f -`` download).
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import PackageNotFoundError, version

SUPPORTED: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "locust": ((2, 47), (2, 48)),
    "geventhttpclient": ((2, 6), (2, 7)),
}
"""Distribution → (lowest supported release, first unsupported one); pyproject.toml says the same."""

EXIT_UNSUPPORTED = 2
"""Exit status when imported under an unsupported version (bad input: the installation)."""


def release(text: str) -> tuple[int, ...]:
    """The leading numeric release of a version string: ``"2.47.0"`` → ``(2, 47, 0)``."""
    match = re.match(r"\d+(?:\.\d+)*", text)
    return tuple(int(part) for part in match.group().split(".")) if match else ()


def spec(name: str) -> str:
    """The supported range as a pip requirement, e.g. ``locust>=2.47,<2.48``."""
    low, high = SUPPORTED[name]
    return f"{name}>={'.'.join(map(str, low))},<{'.'.join(map(str, high))}"


def unsupported_versions() -> list[str]:
    """``"locust 2.48.0"``-style entries for each installed distribution outside SUPPORTED."""
    out = []
    for name, (low, high) in SUPPORTED.items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            out.append(f"{name} (not installed)")
            continue
        if not low <= release(installed) < high:
            out.append(f"{name} {installed}")
    return out


def _check_versions() -> None:
    bad = unsupported_versions()
    if bad:
        sys.stderr.write(
            f"llmsoak: {' and '.join(bad)} installed, but llmsoak's Locust side supports only "
            f"{' and '.join(spec(n) for n in SUPPORTED)} (it relies on their internals): "
            "pip install -r requirements.txt\n")
        sys.stderr.flush()
        raise SystemExit(EXIT_UNSUPPORTED)


_check_versions()

# The version check comes first: another version may lack what these imports name.
import locust.stats  # noqa: E402
from gevent import get_hub, getcurrent  # noqa: E402
from geventhttpclient.response import HTTPConnectionClosed  # noqa: E402
from locust.runners import MasterRunner  # noqa: E402
from locust.user.users import LOCUST_STATE_STOPPING  # noqa: E402

# --------------------------------------------------------------------------- geventhttpclient

RECV_BYTES = 64 * 1024
"""Most bytes taken from the socket per read (geventhttpclient's own block is 4 KiB)."""


def body_reader(stream):
    """``read_chunk()`` for a geventhttpclient streamed response: the decoded body bytes that have
    arrived (waiting for at least one), ``b""`` at the end of the body.

    Reads the way ``stream.readline`` does internally, once per arrival instead of once per
    line: one ``recv`` of whatever is there, fed to the response's HTTP parser (which undoes
    chunked transfer encoding into ``_body_buffer`` and returns the connection to the pool once
    the body is complete), then all of the parsed body at once. Errors are the ones ``readline``
    raises (``HTTPParseError`` for a body cut off, socket timeouts and resets), and as with
    ``readline`` the connection of a body left incomplete is closed, not pooled.

    When the previous ``recv`` emptied the socket (it returned less than it asked for), the next
    one first waits until the socket is readable and then does one ``recv`` on the underlying
    non-blocking socket. gevent's ``recv`` would try first, fail with EWOULDBLOCK (a system call
    and a Python exception), then wait and try again: with paced tokens (one per read) that
    was paid on every token. The wait is the hub's own wait on the socket's read watcher; the
    socket's timeout (``network_timeout``, an idle gap) is kept by :class:`_IdleTimer`, which
    costs one clock read per wait instead of a gevent ``Timeout`` started and cancelled.
    """
    buffer = stream._body_buffer
    drained = False  # unknown after the headers: the first read tries the socket at once
    first = stream._sock
    idle = _IdleTimer(first.timeout) if first is not None and first.timeout else None
    hub_wait = get_hub().wait

    def read_chunk() -> bytes:
        nonlocal drained
        while True:
            if buffer:
                data = bytes(buffer)
                del buffer[:]
                return data
            if stream.message_complete:
                if idle is not None:
                    idle.stop()
                return b""
            sock = stream._sock
            if sock is None:
                raise HTTPConnectionClosed("connection closed.")  # what readline raises here
            try:
                if drained:
                    if idle is None:
                        hub_wait(sock._read_event)
                    else:
                        idle.wait(hub_wait, sock._read_event)  # TimeoutError after network_timeout
                    try:
                        data = sock._sock.recv(RECV_BYTES)
                    except BlockingIOError:  # woken without data after all: gevent's own path
                        data = sock.recv(RECV_BYTES)
                else:
                    data = sock.recv(RECV_BYTES)
                drained = len(data) < RECV_BYTES
                stream.feed(data)  # b"" (peer closed) makes the parser finish the body or raise
            except BaseException:
                if idle is not None:
                    idle.stop()
                stream.release()  # as readline does: a body not complete closes the socket (should_close)
                raise
            if not data and not stream.message_complete:
                stream.release()  # the parser accepted the end without completing: never spin on it
                raise HTTPConnectionClosed("connection closed.")

    return read_chunk


class _IdleTimer:
    """A socket timeout for a series of waits of one greenlet, started once instead of per wait.

    ``wait(hub_wait, watcher)`` raises ``TimeoutError("timed out")`` (what gevent's socket raises)
    in the waiting greenlet once it has waited ``timeout_s`` without the watcher firing. One
    libev timer serves every wait: when it fires during a wait that began later, it re-arms for
    the rest; when it fires between waits, it does nothing and the next wait arms a new one. So a
    wait costs a clock read and two assignments; a timer is created at most once per
    ``timeout_s`` of streaming. ``stop()`` when the series is over.
    """

    __slots__ = ("_greenlet", "_loop", "_timer", "_timeout_s", "_waiting_since")

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._loop = get_hub().loop
        self._greenlet = getcurrent()
        self._timer = None
        self._waiting_since: float | None = None

    def wait(self, hub_wait, watcher) -> None:
        self._waiting_since = self._loop.now()
        timer = self._timer
        if timer is None or not timer.active:
            self._arm(self._timeout_s)
        try:
            hub_wait(watcher)
        finally:
            self._waiting_since = None

    def _arm(self, after_s: float) -> None:
        self._timer = self._loop.timer(after_s, ref=False)
        self._timer.start(self._fired)

    def _fired(self) -> None:  # runs in the hub
        since = self._waiting_since
        if since is None:
            return  # between waits: the next wait arms a new timer
        remaining = since + self._timeout_s - self._loop.now()
        if remaining > 0.001:
            self._arm(remaining)
        else:
            self._greenlet.throw(TimeoutError("timed out"))

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None


def close_quietly(resp) -> None:
    """Drop a connection left mid-body (a failed stream) instead of returning it to the pool."""
    try:
        stream = resp.stream
        sock = getattr(stream, "_sock", None)
        if sock is not None:
            pool = getattr(stream, "_pool", None)
            stream._sock = None
            if pool is not None:
                pool.release_socket(sock)
            else:
                sock.close()
    except Exception:  # noqa: BLE001 - best effort cleanup of a broken connection
        pass


# --------------------------------------------------------------------------- Locust: users

def user_is_stopping(user) -> bool:
    """Whether Locust asked ``user`` to stop gracefully (``User.wait()`` raises StopUser then)."""
    return user._state == LOCUST_STATE_STOPPING


# --------------------------------------------------------------------------- Locust: one request

def set_response_time(resp, response_time_ms: float) -> None:
    """The response time the request event of ``resp`` (a ``catch_response`` context) will carry."""
    resp.request_meta["response_time"] = response_time_ms


def request_exception(resp) -> BaseException | None:
    """What FastHttpSession caught while getting ``resp`` (e.g. reading a body that broke off)."""
    return resp.request_meta.get("exception")


def response_error(resp) -> BaseException | None:
    """The exception of a request that got no response at all (refused, reset), else None."""
    return getattr(resp, "error", None)


# --------------------------------------------------------------------------- Locust: stats

def log_many(entry, values_ms: list[float]) -> None:
    """``entry.log(v, 0)`` for every value, at one timestamp: the same fields, a fraction of the cost.

    The first value goes through ``StatsEntry.log`` (which also maintains the response-time
    cache); the rest update the same counters Locust's ``log`` updates.
    """
    entry.log(values_ms[0], 0)
    rest = values_ms[1:]
    if not rest:
        return
    n = len(rest)
    entry.num_requests += n
    entry.num_reqs_per_sec[int(entry.last_request_timestamp)] += n
    entry.total_response_time += sum(rest)
    lo, hi = min(rest), max(rest)
    if entry.min_response_time is None or lo < entry.min_response_time:
        entry.min_response_time = lo
    if hi > entry.max_response_time:
        entry.max_response_time = hi
    buckets = entry.response_times
    bucket_response_time = locust.stats.bucket_response_time  # looked up per call: Locust lets users replace it
    zeros = rest.count(0.0)
    if zeros:  # gaps of tokens that arrived in the same read, counted in one C call
        buckets[bucket_response_time(0.0)] += zeros
    if zeros < n:
        for v in filter(None, rest):
            buckets[bucket_response_time(v)] += 1


def stats_rows(stats) -> list:
    """Every StatsEntry of a RequestStats, the Aggregated row (``stats.total``) first."""
    return [stats.total, *list(stats.entries.values())]


def per_second_counters(entry) -> tuple[dict, dict]:
    """A StatsEntry's ``{unix second: count}`` dicts of requests and of failures."""
    return entry.num_reqs_per_sec, entry.num_fail_per_sec


def chart_history(stats) -> list:
    """The list of chart rows (one every 5 s) Locust and its web UI keep a reference to."""
    return stats.history


def error_rows(stats) -> dict:
    """``{key: StatsError}``; a StatsError has ``error``, ``occurrences`` and ``last_seen`` (Unix s)."""
    return stats.errors


def error_row(method: str, name: str, error: str):
    """``(key, StatsError)`` for a new error row with no occurrences yet."""
    key = locust.stats.StatsError.create_key(method, name, error)
    return key, locust.stats.StatsError(method, name, error, occurrences=0)


def stats_csv_writers(environment):
    """``(requests_csv, failures_csv)``: Locust's own writers of ``_stats.csv`` and ``_failures.csv``
    rows, each taking a ``csv.writer``."""
    formatter = locust.stats.StatsCSV(environment, locust.stats.PERCENTILES_TO_REPORT)
    return formatter.requests_csv, formatter.failures_csv


# --------------------------------------------------------------------------- Locust: runners

def users_per_class(runner) -> dict[str, int]:
    """Current users per user class name; on a master, as the workers last reported them."""
    if isinstance(runner, MasterRunner):
        return dict(runner.reported_user_classes_count)
    return dict(runner.user_classes_count)


def restore_user_classes(environment, classes) -> None:
    """Put back user ``classes`` Locust dropped at start-up (weight 0), so a later test may use them."""
    for cls in classes:
        if cls not in environment.user_classes:
            environment.user_classes.append(cls)


def set_running_shape(environment, shape) -> None:
    """Make the LoadTestShape instance ``shape`` the one the runner and the web UI use."""
    shape.runner = environment.runner
    environment.shape_class = shape
    if environment.available_shape_classes is not None:
        environment.available_shape_classes[type(shape).__name__] = shape
    web_ui = getattr(environment, "web_ui", None)
    if web_ui is not None:
        web_ui.update_template_args()


# --------------------------------------------------------------------------- Locust: master/worker

def send_before_client_ready(make_message) -> None:
    """Worker: before every ``client_ready`` (first connect and retries), send the message
    ``make_message(client_id) -> (type, data)`` on the same connection, so the master reads it
    first. Idempotent; patches the class, so call it before Locust creates the runner."""
    from locust.rpc import Message
    from locust.runners import WorkerRunner

    original = WorkerRunner.connect_to_master
    if getattr(original, "_llmsoak_hello", False):
        return

    def connect_to_master(self):
        msg_type, data = make_message(self.client_id)
        self.client.send(Message(msg_type, data, self.client_id))
        return original(self)

    connect_to_master._llmsoak_hello = True  # type: ignore[attr-defined]
    WorkerRunner.connect_to_master = connect_to_master


def filter_master_messages(runner, allow) -> None:
    """Master: ``allow(client_id, msg_type, data) -> bool`` sees every message from a worker
    before Locust does; False drops it (Locust never learns of it)."""
    original = runner.handle_message

    def handle_message(client_id, msg):
        if allow(client_id, msg.type, msg.data):
            original(client_id, msg)

    runner.handle_message = handle_message


def worker_states(runner) -> dict[str, str]:
    """Master: ``{worker id: state}`` of every worker Locust knows (``ready``, ``running``,
    ``spawning``, ``missing``, ``stopped`` …)."""
    return {node.id: node.state for node in runner.clients.all}


def rpc_client(host: str, port: int, identity: str):
    """A ZMQ client to a Locust master: ``.send(Message)``, ``.recv() -> Message``, ``.close()``."""
    from locust.rpc import zmqrpc

    return zmqrpc.Client(host, port, identity)


def rpc_message(msg_type: str, data, node_id: str):
    from locust.rpc import Message

    return Message(msg_type, data, node_id)
