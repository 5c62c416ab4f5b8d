"""Fresh databases for tests: a SQLite file, or a schema of its own on the PostgreSQL server
named by AGENTOS_SESSIONS_TEST_PG_URL (`tox -e pg`), so that every test runs on either engine;
reached through a pooler when the run sets one up (tests/conftest.py, `tox -e pgbouncer`)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

from agentos_sessions.persistence.database import psycopg_url
from agentos_sessions.settings import DatabaseSettings

PG_URL = os.environ.get("AGENTOS_SESSIONS_TEST_PG_URL", "")
_schemas: list[str] = []
# The URL that reaches PG_URL's server through a pooler, if the run goes through one.
_pooled_url: str | None = None


def route_through(url: str | None) -> None:
    """Make the databases of tests from now on reach the server at ``url`` (None: directly)."""
    global _pooled_url
    _pooled_url = url


def fresh_database(directory: Path, name: str = "sessions", **options) -> DatabaseSettings:
    """An empty database: ``<directory>/<name>.db``, or a new schema on the test PostgreSQL server."""
    if not PG_URL:
        return DatabaseSettings(f"sqlite:///{directory / f'{name}.db'}", **options)
    schema = f"test_{uuid.uuid4().hex[:12]}"
    _schemas.append(schema)
    return DatabaseSettings(_pooled_url or PG_URL, db_schema=schema, **options)


def drop_test_schemas() -> None:
    """Drop the schemas the tests made (at the end of the run)."""
    if not PG_URL or not _schemas:
        return
    engine = create_engine(psycopg_url(make_url(PG_URL)))
    # One transaction per schema: dropping hundreds in one holds a lock on every object of each,
    # more than PostgreSQL's lock table has room for (out of shared memory).
    with engine.connect() as connection:
        for schema in _schemas:
            with connection.begin():
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()
    _schemas.clear()
