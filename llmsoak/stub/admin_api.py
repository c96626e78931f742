"""Admin endpoints under /_stub/: stats, fault rates at run time, counter reset."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from llmsoak.stub.faults import FaultSpecError, rates_from_json

if TYPE_CHECKING:
    from llmsoak.stub.http import Request, Responder
    from llmsoak.stub.server import StubApp


def _json(resp: Responder, status: int, obj: object) -> None:
    resp.send(status, json.dumps(obj).encode())


async def stats(app: StubApp, request: Request, resp: Responder) -> None:
    _json(resp, 200, app.stats_json())


async def get_faults(app: StubApp, request: Request, resp: Responder) -> None:
    _json(resp, 200, app.faults.rates)


async def set_faults(app: StubApp, request: Request, resp: Responder) -> None:
    """Replace every fault rate with the JSON object in the body (names left out become 0)."""
    try:
        rates = rates_from_json(json.loads(request.body))
    except (ValueError, UnicodeDecodeError) as err:
        message = str(err) if isinstance(err, FaultSpecError) else "body is not valid JSON"
        _json(resp, 400, {"error": message})
        return
    app.faults.replace(rates)
    _json(resp, 200, app.faults.rates)


async def reset(app: StubApp, request: Request, resp: Responder) -> None:
    """Zero the counters and forget the per-request timings (not the leak, the sessions or the
    fault rates)."""
    app.stats.reset()
    app.timings.clear()
    _json(resp, 200, app.stats_json())


async def timings(app: StubApp, request: Request, resp: Responder) -> None:
    """Stub-side timings of completed requests that carried ``x-llmsoak-request-id``."""
    _json(resp, 200, app.timings.to_json())
