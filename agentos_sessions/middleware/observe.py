"""Each HTTP request timed, counted in the metrics and logged as one JSON line.

Requests are labelled with the operationId Connexion routed them to (``other`` for what no
operation serves: /docs, /openapi.json, unknown paths) and counted by operation, method and
status; the access line goes to the ``agentos_sessions.access`` logger.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import orjson

from agentos_sessions import context
from agentos_sessions.observability import Metrics

access_log = logging.getLogger("agentos_sessions.access")

# Connexion's record of the operation a request was routed to (connexion.middleware.routing).
_ROUTING = "connexion_routing"


class Observe:
    """ASGI middleware: each HTTP request timed, counted in ``metrics`` and logged as JSON.

    It runs inside the request-id middleware (so its log lines carry the id) and outside
    Connexion, whose routing leaves the operationId in ``scope["extensions"]``: a dict this
    middleware puts there first, so that the copies of the scope made further in share it.
    """

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        extensions = scope.setdefault("extensions", {})
        status = 500  # unless an answer starts: an exception that escaped everything

        async def send_observed(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            elapsed = time.perf_counter() - started
            operation = extensions.get(_ROUTING, {}).get("operation_id") or "other"
            self.metrics.requests.labels(operation, scope["method"], str(status)).inc()
            self.metrics.duration.labels(operation).observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(_access_line(scope, operation, status, elapsed))


def _access_line(scope, operation: str, status: int, elapsed: float) -> str:
    client = scope.get("client")
    line = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "request_id": context.request_id.get(),
        "method": scope["method"],
        "path": scope["path"],
        "query": scope.get("query_string", b"").decode("latin-1"),
        "status": status,
        "duration_ms": round(elapsed * 1000, 3),
        "operation_id": operation,
        "client": client[0] if client else None,
    }
    return orjson.dumps(line).decode()
