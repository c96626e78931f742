"""``llmsoak run``: the soak orchestrator.

Modules by concern: ``rundir`` (the run directory's layout), ``manifest`` (run.json),
``settings`` (what a run needs from the profile plus command-line overrides), ``redact`` (the
resolved profile without secrets), ``processes`` (child supervision), ``children`` (the command
lines of the target, samplers and Locust), ``orchestrator`` (the main loop), ``checkpoint``
(interim verdicts), ``snapshot`` (where a run stands, read from its files), ``progress`` (the
terminal line), ``status`` (``--status``), ``slo`` (the SLO gate and exit codes).
"""
