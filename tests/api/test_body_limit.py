"""Request bodies over the configured limit are refused with 413 before they are parsed."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from agentos_sessions.app import create_app
from agentos_sessions.settings import Settings
from tests.api.helpers import stored_session

LIMIT = 200


@pytest.fixture
def small_client(database_settings):
    settings = Settings(databases={"main": database_settings}, max_body_bytes=LIMIT)
    with TestClient(create_app(settings)) as client:
        yield client


def _body(size: int) -> bytes:
    """A valid create body of exactly ``size`` bytes."""
    prefix = b'{"session_id": "big", "session_name": "'
    body = prefix + b"x" * (size - len(prefix) - 2) + b'"}'
    assert len(body) == size and json.loads(body)
    return body


TOO_LARGE = {"detail": f"Request body too large: the limit is {LIMIT} bytes"}


def test_a_body_at_the_limit_is_served(small_client, database):
    response = small_client.post("/sessions", content=_body(LIMIT), headers={"content-type": "application/json"})
    assert response.status_code == 201
    assert stored_session(database, "big") is not None


def test_a_declared_length_over_the_limit_is_413_and_nothing_is_stored(small_client, database):
    response = small_client.post("/sessions", content=_body(LIMIT + 1), headers={"content-type": "application/json"})
    assert (response.status_code, response.json()) == (413, TOO_LARGE)
    assert stored_session(database, "big") is None


def test_a_chunked_body_over_the_limit_is_413_and_nothing_is_stored(small_client, database):
    body = _body(LIMIT * 3)
    chunks = (body[start : start + 50] for start in range(0, len(body), 50))
    response = small_client.post("/sessions", content=chunks, headers={"content-type": "application/json"})
    assert (response.status_code, response.json()) == (413, TOO_LARGE)
    assert stored_session(database, "big") is None


@pytest.mark.parametrize(
    ("method", "path"),
    [("patch", "/sessions/s"), ("post", "/sessions/s/rename"), ("delete", "/sessions")],
)
def test_every_operation_with_a_body_has_the_limit(small_client, database, method, path):
    small_client.post("/sessions", json={"session_id": "s", "session_name": "kept"})
    response = small_client.request(
        method.upper(), path, content=b" " * (LIMIT + 1), headers={"content-type": "application/json"}
    )
    assert (response.status_code, response.json()) == (413, TOO_LARGE)
    assert stored_session(database, "s").session_data == {"session_name": "kept"}


def test_the_default_limit_is_one_mebibyte(client):
    response = client.post("/sessions", content=b" " * (1024 * 1024 + 1), headers={"content-type": "application/json"})
    assert (response.status_code, response.json()["detail"]) == (
        413,
        "Request body too large: the limit is 1048576 bytes",
    )
