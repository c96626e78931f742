"""Pulling a remote sampler's rows into the run directory (profile ``sampler.remote``).

``llmsoak sample --listen HOST:PORT`` runs on the target's host; ``llmsoak run`` pulls its rows
(``GET /api/rows?since=TS``, read from the sampler's own CSV file) every ``pull_interval_s`` into
``samples/target.csv`` through the same writer as a local sampler, and its events into
``events.csv``. Checkpoints, the verdict, the live page and the SLO gate read that file as usual.

- **Resuming.** Each pull asks for the rows after the last row in our file, so after an outage
  (or a restart of either side) it continues from there: no gap it could fill, no duplicate (the
  writer also refuses a row that is not after the last one).
- **Clocks.** Every pull measures the sampler's clock against ours, NTP-style, from the request's
  send and receive times and the two sampler times in the reply (``X-Llmsoak-Received``,
  ``X-Llmsoak-Sent``): ``offset = ((t1 - t0) + (t2 - t3)) / 2`` (sampler minus orchestrator),
  ``delay = (t3 - t0) - (t2 - t1)``. The best (lowest-delay) measurement of every 10 s goes to
  ``clock_offsets.csv``. Rows and events are placed on **the orchestrator's clock** by one fixed
  shift, the offset measured at the run's first contact (kept in run.json, so a resumed run uses
  the same): rows keep the sampler's order and spacing, and ``clock_offsets.csv`` shows any drift.
- **Outages.** A failed pull is retried with backoff (1 s doubling to 30 s); the first failure
  writes an ``alert`` event, the first success after it an ``info`` event with the length of the
  outage and the rows caught up. It never ends the run. At the start, an unreachable sampler
  ends it with exit 4 and a wrong or missing token with exit 2 (one line each).
- **Token.** ``Authorization: Bearer $<sampler.token_env>`` (default ``LLMSOAK_SAMPLER_TOKEN``),
  from the environment only; it is in no file, log or message.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from llmsoak.errors import EXIT_BAD_INPUT, EXIT_IO_ERROR, EXIT_TARGET_UNAVAILABLE, CommandError
from llmsoak.events import append_event
from llmsoak.formats import CLOCK_OFFSETS_COLUMNS, EVENT_KINDS, SAMPLES_COLUMNS
from llmsoak.sampler.live import HEADER_MORE, HEADER_RECEIVED, HEADER_SENT, TOKEN_ENV
from llmsoak.sampler.samples_writer import AppendingCsvWriter, SamplesWriteError

PULL_INTERVAL_S = 2.0
"""Seconds between pulls while the sampler answers."""
PAGE_ROWS = 5000
"""Rows asked for per request; a fuller backlog is fetched page after page at once."""
TIMEOUT_S = 10.0
"""Connect and read timeout of one request."""
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
FIRST_CONTACT_PROBES = 3
"""Requests at the first contact; the one with the lowest network delay sets the run's shift."""
OFFSET_ROW_EVERY_S = 10.0
"""At most one clock_offsets.csv row per this many seconds (the lowest-delay measurement)."""


class PullError(Exception):
    """One pull failed; ``str()`` is the reason for a person. ``bad_input``: retrying will not help
    until someone fixes something (a refused token, not a sampler, other columns)."""

    def __init__(self, message: str, *, bad_input: bool = False) -> None:
        super().__init__(message)
        self.bad_input = bad_input


