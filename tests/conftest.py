"""Fixtures shared by all test suites: a fresh database per test and the app serving it."""

from __future__ import annotations

import os

import pytest
from starlette.testclient import TestClient

from app import create_app
from settings import DatabaseSettings, Settings
from tests.direct import DirectDatabase

DB_ID = "main"


@pytest.fixture
def db_url(tmp_path) -> str:
    """URL of an empty SQLite database file for this test (or the PostgreSQL test URL)."""
    return os.environ.get("AGENTOS_SESSIONS_TEST_DATABASE_URL") or f"sqlite:///{tmp_path / 'sessions.db'}"


@pytest.fixture
def settings(db_url) -> Settings:
    """One database, id 'main', response validation on."""
    return Settings(databases={DB_ID: DatabaseSettings(db_url)})


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
