"""The reference target: a server that behaves like an LLM serving engine, without a model.

It speaks the OpenAI and Ollama wire formats and a small chat-app API, with configurable latency
(TTFT, inter-token latency, concurrency slowdown, queueing), real memory use (per-request buffers,
an optional deliberate leak) and injected faults, so the whole toolkit can be tested and demoed on
any machine. Modules: ``http`` (HTTP/1.1 layer), ``server`` (routing, lifecycle), ``engine``
(timing and faults of one response), ``openai_api``/``ollama_api``/``chat_app`` (wire formats),
``generation`` (tokens, latency model), ``faults``, ``memory``, ``admission``, ``stats``.
"""

from llmsoak.stub.config import StubConfig
from llmsoak.stub.faults import FAULT_NAMES

__all__ = ["FAULT_NAMES", "StubConfig"]
