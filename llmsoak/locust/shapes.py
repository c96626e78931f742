"""Load shapes driven by the profile's ``load`` section: constant, ramp, steps, spike, diurnal week.

Every shape is written in *scenario time* (the durations in the profile). ``load.time_scale``
maps wall time to scenario time: scenario = wall × time_scale, so ``time_scale: 168`` plays a
168-hour week in one wall hour. ``run.duration`` is wall time and ends any shape.

Each user-count change is logged (``logging``, logger ``llmsoak.shape``) and appended to
events.csv as kind ``shape`` when an events path is known: env ``LLMSOAK_EVENTS``, else the
profile's ``run.events_path``. Events are thinned (stage changes, ≥10 % moves, or once a
minute) so a week-long diurnal run writes a bounded number of lines.

Headless runs honour Locust's common options (``use_common_options``): ``-t/--run-time`` ends any
shape (the earlier of it and ``run.duration``), and ``-u``/``-r`` replace ``load.users`` and
``load.spawn_rate`` of the constant shape; other shapes set the user count themselves and say
so when ``-u``/``-r`` are given. In the web UI the shape runs as the profile says.

Use from a locustfile or plugin, in an ``init`` listener::

    install_shape(environment, profile)     # no-op for shape: none
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from locust import LoadTestShape

from llmsoak.events import append_event
from llmsoak.locust import internals
from llmsoak.profile import WEEKDAYS, LoadConfig, Profile

logger = logging.getLogger("llmsoak.shape")

_DAY_S = 86400.0
_DAY_ABBR = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class ProfileShape(LoadTestShape):
    """Base of the profile-driven shapes; concrete classes come from :func:`shape_from_profile`.

    Subclasses implement ``target(t_s)`` → ``(users, spawn_rate, stage)`` or None when the shape
    is over, where ``t_s`` is scenario seconds since the start.
    """

    abstract = True
    load: LoadConfig = LoadConfig()
    run_duration_s: float | None = None
    """Wall seconds after which tick() returns None (ends the test)."""
    events_path: Path | None = None
    min_event_interval_s: float = 60.0
    """Wall seconds between two thinned events within one stage."""

    explicit_users: int | None = None
    """``-u`` from Locust's command line, captured at init (before Locust's headless default of 1)."""
    explicit_spawn_rate: float | None = None
    """``-r`` from Locust's command line, captured at init."""

    def __init__(self) -> None:
        super().__init__()
        self._reset_log()

    def capture_common_options(self, options) -> None:
        """Remember ``-u``/``-r`` as given (call from an ``init`` listener, headless only)."""
        self.explicit_users = getattr(options, "num_users", None)
        self.explicit_spawn_rate = getattr(options, "spawn_rate", None)
        if (self.explicit_users or self.explicit_spawn_rate) and not isinstance(self, ConstantShape):
            logger.warning("the %s shape sets the user count itself: -u/--users and -r/--spawn-rate are "
                           "ignored (-t/--run-time still ends the run)", self.load.shape)

    def wall_limit_s(self) -> float | None:
        """Wall seconds after which the shape ends: run.duration, or ``-t`` when that is earlier."""
        run_time = None
        if self.use_common_options:
            environment = getattr(getattr(self, "runner", None), "environment", None)
            run_time = getattr(getattr(environment, "parsed_options", None), "run_time", None)
        limits = [limit for limit in (self.run_duration_s, run_time) if limit]
        return min(limits) if limits else None

    def _reset_log(self) -> None:
        self._logged_users: int | None = None
        self._logged_stage: str | None = None
        self._logged_at = -math.inf
        self._ended = False

    def reset_time(self) -> None:
        super().reset_time()
        self._reset_log()

    @property
    def time_scale(self) -> float:
        return self.load.time_scale

    def scenario_time(self) -> float:
        """Scenario seconds elapsed: wall run time × time_scale."""
        return self.get_run_time() * self.time_scale

    def target(self, t_s: float) -> tuple[int, float, str] | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def tick(self) -> tuple[int, float] | None:
        wall_s = self.get_run_time()
        limit_s = self.wall_limit_s()
        if limit_s is not None and wall_s >= limit_s:
            self._end(f"run time reached after {wall_s:.0f} s")
            return None
        step = self.target(wall_s * self.time_scale)
        if step is None:
            self._end(f"shape {self.load.shape} finished after {wall_s:.0f} s wall time")
            return None
        users, rate, stage = step
        self._maybe_log(users, rate, stage, wall_s)
        return users, rate

    def _maybe_log(self, users: int, rate: float, stage: str, wall_s: float) -> None:
        last = self._logged_users
        if last == users and stage == self._logged_stage:
            return
        big_move = last is None or abs(users - last) >= max(1.0, 0.1 * last)
        if stage == self._logged_stage and not big_move and wall_s - self._logged_at < self.min_event_interval_s:
            return
        self._logged_users, self._logged_stage, self._logged_at = users, stage, wall_s
        scale = f", time_scale {self.time_scale:g}" if self.time_scale != 1 else ""
        self._emit(f"{self.load.shape}: {users} {'user' if users == 1 else 'users'} at {rate:g}/s ({stage}{scale})")

    def _end(self, why: str) -> None:
        if not self._ended:
            self._ended = True
            self._emit(f"{self.load.shape}: end ({why})")

    def _emit(self, detail: str) -> None:
        logger.info("shape %s", detail)
        path = os.environ.get("LLMSOAK_EVENTS") or self.events_path
        if path:
            try:
                append_event(path, "shape", detail)
            except OSError as err:  # a full disk must not stop the load test
                logger.warning("cannot append shape event to %s: %s", path, err)


