"""Forking a session: POST /sessions/{id}/fork, and AgentOS's /agents/... and /teams/... paths."""

from __future__ import annotations

import uuid

import pytest
from starlette.testclient import TestClient

from agentos_sessions.app import create_app
from agentos_sessions.settings import SecuritySettings, Settings
from tests.api.helpers import add_run, stored_runs, stored_session
from tests.tokens import hs_secret, token

pytestmark = pytest.mark.pooler

T0 = 1_750_000_000


@pytest.fixture
def source(client, database):
    """Alice's agent session s (named, with state, metadata and a summary) and its three runs."""
    body = {
        "session_id": "s",
        "user_id": "alice",
        "agent_id": "planner",
        "session_name": "Trip",
        "session_state": {"city": "Lyon"},
        "metadata": {"channel": "web"},
    }
    assert client.post("/sessions", json=body).status_code == 201
    assert client.patch("/sessions/s", json={"summary": {"summary": "A trip"}}).status_code == 200
    for index in range(3):
        add_run(
            database,
            "s",
            f"r{index}",
            index,
            created_at=T0 + index,
            agent_id="planner",
            user_id="alice",
            content=f"answer {index}",
            input={"input_content": f"question {index}"},
        )
    return "s"


def _runs(database, session_id) -> list:
    return sorted(stored_runs(database, session_id), key=lambda row: row.run_index)


def test_a_fork_is_a_deep_copy_with_fresh_run_ids_and_agnos_lineage(client, database, source):
    before = (stored_session(database, "s"), _runs(database, "s"))
    response = client.post("/sessions/s/fork", json={"session_id": "f"})
    assert response.status_code == 201
    body = response.json()
    assert (body["session_id"], body["session_name"], body["session_state"], body["user_id"], body["agent_id"]) == (
        "f",
        "Trip",
        {"city": "Lyon"},
        "alice",
        "planner",
    )
    assert body["metadata"] == {"channel": "web"}
    assert [message["content"] for message in body["chat_history"]] == []  # runs without messages
    assert response.headers["etag"] == client.get("/sessions/f").headers["etag"]

    fork, copied = stored_session(database, "f"), _runs(database, "f")
    assert fork.session_data == {
        "session_name": "Trip",
        "session_state": {"city": "Lyon"},
        "forked_from_session_id": "s",
    }
    assert (fork.summary, fork.agent_id, fork.user_id, fork.session_type) == (
        {"summary": "A trip"},
        "planner",
        "alice",
        "agent",
    )
    assert fork.created_at == fork.updated_at >= before[0].updated_at
    originals = before[1]
    assert [run.run_index for run in copied] == [0, 1, 2]
    assert [run.run_data["content"] for run in copied] == ["answer 0", "answer 1", "answer 2"]
    assert [run.created_at for run in copied] == [run.created_at for run in originals]
    new_ids = [run.run_id for run in copied]
    assert len(set(new_ids)) == 3 and not set(new_ids) & {"r0", "r1", "r2"}
    assert [run.run_data["run_id"] for run in copied] == new_ids
    assert {(run.session_id, run.run_data["session_id"], run.run_data["forked_from_session_id"]) for run in copied} == {
        ("f", "f", "s")
    }
    # The source is as it was.
    assert (stored_session(database, "s"), _runs(database, "s")) == before


def test_a_fork_of_a_fork_keeps_each_runs_first_session(client, database, source):
    assert client.post("/sessions/s/fork", json={"session_id": "mid"}).status_code == 201
    assert client.post("/sessions/mid/fork", json={"session_id": "leaf"}).status_code == 201
    assert stored_session(database, "leaf").session_data["forked_from_session_id"] == "mid"
    assert {run.run_data["forked_from_session_id"] for run in _runs(database, "leaf")} == {"s"}


def test_a_fork_up_to_a_run_copies_that_run_and_those_before(client, database, source):
    response = client.post("/sessions/s/fork", json={"up_to_run_id": "r1"})
    assert response.status_code == 201
    new_id = response.json()["session_id"]
    assert str(uuid.UUID(new_id)) == new_id
    assert [run.run_data["content"] for run in _runs(database, new_id)] == ["answer 0", "answer 1"]


def test_a_fork_up_to_an_unknown_run_is_404_and_writes_nothing(client, database, source):
    response = client.post("/sessions/s/fork", json={"session_id": "f", "up_to_run_id": "nope"})
    assert (response.status_code, response.json()) == (404, {"detail": "Run with ID nope not found in session s"})
    assert stored_session(database, "f") is None


def test_a_fork_into_a_taken_id_is_409_and_changes_nothing(client, database, source):
    assert client.post("/sessions", json={"session_id": "taken"}).status_code == 201
    response = client.post("/sessions/s/fork", json={"session_id": "taken"})
    assert (response.status_code, response.json()) == (
        409,
        {"detail": "Session with id 'taken' already exists. Use PATCH /sessions/taken to update it."},
    )
    assert (_runs(database, "taken"), stored_session(database, "taken").session_data) == ([], None)


