"""A fork made here is continued by a real agno 3.1.10 Agent, with the copied history only, and is
the fork AgentOS 3.1.10 itself makes of the same session (its /agents/{id}/sessions/{id}/fork)."""

from __future__ import annotations

import pytest
from agno.os import AgentOS
from starlette.testclient import TestClient

from agentos_sessions.app import create_app
from agentos_sessions.settings import Settings
from tests.agno_storage import agno_storage
from tests.api.helpers import stored_runs, stored_session
from tests.direct import DirectDatabase
from tests.interop.openai_stub import chat_completions_stub
from tests.interop.planner import answer, planner, user_turns

pytestmark = pytest.mark.interop


@pytest.fixture
def agent_and_stub(database_settings, loopback_only, monkeypatch):
    """An agno Agent on the test database that sends its session's history to the model stub."""
    monkeypatch.setenv("AGNO_TELEMETRY", "false")
    storage = agno_storage(database_settings)
    with chat_completions_stub(answer) as stub:
        yield planner(storage, stub), stub
    storage.db_engine.dispose()
    assert loopback_only == []


def test_an_agent_continues_a_fork_with_the_copied_history(agent_and_stub, database_settings):
    agent, stub = agent_and_stub
    first = agent.run("Where do I go?", session_id="trip", user_id="alice")
    agent.run("When?", session_id="trip", user_id="alice")
    with TestClient(create_app(Settings(databases={"main": database_settings}))) as ours:
        response = ours.post("/sessions/trip/fork", json={"session_id": "branch", "up_to_run_id": first.run_id})
        assert response.status_code == 201
    branch = agent.run("With whom?", session_id="branch", user_id="alice")
    main = agent.run("With whom?", session_id="trip", user_id="alice")
    # The branch's model saw the first turn only; the original's both.
    assert user_turns(stub.requests[-2]) == ["Where do I go?", "With whom?"]
    assert user_turns(stub.requests[-1]) == ["Where do I go?", "When?", "With whom?"]
    assert (branch.content, main.content) == ("With Ada.", "With Ada.")
    # agno read the fork's lineage and appended its own run after the copied one.
    direct = DirectDatabase(database_settings)
    try:
        runs = sorted(stored_runs(direct, "branch"), key=lambda row: row.run_index)
        assert [run.run_data["input"]["input_content"] for run in runs] == ["Where do I go?", "With whom?"]
        assert [run.run_data.get("forked_from_session_id") for run in runs] == ["trip", None]
        assert stored_session(direct, "branch").session_data["forked_from_session_id"] == "trip"
    finally:
        direct.dispose()


def test_our_fork_is_the_one_agentos_makes(agent_and_stub, database_settings):
    agent, _stub = agent_and_stub
    agent.run("Where do I go?", session_id="trip", user_id="alice")
    agent.run("When?", session_id="trip", user_id="alice")
    with TestClient(create_app(Settings(databases={"main": database_settings}))) as ours:
        mine = ours.post("/agents/planner/sessions/trip/fork", params={"user_id": "alice"})
    with TestClient(AgentOS(agents=[agent], telemetry=False).get_app()) as agentos:
        theirs = agentos.post("/agents/planner/sessions/trip/fork", params={"user_id": "alice"})
    assert (mine.status_code, theirs.status_code) == (200, 200)
    ids = {"ours": mine.json()["session_id"], "agentos": theirs.json()["session_id"]}
    assert mine.json() == {"session_id": ids["ours"], "forked_from_session_id": "trip"}
    assert theirs.json() == {"session_id": ids["agentos"], "forked_from_session_id": "trip"}
    direct = DirectDatabase(database_settings)
    try:
        forks = {name: (stored_session(direct, sid), stored_runs(direct, sid)) for name, sid in ids.items()}
    finally:
        direct.dispose()

    def shape(session, runs) -> dict:
        """What a fork keeps of its source, without its new ids and times."""
        ordered = sorted(runs, key=lambda row: row.run_index)
        return {
            "session": (session.session_type, session.agent_id, session.user_id, session.session_data),
            "runs": [
                (
                    run.run_index,
                    run.run_type,
                    run.agent_id,
                    run.user_id,
                    run.status,
                    run.run_data["input"],
                    run.run_data["content"],
                    run.run_data["session_id"] == session.session_id,
                    run.run_data["forked_from_session_id"],
                )
                for run in ordered
            ],
        }

    assert shape(*forks["ours"]) == shape(*forks["agentos"])
    assert len(forks["ours"][1]) == 2
