"""The foreground run's progress: one updating line on a terminal (``\\r``), a log line every
``interval_s`` otherwise; ``quiet`` keeps only the log of events (start, segment, checkpoint, stop)."""

from __future__ import annotations

import sys
import time

from llmsoak.formatting import format_bytes, format_bytes_per_hour, format_duration, format_fixed


def progress_line(snap: dict) -> str:
    """``elapsed 1h02m05s  ETA 166h…  users 40  req/s 12.3  failures 0.1/s (12)  memory 1.2 GiB``"""
    parts = [f"elapsed {format_duration(snap.get('elapsed_s') or 0)}",
             f"ETA {format_duration(snap.get('remaining_s') or 0)}",
             f"users {format_fixed(snap.get('users'))}",
             f"req/s {format_fixed(snap.get('rps'), 1)}",
             f"failures {format_fixed(snap.get('fail_per_s'), 1)}/s ({format_fixed(snap.get('failures_total'), 0, '0')})",
             f"memory {format_bytes(snap.get('memory_now_bytes'))}"]
    if snap.get("slope_per_hour") is not None:
        parts.append(f"slope {format_bytes_per_hour(snap['slope_per_hour'])}")
    return "  ".join(parts)


class Progress:
    """Writes progress to ``stream`` (stdout); ``log(message)`` for events, with a time stamp."""

    def __init__(self, quiet: bool = False, interval_s: float = 30.0, stream=None) -> None:
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval_s = 1.0 if self.tty else float(interval_s)
        self._next_at = 0.0
        self._line_open = False

    def due(self) -> bool:
        return not self.quiet and time.monotonic() >= self._next_at

    def show(self, snap: dict) -> None:
        self._next_at = time.monotonic() + self.interval_s
        line = progress_line(snap)
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
            self._line_open = True
        else:
            self.stream.write(f"{time.strftime('%H:%M:%S')} {line}\n")
        self.stream.flush()

    def log(self, message: str) -> None:
        if self._line_open:
            self.stream.write("\n")
            self._line_open = False
        self.stream.write(f"{time.strftime('%H:%M:%S')} llmsoak run: {message}\n")
        self.stream.flush()
