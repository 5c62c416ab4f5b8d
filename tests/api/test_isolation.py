"""User isolation: a caller without the admin scope acts as its token's subject, on every route."""

from __future__ import annotations

import pytest
from sqlalchemy import insert
from starlette.testclient import TestClient

from agentos_sessions.app import create_app
from agentos_sessions.settings import SecuritySettings, Settings
from tests.api.helpers import stored_session
from tests.databases import fresh_database
from tests.direct import DirectDatabase
from tests.tokens import ALL_SCOPES, bearer, hs_secret, token

# Also run through PgBouncer, in transaction and in session mode, by `tox -e pgbouncer`.
pytestmark = pytest.mark.pooler

ALICE = bearer(token("alice"))
BOB = bearer(token("bob"))
ADMIN = bearer(token("root", ["agent_os:admin"]))


def _serve(tmp_path, *, isolation: bool):
    config = fresh_database(tmp_path)
    security = SecuritySettings(jwt_verification_key=hs_secret(), user_isolation=isolation)
    return TestClient(create_app(Settings(databases={"main": config}, security=security))), DirectDatabase(config)


@pytest.fixture
def isolated(tmp_path):
    """A server with isolation on: alice has a-1 and a-2, bob has b-1, and n-1 has no owner."""
    client, database = _serve(tmp_path, isolation=True)
    with client:
        for session_id, owner in (("a-1", ALICE), ("a-2", ALICE), ("b-1", BOB)):
            assert client.post("/sessions", json={"session_id": session_id}, headers=owner).status_code == 201
        # An owner-less session, as an agent run without a user_id leaves one.
        with database.unit_of_work() as db:
            db.execute(
                insert(database.models.sessions).values(
                    session_id="n-1", session_type="agent", created_at=1_700_000_000
                )
            )
        yield client, database
    database.dispose()


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(item["session_id"] for item in response.json()["data"])


def test_a_caller_lists_and_counts_only_its_own_sessions(isolated):
    client, _ = isolated
    for query in ("", "?user_id=bob", "?user_id="):
        response = client.get(f"/sessions{query}", headers=ALICE)
        assert _ids(response) == ["a-1", "a-2"]
        assert response.json()["meta"]["total_count"] == 2
    assert _ids(client.get("/sessions", headers=BOB)) == ["b-1"]


def test_an_admin_sees_every_session_and_may_filter_by_user(isolated):
    client, _ = isolated
    assert _ids(client.get("/sessions", headers=ADMIN)) == ["a-1", "a-2", "b-1", "n-1"]
    assert _ids(client.get("/sessions?user_id=bob", headers=ADMIN)) == ["b-1"]
    assert client.get("/sessions/b-1", headers=ADMIN).json()["user_id"] == "bob"
    renamed = client.post("/sessions/b-1/rename", json={"session_name": "by admin"}, headers=ADMIN)
    assert (renamed.status_code, renamed.json()["session_name"]) == (200, "by admin")


def test_an_owner_less_session_is_nobodys_but_the_admins(isolated):
    client, database = isolated
    assert client.get("/sessions/n-1", headers=ALICE).json() == {"detail": "Session with id 'n-1' not found"}
    assert client.delete("/sessions/n-1", headers=ALICE).status_code == 404
    assert stored_session(database, "n-1") is not None


def test_a_created_session_belongs_to_the_caller_whatever_the_body_says(isolated):
    client, database = isolated
    created = client.post("/sessions", json={"session_id": "a-3", "user_id": "bob"}, headers=ALICE)
    assert (created.status_code, created.json()["user_id"]) == (201, "alice")
    assert stored_session(database, "a-3").user_id == "alice"


def test_taking_another_users_session_id_is_a_conflict_that_names_no_one(isolated):
    client, database = isolated
    before = database.snapshot()
    taken = client.post("/sessions", json={"session_id": "b-1", "session_name": "mine"}, headers=ALICE)
    assert (taken.status_code, taken.json()) == (
        409,
        {
            "detail": "Could not create a session with the supplied session_id. "
            "Omit session_id to have one generated, or choose a different one."
        },
    )
    own = client.post("/sessions", json={"session_id": "a-1"}, headers=ALICE)
    assert (own.status_code, own.json()) == (
        409,
        {"detail": "Session with id 'a-1' already exists. Use PATCH /sessions/a-1 to update it."},
    )
    assert database.snapshot() == before


def test_a_bulk_delete_removes_only_the_callers_own(isolated):
    client, database = isolated
    response = client.request(
        "DELETE",
        "/sessions?user_id=bob",
        json={"session_ids": ["a-1", "b-1", "n-1"], "session_types": ["agent", "agent", "agent"]},
        headers=ALICE,
    )
    assert response.status_code == 204
    assert stored_session(database, "a-1") is None
    assert stored_session(database, "b-1").user_id == "bob"
    assert stored_session(database, "n-1") is not None


def test_a_token_without_a_subject_is_refused(isolated):
    client, database = isolated
    before = database.snapshot()
    for method, path in (("GET", "/sessions"), ("POST", "/sessions"), ("DELETE", "/sessions/a-1")):
        response = client.request(method, path, headers=bearer(token(None, ALL_SCOPES)))
        assert (response.status_code, response.json()) == (
            403,
            {"detail": "Authenticated request is missing a user identity"},
        )
        # An admin needs a subject too: it is the owner of what it creates.
        response = client.request(method, path, headers=bearer(token(None, ["agent_os:admin"])))
        assert (response.status_code, response.json()) == (
            403,
            {"detail": "Authenticated request is missing a user identity"},
        )
    assert database.snapshot() == before


def test_without_isolation_tokens_share_every_session_as_in_agentos(tmp_path):
    """Isolation is opt-in: without it a token's subject only owns what it creates."""
    client, database = _serve(tmp_path, isolation=False)
    with client:
        assert client.post("/sessions", json={"session_id": "b-1", "user_id": "x"}, headers=BOB).status_code == 201
        assert client.get("/sessions/b-1", headers=ALICE).json()["user_id"] == "bob"
        assert _ids(client.get("/sessions?user_id=bob", headers=ALICE)) == ["b-1"]
        assert client.delete("/sessions/b-1", headers=ALICE).status_code == 204
    assert stored_session(database, "b-1") is None
    database.dispose()
