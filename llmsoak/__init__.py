"""llmsoak: load and soak testing for chat and LLM endpoints, built on Locust.

Parts (each usable alone, joined by files and ports with documented formats):

- ``llmsoak.stub``      the reference target: OpenAI-, Ollama- and chat-app-compatible server
- ``llmsoak.locust``    Locust users, LLM metrics, load shapes, profiles (see locustfiles/)
- ``llmsoak.sampler``   the sidecar sampler: memory/CPU of the system under test to CSV
- ``llmsoak.analysis``  leak statistics, verdicts, projections, charts and reports
- ``llmsoak.run``       the headless soak orchestrator behind ``llmsoak run`` and scripts/soak.sh
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
