"""The contract between the sweep driver and Locust: where the plan is, what each process records.

The driver (llmsoak.capacity.sweep) writes ``plan.json`` and passes its path in
:data:`PLAN_ENV`; ``locustfiles/capacity.py`` (llmsoak.capacity.locust_side) reads it and
writes :data:`REQUEST_COLUMNS` rows. Kept apart so the driver never imports Locust (which
monkey-patches the process on import).
"""

PLAN_ENV = "LLMSOAK_CAPACITY_PLAN"
"""Environment variable holding the plan's path."""
REQUEST_COLUMNS = ("phase", "pattern", "t_sched", "lag_ms", "t_end", "ok", "status", "failure_class",
                   "ttft_ms", "e2e_ms", "tpot_ms", "itl_ms", "output_tokens", "input_tokens", "turn", "failure")
"""``requests-<pid>.csv``: ``t_sched`` when it was due (open loop) or sent (closed loop) and
``t_end`` when it ended, Unix seconds; ``lag_ms`` send − schedule; ``ok`` 1/0; ``ttft_ms``,
``e2e_ms``, ``tpot_ms`` as docs/metrics.md; ``itl_ms`` the request's mean gap between content
chunks; ``output_tokens`` from the server's usage, else the chunks counted; ``input_tokens`` the
prompt tokens the server reported (blank if it did not); ``turn`` the request's turn in its
session, 0 first (open and closed loop; blank for the profile's users); ``failure`` the
failure's one-line message, ``<class>: <detail>`` as Locust's error table shows it."""
