"""The stub's settings, built once from the command line."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StubConfig:
    """Every knob of ``llmsoak stub`` (times in ms or s as named, sizes in bytes or KiB as named)."""

    host: str = "127.0.0.1"
    port: int = 8000
    """TCP port; 0 picks a free one (announced on stdout)."""
    ttft_ms: float = 50.0
    prefill_ms_per_1k_tokens: float = 0.0
    itl_ms: float = 10.0
    itl_jitter_frac: float = 0.03
    itl_slowdown: float = 0.5
    output_tokens: int = 256
    """Most tokens any response gets (and the length of an unlimited one)."""
    max_concurrency: int = 64
    queue_size: int = 256
    kv_bytes_per_token: int = 1024
    leak_kb_per_request: int = 0
    faults: dict[str, float] = field(default_factory=dict)
    stall_s: float = 600.0
    session_idle_s: float = 600.0
    model: str = "llmsoak-stub"
    seed: int | None = None
    access_log: bool = False

    def summary(self) -> str:
        """One line describing the configuration (printed at startup)."""
        faults = ",".join(f"{k}={v:g}" for k, v in self.faults.items() if v) or "none"
        return (f"llmsoak stub: model={self.model} ttft_ms={self.ttft_ms:g} "
                f"prefill_ms_per_1k_tokens={self.prefill_ms_per_1k_tokens:g} itl_ms={self.itl_ms:g} "
                f"output_tokens={self.output_tokens} max_concurrency={self.max_concurrency} "
                f"queue_size={self.queue_size} kv_bytes_per_token={self.kv_bytes_per_token} "
                f"leak_kb_per_request={self.leak_kb_per_request} faults={faults} "
                f"stall_s={self.stall_s:g} session_idle_s={self.session_idle_s:g} seed={self.seed}")
