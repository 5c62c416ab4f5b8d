"""What operators see: Prometheus metrics and a JSON access log line for every request.

One ASGI middleware times each request, labels it with the operationId Connexion routed it to
(``other`` for what no operation serves: /docs, /openapi.json, unknown paths), counts it by
operation, method and status, and logs it as one JSON object on the ``agentos_sessions.access``
logger. ``GET /metrics`` (handlers/health.py) serves the counts in Prometheus's text format.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest

from handlers import errors

access_log = logging.getLogger("agentos_sessions.access")

# Seconds. A request here takes about a millisecond; a slow database, seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Connexion's record of the operation a request was routed to (connexion.middleware.routing).
_ROUTING = "connexion_routing"


class Metrics:
    """This process's request metrics, in a registry of their own (one per app)."""

    def __init__(self) -> None:
        # No `_created` series beside each counter: nothing of ours reads them (process-wide).
        disable_created_metrics()
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "agentos_sessions_requests",
            "Requests answered, by operationId, method and status code",
            ["operation", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "agentos_sessions_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by operationId",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The metrics in Prometheus's text format."""
        return generate_latest(self.registry)


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
            # Connexion names the handler (handlers.sessions.get_sessions); the contract, the operation.
            operation = (extensions.get(_ROUTING, {}).get("operation_id") or "other").rpartition(".")[2]
            self.metrics.requests.labels(operation, scope["method"], str(status)).inc()
            self.metrics.duration.labels(operation).observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(_access_line(scope, operation, status, elapsed))


def _access_line(scope, operation: str, status: int, elapsed: float) -> str:
    client = scope.get("client")
    line = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "request_id": errors.current_request_id.get(),
        "method": scope["method"],
        "path": scope["path"],
        "query": scope.get("query_string", b"").decode("latin-1"),
        "status": status,
        "duration_ms": round(elapsed * 1000, 3),
        "operation_id": operation,
        "client": client[0] if client else None,
    }
    return orjson.dumps(line).decode()


# Server messages (not access lines): one line of text each, on stderr.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class AlembicContextLines(logging.Filter):
    """Drops the two lines Alembic logs whenever it opens a migration context ("Context impl
    SQLiteImpl.", "Will assume non-transactional DDL.": six pairs each time the server starts);
    the lines that say which migration runs pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.name == "alembic.runtime.migration"
            and record.getMessage().startswith(("Context impl ", "Will assume "))
        )


def logging_config(*, access_log_enabled: bool) -> dict:
    """``logging.config.dictConfig`` for the server (passed to uvicorn, so that every worker
    process applies it): messages as text on stderr, access log lines as bare JSON on stdout."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "text": {"format": LOG_FORMAT},
            "json_line": {"format": "%(message)s"},
        },
        "filters": {"alembic_context": {"()": AlembicContextLines}},
        "handlers": {
            "text": {
                "class": "logging.StreamHandler",
                "formatter": "text",
                "stream": "ext://sys.stderr",
                "filters": ["alembic_context"],
            },
            "access": {"class": "logging.StreamHandler", "formatter": "json_line", "stream": "ext://sys.stdout"},
        },
        "root": {"level": "INFO", "handlers": ["text"]},
        "loggers": {
            # uvicorn's own access log is replaced by ours; its other messages go to the root's.
            "uvicorn": {"level": "INFO", "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            "agentos_sessions.access": {
                "level": "INFO" if access_log_enabled else "WARNING",
                "handlers": ["access"],
                "propagate": False,
            },
        },
    }
