"""Time-compressed week for Locust's master-side stats: prints RSS per simulated hour as JSON.

Run as ``python tests/support/locust_memory_driver.py trimmed|untrimmed HOURS``. Locust's own
RequestStats/StatsEntry code runs on a simulated clock (``locust.stats.time`` replaced), the way
a master receives it: every simulated second each stats row logs a request, every 5 s a chart
history row is appended (Locust's update_stats_history), and in "trimmed" mode llmsoak's
bounded_memory.trim runs every simulated minute, as its greenlet does on a real master.
"""

from __future__ import annotations

import gc
import json
import sys
import types

import psutil
from locust import stats as locust_stats

from llmsoak.locust import bounded_memory

SIM = {"now": 1_800_000_000.0}
locust_stats.time = types.SimpleNamespace(time=lambda: SIM["now"])


def main() -> None:
    mode, hours = sys.argv[1], float(sys.argv[2])
    stats = locust_stats.RequestStats(use_response_times_cache=True)
    runner = types.SimpleNamespace(stats=stats, user_count=8)
    names = [f"/v1/chat/completions [{p}]" for p in ("active", "casual", "sporadic", "stress")]
    ttft = [stats.entries[(n, "TTFT")] for n in names]
    proc = psutil.Process()
    out = []
    start = SIM["now"]
    for second in range(int(hours * 3600)):
        SIM["now"] = start + second
        for i, name in enumerate(names):
            stats.log_request("POST", name, 150 + i, 0)     # HTTP row + Aggregated
            ttft[i].log(40 + i, 0)                            # an LLM metric row
        if second % 5 == 0:
            locust_stats.update_stats_history(runner, timestamp=str(second))
        if mode == "trimmed" and second % 60 == 0:
            bounded_memory.trim(stats, SIM["now"])
        if second % 3600 == 0:
            gc.collect()
            out.append({"hour": second / 3600, "rss_bytes": proc.memory_info().rss,
                        "history_rows": len(stats.history),
                        "per_second_keys": len(stats.total.num_reqs_per_sec)})
    print(json.dumps({"mode": mode, "requests": stats.total.num_requests, "samples": out}))


if __name__ == "__main__":
    main()