class ConstantShape(ProfileShape):
    """``users`` from the start, for ever (until run.duration)."""

    abstract = True

    def target(self, t_s: float) -> tuple[int, float, str]:
        users = self.explicit_users or self.load.users
        return users, self.explicit_spawn_rate or self.load.spawn_rate, "constant"


class RampShape(ProfileShape):
    """Linear from ``from_users`` to ``to_users`` over ``duration``, then held."""

    abstract = True

    def target(self, t_s: float) -> tuple[int, float, str]:
        ramp = self.load.ramp
        assert ramp is not None
        frac = min(1.0, t_s / ramp.duration_s)
        users = round(ramp.from_users + (ramp.to_users - ramp.from_users) * frac)
        return users, self.load.spawn_rate, "ramping" if frac < 1 else "holding"


class StepsShape(ProfileShape):
    """Each step holds ``users`` for ``duration``; the shape ends after the last step."""

    abstract = True

    def target(self, t_s: float) -> tuple[int, float, str] | None:
        start = 0.0
        n = len(self.load.steps)
        for i, step in enumerate(self.load.steps):
            if t_s < start + step.duration_s:
                return step.users, step.spawn_rate or self.load.spawn_rate, f"step {i + 1}/{n}"
            start += step.duration_s
        return None


class SpikeShape(ProfileShape):
    """``base_users``, then ``spike_users`` from ``at`` for ``duration``, then base again."""

    abstract = True

    def target(self, t_s: float) -> tuple[int, float, str]:
        spike = self.load.spike
        assert spike is not None
        rate = spike.spawn_rate or max(self.load.spawn_rate, float(abs(spike.spike_users - spike.base_users)))
        if t_s < spike.at_s:
            return spike.base_users, self.load.spawn_rate, "before spike"
        if t_s < spike.at_s + spike.duration_s:
            return spike.spike_users, rate, "spike"
        return spike.base_users, rate, "after spike"


