"""The served app keeps its contract: Schemathesis fuzzes every operation from openapi.yaml."""

from __future__ import annotations

import pytest
import schemathesis
from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def served_app(tmp_path_factory):
    """One started app (tables created) on a fresh database for the whole module."""
    from app import create_app
    from settings import DatabaseSettings, Settings

    url = f"sqlite:///{tmp_path_factory.mktemp('contract') / 'sessions.db'}"
    app = create_app(Settings(databases={"main": DatabaseSettings(url)}))
    with TestClient(app):
        yield app


@pytest.fixture(scope="module")
def api_schema(served_app):
    """The contract as the app serves it."""
    return schemathesis.openapi.from_asgi("/openapi.json", served_app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_every_operation_keeps_the_contract(case):
    case.call_and_validate()


def test_stateful_sequences_keep_the_contract(api_schema):
    api_schema.as_state_machine().run()
