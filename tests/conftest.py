"""Fixtures shared by all test suites: a fresh database per test and the app serving it."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from app import create_app
from settings import DatabaseSettings, Settings
from tests.databases import drop_test_schemas, fresh_database
from tests.direct import DirectDatabase

DB_ID = "main"


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
