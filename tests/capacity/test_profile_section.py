"""The profile's ``capacity`` section: defaults, round trip, mistakes named by field path."""

from __future__ import annotations

import pytest

from llmsoak.profile import CapacityConfig, ProfileError, profile_from_dict

BASE = {"target": {"url": "http://127.0.0.1:8000", "model": "m"}, "slo": {"ttft_p95_ms": 1000}}


def _load(capacity) -> object:
    return profile_from_dict({**BASE, "capacity": capacity}, source="p.yaml")


def test_absent_section_is_none_and_an_empty_one_takes_the_defaults() -> None:
    assert profile_from_dict(BASE).capacity is None
    assert _load({}).capacity == CapacityConfig()


def test_the_section_round_trips_through_the_resolved_profile() -> None:
    profile = _load({"distribution": "gamma", "burstiness": 0.5, "rates": [4, 1, 2], "warmup_s": "3s",
                     "measure_s": "1m", "target_rate": 2.5, "target_users": 40, "users": False})
    cap = profile.capacity
    assert cap.rates == (1.0, 2.0, 4.0) and cap.measure_s == 60.0 and cap.burstiness == 0.5
    assert profile_from_dict(profile.to_dict(), source="p.yaml") == profile
    constant = _load({"distribution": "constant"})
    assert "burstiness" not in constant.to_dict()["capacity"]
    assert profile_from_dict(constant.to_dict(), source="p.yaml") == constant


@pytest.mark.parametrize("capacity,message", [
    ({"burstiness": 2}, "p.yaml: capacity.burstiness: only used with distribution: gamma (got poisson)"),
    ({"distribution": "gamma", "burstiness": 0}, "p.yaml: capacity.burstiness: must be > 0 (got 0)"),
    ({"distribution": "uniform"}, "p.yaml: capacity.distribution: must be one of constant, poisson, gamma"),
    ({"rates": "fast"}, "p.yaml: capacity.rates: expected a list of requests per second"),
    ({"rates": [1, "x"]}, "p.yaml: capacity.rates[1]: expected a number of requests per second, got 'x'"),
    ({"steps": 0}, "p.yaml: capacity.steps: a sweep needs at least 2 steps (got 0)"),
    ({"measure_s": 0}, "p.yaml: capacity.measure_s: must be > 0"),
    ({"target_rate": -3}, "p.yaml: capacity.target_rate: must be > 0 requests per second (got -3)"),
    ({"stepz": 3}, "p.yaml: capacity.stepz: unknown field 'stepz' (did you mean 'steps'?)"),
])
def test_mistakes_name_the_field(capacity, message) -> None:
    with pytest.raises(ProfileError) as err:
        _load(capacity)
    assert str(err.value).startswith(message)
