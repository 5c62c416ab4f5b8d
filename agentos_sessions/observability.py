"""What operators see: Prometheus metrics, and the logging configuration of the server.

``middleware.observe`` times and counts each request into :class:`Metrics` and logs it as
one JSON line on the ``agentos_sessions.access`` logger; ``GET /metrics`` (handlers/health.py)
serves the counts in Prometheus's text format.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest

# Seconds. A request here takes about a millisecond; a slow database, seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


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
