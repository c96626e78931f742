"""``llmsoak capacity``: open-loop sweeps, the knee in req/s and in users, goodput (docs/capacity.md).

Data flow: llmsoak.commands.capacity → :mod:`llmsoak.capacity.sweep` (the driver: Locust batches)
→ ``locustfiles/capacity.py`` → :mod:`llmsoak.capacity.locust_side` (phases; open loop from
llmsoak.locust.arrivals) → per-request records → :mod:`llmsoak.capacity.steps` (rates,
percentiles, goodput, SLOs) → :mod:`llmsoak.capacity.results` (capacity.json/csv) and
:mod:`llmsoak.capacity.report` (charts, report.html).
"""
