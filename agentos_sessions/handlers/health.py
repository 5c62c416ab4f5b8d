"""Health tag: liveness, database reachability, metrics."""

from __future__ import annotations

import asyncio
import time

from connexion import request

from agentos_sessions.handlers.views import timestamp
from agentos_sessions.persistence import store
from agentos_sessions.persistence.database import Database, DatabaseUnavailable

__all__ = ["get_metrics", "health_check"]

# How long /health waits for a database to answer before calling it unavailable.
DATABASE_TIMEOUT = 2.0


async def health_check():
    """Liveness (as long as the process serves requests), and whether each database answers."""
    databases: dict[str, Database] = request.state.databases
    reports = await asyncio.gather(*(_database_health(database) for database in databases.values()))
    return {
        "status": "ok",
        "instantiated_at": timestamp(request.state.started_at),
        "databases": dict(zip(databases, reports, strict=True)),
    }, 200


async def _database_health(database: Database) -> dict:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(database.run(store.ping), DATABASE_TIMEOUT)
    except (DatabaseUnavailable, TimeoutError):
        return {"status": "unavailable"}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def get_metrics():
    """This process's request metrics, in Prometheus's text format."""
    return request.state.metrics.exposition(), 200