class RemoteSampler:
    """Pulls ``url``'s rows into ``out_path`` in a background thread.

    ``offset_s``: the fixed shift (sampler minus orchestrator, seconds) applied to every row and
    event; None = measure it at :meth:`check` (then read :attr:`offset_s` and keep it for a resume).
    ``event(kind, detail)``: where events go (the orchestrator's ``event``); ``event_at(ts, kind,
    detail)``: where the sampler's own events go, at their time on our clock. ``not_before``
    (our clock, Unix s): while our file has no rows, pull the rows taken after it (the run's
    creation); None = from the first contact on.
    """

    def __init__(self, url: str, out_path: str | os.PathLike, *, offsets_path: str | os.PathLike,
                 event: Callable[[str, str], None], token_env: str = TOKEN_ENV,
                 offset_s: float | None = None, pull_interval_s: float = PULL_INTERVAL_S,
                 timeout_s: float = TIMEOUT_S, page_rows: int = PAGE_ROWS,
                 event_at: Callable[[float, str, str], None] | None = None,
                 not_before: float | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CommandError(f"sampler.remote: expected http://HOST:PORT, got {url!r}", EXIT_BAD_INPUT)
        self.url = url.rstrip("/")
        self.label = parts.netloc.rpartition("@")[2]
        self._parts = parts
        self.out_path = Path(out_path)
        self.offsets_path = Path(offsets_path)
        self.token_env = token_env
        self.offset_s = None if offset_s is None else round(float(offset_s), 3)
        self.pull_interval_s = float(pull_interval_s)
        self.timeout_s = float(timeout_s)
        self.page_rows = int(page_rows)
        self._event = event
        self._event_at = event_at
        self.not_before = not_before
        self.rows_pulled = 0
        self.pulls = 0
        self.outages = 0
        self.last_offset_s: float | None = None
        """The latest measured offset (sampler minus orchestrator, s)."""
        self._since: float | None = None  # sampler clock: rows after this
        self._events_since: float | None = None
        self._writer: AppendingCsvWriter | None = None
        self._offsets: AppendingCsvWriter | None = None
        self._best: tuple[float, float, float] | None = None  # (delay, offset, at) in this window
        self._window_started = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lost_at: float | None = None
        self._lost_rows_before = 0

    # -- one HTTP request -----------------------------------------------------------------------
    def _request(self, path: str, query: dict) -> tuple[bytes, dict, float, float, float, float]:
        """GET; returns (body, headers, t0, t1, t2, t3) or raises PullError."""
        conn_class = http.client.HTTPSConnection if self._parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_class(self._parts.hostname, self._parts.port, timeout=self.timeout_s)
        headers = {"Accept-Encoding": "identity"}
        token = os.environ.get(self.token_env)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        target = self._parts.path.rstrip("/") + path + (("?" + urlencode(query)) if query else "")
        try:
            t0 = time.time()
            try:
                conn.request("GET", target, headers=headers)
            except OSError as err:
                raise PullError(f"cannot connect ({_reason(err)})") from None
            try:
                resp = conn.getresponse()
                t3 = time.time()
                body = resp.read()
            except (OSError, http.client.HTTPException) as err:
                raise PullError(f"no reply ({_reason(err)})") from None
        finally:
            conn.close()
        if resp.status == 401:
            if not token:
                raise PullError(f"the sampler requires a token (401) and {self.token_env} is not set",
                                bad_input=True)
            raise PullError(f"the sampler refused the token in {self.token_env} (401): it must be the "
                            f"value of the sampler's {TOKEN_ENV}", bad_input=True)
        if resp.status != 200:
            try:
                reason = json.loads(body).get("error") or ""
            except (ValueError, AttributeError):
                reason = body[:200].decode(errors="replace")
            raise PullError(f"HTTP {resp.status} on {path}: {reason}".rstrip(": "),
                            bad_input=400 <= resp.status < 500)
        try:
            t1 = float(resp.getheader(HEADER_RECEIVED, ""))
            t2 = float(resp.getheader(HEADER_SENT, ""))
        except ValueError:
            raise PullError(f"no clock headers in the reply to {path} (not llmsoak sample, or an "
                            "older version)", bad_input=True) from None
        return body, {k.lower(): v for k, v in resp.getheaders()}, t0, t1, t2, t3

    def _measure(self, t0: float, t1: float, t2: float, t3: float) -> None:
        offset = ((t1 - t0) + (t2 - t3)) / 2
        delay = max(0.0, (t3 - t0) - (t2 - t1))
        self.last_offset_s = offset
        if self.offset_s is None:
            self.offset_s = round(offset, 3)
        if self._best is None or delay < self._best[0]:
            self._best = (delay, offset, t3)
        if t3 - self._window_started >= OFFSET_ROW_EVERY_S:
            self._flush_offset()
            self._window_started = t3

    def _flush_offset(self) -> None:
        if self._best is None or self._offsets is None:
            return
        delay, offset, at = self._best
        self._best = None
        try:
            self._offsets.write_row({"timestamp": at, "host": self.label, "offset_s": round(offset, 6),
                                     "delay_s": round(delay, 6)})
        except SamplesWriteError:
            pass  # secondary: the samples matter more, and they say the disk is full themselves

    # -- pulls -----------------------------------------------------------------------------------
    def _pull_rows(self) -> int:
        """Pull pages until the sampler has nothing newer; rows written."""
        assert self._writer is not None
        written = 0
        while True:
            query = {"limit": str(self.page_rows)}
            if self._since is not None:
                query["since"] = f"{self._since:.3f}"
            body, headers, *times = self._request("/api/rows", query)
            self._measure(*times)
            lines = body.split(b"\n")
            header = lines[0].decode(errors="replace").strip()
            if header.split(",") != list(SAMPLES_COLUMNS):
                raise PullError(f"the sampler's file has other columns ({header[:80]!r})", bad_input=True)
            for line in lines[1:]:
                if not line:
                    continue
                cells = line.decode(errors="replace").split(",")
                if len(cells) != len(SAMPLES_COLUMNS):
                    continue
                try:
                    sampler_ts = float(cells[0])
                except ValueError:
                    continue
                row = dict(zip(SAMPLES_COLUMNS, cells, strict=True))
                row["timestamp"] = self._to_ours(sampler_ts)
                if self._writer.write_row(row):
                    written += 1
                    self.rows_pulled += 1  # counted as written: a later failure in this round keeps them
                self._since = sampler_ts
            if headers.get(HEADER_MORE.lower()) != "1" or self._stop.is_set():
                return written

    def _pull_events(self) -> None:
        query = {} if self._events_since is None else {"since": f"{self._events_since:.3f}"}
        body, _headers, *times = self._request("/api/events", query)
        try:
            events = json.loads(body).get("events") or []
        except (ValueError, AttributeError):
            raise PullError("/api/events did not return JSON") from None
        for ev in events:
            try:
                ts = float(ev["timestamp"])
            except (KeyError, TypeError, ValueError):
                continue
            kind = ev.get("kind") if ev.get("kind") in EVENT_KINDS else "info"
            detail = f"remote {self.label}: {ev.get('detail') or ''}"
            if self._event_at is not None:
                self._event_at(self._to_ours(ts), kind, detail)
            self._events_since = ts if self._events_since is None else max(self._events_since, ts)

    def _to_ours(self, sampler_ts: float) -> float:
        return round(sampler_ts - (self.offset_s or 0.0), 3)

    def pull_once(self) -> int:
        """One round: rows (all pages) then events; rows written. Raises PullError."""
        rows = self._pull_rows()
        self._pull_events()
        self.pulls += 1
        return rows

    # -- life cycle ------------------------------------------------------------------------------
    def check(self) -> None:
        """Open the files and make the first contact; CommandError (exit 4 unreachable, 2 token
        refused or not a sampler, 5 files) — called before the run starts its load."""
        try:
            self.out_path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = AppendingCsvWriter(self.out_path, SAMPLES_COLUMNS)
            self._offsets = AppendingCsvWriter(self.offsets_path, CLOCK_OFFSETS_COLUMNS, fsync_interval_s=60.0)
        except SamplesWriteError as err:
            raise CommandError(str(err.strerror or err), EXIT_IO_ERROR) from err
        except ValueError as err:
            raise CommandError(str(err), EXIT_BAD_INPUT) from err
        fixed = self.offset_s
        best = None
        try:
            for _ in range(FIRST_CONTACT_PROBES):  # the run's fixed shift: the lowest-delay probe's
                _body, _headers, *times = self._request("/api/latest", {})
                delay = (times[3] - times[0]) - (times[2] - times[1])
                if best is None or delay < best[0]:
                    best = (delay, times)
        except PullError as err:
            self.close()
            code = EXIT_BAD_INPUT if err.bad_input else EXIT_TARGET_UNAVAILABLE
            raise CommandError(f"sampler.remote {self.url}: {err}", code) from None
        times = best[1]
        self._measure(*times)
        if fixed is None:
            self.offset_s = round(self.last_offset_s, 3)
        self._flush_offset()
        self._window_started = times[3]
        now_sampler = times[2]
        if self._writer.last_timestamp is not None:
            # resuming: continue after our last row (ours → the sampler's clock by the same shift)
            self._since = round(self._writer.last_timestamp + (self.offset_s or 0.0), 3)
        elif self.not_before is not None:
            self._since = round(self.not_before + (self.offset_s or 0.0), 3)  # from the run's creation
        else:
            self._since = now_sampler  # the sampler's rows from now on
        self._events_since = self._since

    def start(self) -> RemoteSampler:
        """:meth:`check`, then pull in a daemon thread."""
        if self._writer is None:
            self.check()
        self._thread = threading.Thread(target=self._loop, name="remote-sampler", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        delay = BACKOFF_FIRST_S
        while not self._stop.is_set():
            try:
                self.pull_once()
            except PullError as err:
                if self._lost_at is None:
                    self._lost_at = time.time()
                    self._lost_rows_before = self.rows_pulled
                    self.outages += 1
                    self._event("alert", f"remote sampler {self.label} lost: {err}; retrying with backoff "
                                         f"(the run goes on)")
                self._stop.wait(delay)
                delay = min(BACKOFF_MAX_S, delay * 2)
                continue
            except SamplesWriteError as err:
                self._event("alert", f"remote sampler {self.label}: cannot write {self.out_path}: "
                                     f"{err.strerror}; retrying")
                self._stop.wait(BACKOFF_MAX_S)
                continue
            if self._lost_at is not None:
                self._event("info", f"remote sampler {self.label} back after "
                                    f"{time.time() - self._lost_at:.0f} s; "
                                    f"{self.rows_pulled - self._lost_rows_before} row(s) caught up, "
                                    f"resumed after its last row")
                self._lost_at = None
            delay = BACKOFF_FIRST_S
            self._stop.wait(self.pull_interval_s)

    def stop(self, final_pull: bool = True) -> None:
        """Stop the thread; one last pull (short timeout) so the file ends with the run; close."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout_s + 5.0)
        if final_pull and self._writer is not None:
            self._stop.clear()
            timeout, self.timeout_s = self.timeout_s, min(self.timeout_s, 3.0)
            try:
                self.pull_once()
            except (PullError, SamplesWriteError):
                pass  # the outage was reported already (or is reported by the orchestrator's end)
            finally:
                self.timeout_s = timeout
                self._stop.set()
        self.close()

    def close(self) -> None:
        self._flush_offset()
        for writer in (self._writer, self._offsets):
            if writer is not None:
                writer.close()
        self._writer = self._offsets = None


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__


def append_remote_event(path: Path, redact: Callable[[str], str]) -> Callable[[float, str, str], None]:
    """An ``event_at`` that appends a remote sampler's event to ``path`` at its (shifted) time."""

    def event_at(timestamp: float, kind: str, detail: str) -> None:
        append_event(path, kind, redact(detail), timestamp=timestamp)

    return event_at