def test_forking_a_missing_session_is_404(client):
    response = client.post("/sessions/nope/fork")
    assert (response.status_code, response.json()) == (404, {"detail": "Session with id 'nope' not found"})


def test_a_forked_team_runs_members_point_at_their_new_parent(client, database):
    assert (
        client.post("/sessions", params={"type": "team"}, json={"session_id": "t", "team_id": "tm"}).status_code == 201
    )
    add_run(database, "t", "lead", 0, created_at=T0, run_type="team", team_id="tm")
    add_run(database, "t", "member", 1, created_at=T0 + 1, agent_id="helper", parent_run_id="lead")
    assert client.post("/sessions/t/fork", json={"session_id": "tf"}).status_code == 201
    lead, member = _runs(database, "tf")
    assert (member.parent_run_id, member.run_data["parent_run_id"]) == (lead.run_id, lead.run_id)
    assert (lead.run_type, lead.team_id, member.agent_id) == ("team", "tm", "helper")


def test_a_fork_up_to_a_team_run_takes_its_members_runs_too(client, database):
    assert (
        client.post("/sessions", params={"type": "team"}, json={"session_id": "t", "team_id": "tm"}).status_code == 201
    )
    add_run(database, "t", "lead-1", 0, created_at=T0, run_type="team", team_id="tm")
    add_run(database, "t", "lead-2", 1, created_at=T0 + 1, run_type="team", team_id="tm")
    add_run(database, "t", "member-1", 2, created_at=T0 + 2, agent_id="helper", parent_run_id="lead-1")
    add_run(database, "t", "member-2", 3, created_at=T0 + 3, agent_id="helper", parent_run_id="lead-2")
    assert client.post("/sessions/t/fork", json={"session_id": "tf", "up_to_run_id": "lead-1"}).status_code == 201
    lead, member = _runs(database, "tf")
    assert (lead.team_id, member.agent_id, member.parent_run_id, member.run_index) == ("tm", "helper", lead.run_id, 1)


# --- AgentOS's paths -----------------------------------------------------------------------------


def test_agentos_fork_of_an_agents_session_answers_as_agentos(client, database, source):
    response = client.post("/agents/planner/sessions/s/fork")
    assert response.status_code == 200
    new_id = response.json()["session_id"]
    assert response.json() == {"session_id": new_id, "forked_from_session_id": "s"}
    assert [run.run_data["content"] for run in _runs(database, new_id)] == ["answer 0", "answer 1", "answer 2"]


def test_agentos_fork_checks_the_component_and_the_runs(client, database, source):
    assert client.post("/sessions", json={"session_id": "empty", "agent_id": "planner"}).status_code == 201
    answers = [
        client.post("/agents/another/sessions/s/fork"),
        client.post("/teams/planner/sessions/s/fork"),
        client.post("/agents/planner/sessions/empty/fork"),
        client.post("/agents/planner/sessions/absent/fork"),
    ]
    assert [(response.status_code, response.json()) for response in answers] == [
        (404, {"detail": "Agent not found"}),
        (404, {"detail": "Team not found"}),
        (400, {"detail": "Source session has no runs to fork."}),
        (400, {"detail": "Source session has no runs to fork."}),
    ]


def test_agentos_fork_of_a_teams_session(client, database):
    assert (
        client.post("/sessions", params={"type": "team"}, json={"session_id": "t", "team_id": "tm"}).status_code == 201
    )
    add_run(database, "t", "lead", 0, created_at=T0, run_type="team", team_id="tm")
    response = client.post("/teams/tm/sessions/t/fork")
    assert (response.status_code, response.json()["forked_from_session_id"]) == (200, "t")
    assert stored_session(database, response.json()["session_id"]).team_id == "tm"


# --- isolation and scopes --------------------------------------------------------------------------


def test_a_fork_is_the_callers_and_only_of_its_own_sessions(settings, database_settings):
    isolated = Settings(
        databases=settings.databases, security=SecuritySettings(jwt_verification_key=hs_secret(), user_isolation=True)
    )
    with TestClient(create_app(isolated)) as client:

        def auth(subject, *scopes):
            return {"Authorization": f"Bearer {token(subject, scopes=list(scopes))}"}

        alice = auth("alice", "sessions:read", "sessions:write")
        assert client.post("/sessions", json={"session_id": "mine"}, headers=alice).status_code == 201
        response = client.post(
            "/sessions/mine/fork", json={"session_id": "bobs"}, headers=auth("bob", "sessions:write")
        )
        assert (response.status_code, response.json()) == (404, {"detail": "Session with id 'mine' not found"})
        response = client.post("/sessions/mine/fork", json={"session_id": "f"}, headers=auth("alice", "sessions:read"))
        assert (response.status_code, response.json()) == (
            403,
            {"detail": "Insufficient permissions. Required scope(s): sessions:write"},
        )
        response = client.post("/sessions/mine/fork", json={"session_id": "f"}, headers=alice)
        assert (response.status_code, response.json()["user_id"]) == (201, "alice")
        assert client.get("/sessions/f", headers=auth("bob", "sessions:read")).status_code == 404
