"""Fixtures shared by all test suites: a fresh database per test and the app serving it."""

from __future__ import annotations

import os

import pytest
from starlette.testclient import TestClient

from agentos_sessions.app import create_app
from agentos_sessions.settings import DatabaseSettings, Settings
from tests import databases
from tests.databases import PG_URL, drop_test_schemas, fresh_database
from tests.direct import DirectDatabase
from tests.pgbouncer import POOL_MODES, pgbouncer

DB_ID = "main"
# `tox -e pgbouncer`: transaction or session; the run's PostgreSQL databases are reached through
# a PgBouncer in that pool mode.
POOLER = os.environ.get("AGENTOS_SESSIONS_TEST_POOLER", "")


@pytest.fixture(scope="session", autouse=True)
def _pooler():
    """With AGENTOS_SESSIONS_TEST_POOLER set, every test database is reached through PgBouncer."""
    if not POOLER:
        yield
        return
    if POOLER not in POOL_MODES or not PG_URL:
        pytest.fail(f"AGENTOS_SESSIONS_TEST_POOLER is one of {POOL_MODES}, with AGENTOS_SESSIONS_TEST_PG_URL set")
    with pgbouncer(PG_URL, POOLER) as url:
        databases.route_through(url)
        yield
        databases.route_through(None)


@pytest.fixture(autouse=True)
def _postgresql_for_pg_tests(request):
    """A test marked pg fails at once, saying why, when no PostgreSQL server is configured."""
    if request.node.get_closest_marker("pg") and not PG_URL:
        pytest.fail("tests marked pg need AGENTOS_SESSIONS_TEST_PG_URL (run them with tox -e pg)", pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _test_schemas():
    """On PostgreSQL, the schemas the tests made are dropped when the run ends."""
    yield
    drop_test_schemas()


@pytest.fixture
def database_settings(tmp_path) -> DatabaseSettings:
    """An empty database for this test: a SQLite file, or a fresh schema on PostgreSQL."""
    return fresh_database(tmp_path)


@pytest.fixture
def settings(database_settings) -> Settings:
    """One database, id 'main', response validation on."""
    return Settings(databases={DB_ID: database_settings})


@pytest.fixture
def app(settings):
    """The application under test."""
    return create_app(settings)


@pytest.fixture
def client(app):
    """A client with the app started (lifespan run: tables created)."""
    with TestClient(app) as client:
        yield client


@pytest.fixture
def database(client, settings):
    """Direct access to the test database, to check what the API stored."""
    database = DirectDatabase(settings.databases[DB_ID])
    yield database
    database.dispose()
