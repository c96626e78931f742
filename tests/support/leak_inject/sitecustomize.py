"""A REAL memory leak for an engine's HTTP server, injected at interpreter start (test recordings only).

Put this directory on the engine's PYTHONPATH and set ``LLMSOAK_LEAK_BYTES_PER_REQUEST=N``: every
POST request's body is kept forever, repeated up to at least N bytes (the bytes are written, so
they count in RSS). Works for any Starlette/FastAPI server (vLLM's API server, llama-cpp-python's
server) by wrapping ``Starlette.__call__``. Without the variable nothing is imported or changed.
Used to record the leak fixtures in tests/fixtures/recordings/ (see its README.md).
"""

import os

_BYTES = int(os.environ.get("LLMSOAK_LEAK_BYTES_PER_REQUEST") or 0)

if _BYTES > 0:
    try:
        from starlette.applications import Starlette
    except ImportError:  # a process of the engine that serves no HTTP
        Starlette = None

    if Starlette is not None:
        _kept: list[bytes] = []  # never emptied: this is the leak
        _original_call = Starlette.__call__

        async def _leaky_call(self, scope, receive, send):
            if scope.get("type") != "http" or scope.get("method") != "POST":
                return await _original_call(self, scope, receive, send)
            parts: list[bytes] = []

            async def keeping_receive():
                message = await receive()
                if message.get("type") == "http.request":
                    parts.append(message.get("body", b""))
                    if not message.get("more_body"):
                        body = b"".join(parts) or b"-"
                        _kept.append(body * (-(-_BYTES // len(body))))
                return message

            return await _original_call(self, scope, keeping_receive, send)

        Starlette.__call__ = _leaky_call
