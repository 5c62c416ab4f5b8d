"""Several configured databases: db_id picks one, as in AgentOS."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from agentos_sessions.app import create_app
from agentos_sessions.settings import Settings
from tests.api.helpers import stored_session
from tests.databases import fresh_database
from tests.direct import DirectDatabase


@pytest.fixture
def two_databases(tmp_path):
    """Settings with databases 'a' and 'b', the second with a custom sessions table."""
    return Settings(
        databases={
            "a": fresh_database(tmp_path, "a"),
            "b": fresh_database(tmp_path, "b", session_table="archive"),
        }
    )


@pytest.fixture
def multi_client(two_databases):
    """A started app over both databases."""
    with TestClient(create_app(two_databases)) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/sessions", None),
        ("POST", "/sessions", {}),
        ("GET", "/sessions/x", None),
        ("GET", "/sessions/x/runs", None),
        ("POST", "/sessions/x/rename", {"session_name": "n"}),
        ("PATCH", "/sessions/x", {}),
        ("DELETE", "/sessions/x", None),
        ("DELETE", "/sessions", {"session_ids": ["x"], "session_types": ["agent"]}),
    ],
)
def test_without_db_id_every_route_is_400(multi_client, method, path, body):
    response = multi_client.request(method, path, json=body)
    assert response.status_code == 400
    assert response.json() == {"detail": "The db_id query parameter is required when using multiple databases"}


def test_db_id_selects_the_database_and_its_tables(multi_client, two_databases):
    response = multi_client.post("/sessions", params={"db_id": "b"}, json={"session_id": "in-b"})
    assert response.status_code == 201
    listed = multi_client.get("/sessions", params={"db_id": "b", "table": "archive"}).json()
    assert [s["session_id"] for s in listed["data"]] == ["in-b"]
    assert multi_client.get("/sessions", params={"db_id": "a"}).json()["data"] == []
    assert multi_client.get("/sessions/in-b", params={"db_id": "a"}).status_code == 404

    archive = DirectDatabase(two_databases.databases["b"])
    try:
        assert stored_session(archive, "in-b").session_id == "in-b"
        assert archive.models.runs.name == "archive_runs"
    finally:
        archive.dispose()


def test_unknown_db_id_and_foreign_table(multi_client):
    response = multi_client.get("/sessions", params={"db_id": "c"})
    assert (response.status_code, response.json()) == (404, {"detail": "No database found with id 'c'"})
    response = multi_client.get("/sessions", params={"db_id": "b", "table": "agno_sessions"})
    assert (response.status_code, response.json()) == (
        404,
        {"detail": "No database with id 'b' has table 'agno_sessions'"},
    )