def diurnal_users(load: LoadConfig, t_s: float) -> tuple[int, int, float]:
    """Users at scenario second ``t_s`` of the diurnal week → ``(users, weekday 0=Mon, hour)``.

    A cosine between night_users (at peak_hour ± 12 h) and day_users (at peak_hour); Saturday
    and Sunday are multiplied by weekend_factor (blended in over the 6 hours around midnight).
    """
    d = load.diurnal
    assert d is not None
    clock_s = d.start_hour * 3600.0 + t_s
    weekday = (WEEKDAYS.index(d.start_day) + int(clock_s // _DAY_S)) % 7
    hour = (clock_s % _DAY_S) / 3600.0
    level = (1.0 + math.cos(2.0 * math.pi * (hour - d.peak_hour) / 24.0)) / 2.0
    users = d.night_users + (d.day_users - d.night_users) * level
    users *= 1.0 + (d.weekend_factor - 1.0) * _weekend_weight(weekday + hour / 24.0)
    return int(round(users)), weekday, hour


def _weekend_weight(x_days: float) -> float:
    """0 on weekdays, 1 on Saturday and Sunday, blended over the 6 hours around each midnight
    where the weekend starts or ends so the user count has no step. ``x_days`` since Monday 00:00."""
    r = 0.125  # 3 hours, in days
    if x_days < r:
        return 0.5 - x_days / (2 * r)
    if x_days >= 7 - r:
        return 0.5 + (7 - x_days) / (2 * r)
    if 5 - r <= x_days < 5 + r:
        return (x_days - (5 - r)) / (2 * r)
    return 1.0 if 5 + r <= x_days < 7 - r else 0.0


class DiurnalShape(ProfileShape):
    """A week of days and nights (quieter weekend); repeats unless ``repeat: false``."""

    abstract = True

    def target(self, t_s: float) -> tuple[int, float, str] | None:
        d = self.load.diurnal
        assert d is not None
        week_s = d.days * _DAY_S
        if t_s >= week_s:
            if not d.repeat:
                return None
            t_s %= week_s
        users, weekday, hour = diurnal_users(self.load, t_s)
        part = "day" if 7 <= hour < 19 else "night"
        stage = f"{_DAY_ABBR[weekday]} {part}"
        return users, self.load.spawn_rate, stage


SHAPE_CLASSES: dict[str, type[ProfileShape]] = {
    "constant": ConstantShape, "ramp": RampShape, "steps": StepsShape, "spike": SpikeShape,
    "diurnal": DiurnalShape,
}


def shape_from_profile(profile: Profile, events_path: str | os.PathLike | None = None
                       ) -> type[ProfileShape] | None:
    """A concrete LoadTestShape subclass for ``profile.load`` (None for ``shape: none``).

    The class takes no constructor arguments (Locust instantiates shapes itself) and carries the
    profile's settings as class attributes.
    """
    load = profile.load
    if load.shape == "none":
        return None
    base = SHAPE_CLASSES[load.shape]
    attrs = {
        "abstract": False,
        "load": load,
        "run_duration_s": profile.run.duration_s,
        "events_path": Path(events_path) if events_path else profile.run.events_path,
        "__doc__": f"Profile {profile.name!r}: {load.shape} shape (time_scale {load.time_scale:g}).",
        "__module__": __name__,
    }
    return type(f"{load.shape.capitalize()}ProfileShape", (base,), attrs)


def install_shape(environment, profile: Profile, events_path: str | os.PathLike | None = None
                  ) -> ProfileShape | None:
    """Make ``profile.load`` the running shape of ``environment`` (call from an ``init`` listener).

    Returns the shape instance, or None for ``shape: none`` (Locust's own users/spawn rate apply).
    """
    cls = shape_from_profile(profile, events_path)
    if cls is None:
        return None
    shape = cls()
    internals.set_running_shape(environment, shape)
    return shape


def wall_seconds(load: LoadConfig, scenario_s: float) -> float:
    """Wall seconds needed to play ``scenario_s`` scenario seconds."""
    return scenario_s / load.time_scale


__all__ = ["ConstantShape", "DiurnalShape", "ProfileShape", "RampShape", "SpikeShape", "StepsShape",
           "diurnal_users", "install_shape", "shape_from_profile", "wall_seconds"]
