"""Fault injection: which faults exist, how ``--fault NAME=RATE`` is read, and the per-request draw.

At most one fault per request: one uniform draw in [0, 1) is compared against the cumulative
rates in the fixed order of :data:`FAULT_NAMES`, so the rates must add up to 1 or less. The draw uses the stub's seeded RNG, so ``--seed`` makes a run reproducible.
"""

from __future__ import annotations

import random

FAULT_NAMES = (
    "http_429", "http_500", "http_503", "reset_before_headers", "reset_mid_stream", "stall",
    "malformed_chunk", "empty_response", "context_overflow", "error_event", "interrupted",
)
"""Fault names (the contract with the Locust client's failure classes)."""

HTTP_FAULT_STATUS = {"http_429": 429, "http_500": 500, "http_503": 503}

STUB_CONTEXT_TOKENS = 4096
"""The context window the ``context_overflow`` fault claims the prompt did not fit."""


def context_overflow_message(prompt_tokens: int) -> str:
    """vLLM's words for a prompt past the context (docs/engines.md), with this request's numbers."""
    asked = STUB_CONTEXT_TOKENS + 1 + prompt_tokens
    return (f"This model's maximum context length is {STUB_CONTEXT_TOKENS} tokens. However, your "
            f"prompt contains at least {asked} input tokens, which exceeds this limit even without "
            "any output tokens. Please reduce the length of the input prompt. (parameter=input_tokens, "
            f"value={asked})")


ERROR_EVENT_MESSAGE = "injected fault error_event: the engine failed while generating (request {id})"
"""The ``error_event`` fault's message; ``{id}`` becomes a random id (normalised by the client)."""


class FaultSpecError(ValueError):
    """A fault name or rate that cannot be used; the message is one line for the user."""


def parse_fault_spec(spec: str) -> tuple[str, float]:
    """``"http_500=0.05"`` → ``("http_500", 0.05)``; raises FaultSpecError naming the problem."""
    name, sep, rate_text = spec.partition("=")
    name = name.strip()
    if not sep:
        raise FaultSpecError(f"--fault {spec!r}: expected NAME=RATE, e.g. http_500=0.05")
    return name, _check_rate(name, rate_text.strip(), where=f"--fault {spec!r}")


def _check_rate(name: str, rate: object, where: str) -> float:
    if name not in FAULT_NAMES:
        raise FaultSpecError(f"{where}: unknown fault {name!r} (known: {', '.join(FAULT_NAMES)})")
    if isinstance(rate, bool):
        raise FaultSpecError(f"{where}: rate for {name} must be a number between 0 and 1")
    try:
        value = float(rate)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise FaultSpecError(f"{where}: rate for {name} must be a number between 0 and 1, "
                             f"got {rate!r}") from None
    if not 0.0 <= value <= 1.0:
        raise FaultSpecError(f"{where}: rate for {name} must be between 0 and 1, got {value}")
    return value


def rates_from_json(obj: object) -> dict[str, float]:
    """Validate a JSON object of rates (POST /_stub/faults); unnamed faults become 0."""
    if not isinstance(obj, dict):
        raise FaultSpecError("body must be a JSON object of fault rates, e.g. {\"http_500\": 0.1}")
    rates = dict.fromkeys(FAULT_NAMES, 0.0)
    for name, rate in obj.items():
        rates[name] = _check_rate(str(name), rate, where="POST /_stub/faults")
    check_total(rates, where="POST /_stub/faults")
    return rates


def check_total(rates: dict[str, float], where: str) -> None:
    """At most one fault per request: the rates must add up to 1 or less."""
    total = sum(rates.values())
    if total > 1.0 + 1e-9:
        raise FaultSpecError(f"{where}: fault rates add up to {total:g}; at most one fault per "
                             "request, so they must add up to 1 or less")


class FaultInjector:
    """Current fault rates (replaceable at run time) and the seeded draw."""

    def __init__(self, rates: dict[str, float], rng: random.Random) -> None:
        self._rng = rng
        self.rates = dict.fromkeys(FAULT_NAMES, 0.0)
        self.replace(rates)

    def replace(self, rates: dict[str, float]) -> None:
        """Set every rate: names not in ``rates`` become 0."""
        self.rates = {name: float(rates.get(name, 0.0)) for name in FAULT_NAMES}
        self._active = [(name, rate) for name, rate in self.rates.items() if rate > 0]

    def draw(self) -> str | None:
        """The fault to inject into the next request, or None."""
        if not self._active:
            return None
        x = self._rng.random()
        for name, rate in self._active:
            if x < rate:
                return name
            x -= rate
        return None
