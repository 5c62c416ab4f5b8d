"""Sessions an agno 3.1.10 app wrote to SQLite, copied to the run's engine (PostgreSQL under
`tox -e pg`) and back to a new SQLite file with ``agentos-sessions copy``, are what agno reads
there: every session whole, and an agent continues one with its history."""

from __future__ import annotations

import pytest
from agno.db.base import SessionType

from agentos_sessions import cli
from agentos_sessions.persistence.database import table_schema
from agentos_sessions.settings import DatabaseSettings
from tests.agno_storage import agno_storage
from tests.databases import fresh_database
from tests.interop.conftest import seed_agno
from tests.interop.openai_stub import chat_completions_stub
from tests.interop.planner import answer, planner, user_turns

pytestmark = pytest.mark.interop


@pytest.fixture
def stub(loopback_only, monkeypatch):
    """The OpenAI chat completions stub the agents talk to."""
    monkeypatch.setenv("AGNO_TELEMETRY", "false")
    monkeypatch.delenv("AGENTOS_SESSIONS_DB_SCHEMA", raising=False)
    with chat_completions_stub(answer) as stub:
        yield stub
    assert loopback_only == []


def test_agno_reads_and_continues_what_was_copied_there_and_back(tmp_path, stub):
    first = DatabaseSettings(f"sqlite:///{tmp_path / 'first.db'}")
    middle = fresh_database(tmp_path, "middle")
    last = DatabaseSettings(f"sqlite:///{tmp_path / 'last.db'}")
    storage = agno_storage(first)
    try:
        seed_agno(storage)
        planner(storage, stub).run("Where do I go?", session_id="trip", user_id="alice")
        planner(storage, stub).run("When?", session_id="trip", user_id="alice")
        written = _sessions(storage)
    finally:
        storage.db_engine.dispose()
    assert len(written) == 7

    assert _copy(first, middle) == 0
    storage = agno_storage(middle)
    try:
        assert _sessions(storage) == written
        # An agent on the copy sends the model the history copied, then adds its run.
        reply = planner(storage, stub).run("With whom?", session_id="trip", user_id="alice")
        assert reply.content == "With Ada."
        assert user_turns(stub.requests[-1]) == ["Where do I go?", "When?", "With whom?"]
        continued = _sessions(storage)
    finally:
        storage.db_engine.dispose()
    assert len(continued["trip"]["runs"]) == 3
    assert {key: value for key, value in continued.items() if key != "trip"} == {
        key: value for key, value in written.items() if key != "trip"
    }

    assert _copy(middle, last) == 0
    storage = agno_storage(last)
    try:
        assert _sessions(storage) == continued
    finally:
        storage.db_engine.dispose()


def _copy(source: DatabaseSettings, target: DatabaseSettings) -> int:
    places = []
    for side, settings in (("from", source), ("to", target)):
        places += [f"--{side}", settings.url]
        if table_schema(settings):
            places += [f"--{side}-schema", table_schema(settings)]
    return cli.main(["copy", *places])


def _sessions(storage) -> dict[str, dict]:
    """Every session as agno reads it back, whole (runs included), by session_id."""
    found = {}
    for kind in SessionType:
        for listed in storage.get_sessions(session_type=kind):
            session = storage.get_session(listed.session_id, session_type=kind)
            found[session.session_id] = session.to_dict()
    return found
