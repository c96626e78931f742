"""``llmsoak run``: the soak orchestrator.

Modules by concern: ``launch`` (a new run or a resume: the run directory, its redacted
profile.yaml), ``settings`` (what a run needs from the typed profile), ``manifest`` (run.json),
``processes`` (child supervision), ``children`` (the command lines of the target, samplers and
Locust), ``orchestrator`` (the main loop), ``checkpoint`` (interim verdicts), ``snapshot`` (where
a run stands, read from its files), ``progress`` (the terminal line), ``status`` (``--status``),
``slo`` (the SLO gate and exit codes). Shared with the other parts: the run directory's layout
(llmsoak/rundir.py), the file formats (llmsoak/formats.py), the redaction (llmsoak/redact.py).
"""
