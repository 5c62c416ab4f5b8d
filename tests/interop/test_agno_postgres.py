"""Interop with agno 3.1.10's PostgresDb: both on one PostgreSQL schema, in both directions.

The same seed and the same AgentOS answers as the SQLite interop tests (test_agno_interop.py):
what agno's PostgresDb writes, our API serves as AgentOS does; what our API writes, PostgresDb
reads; a schema agno made is adopted as it is, and a schema we make is agno's plus ours.
Run by `tox -e pg`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from agno.db.base import SessionType
from agno.session import AgentSession
from sqlalchemy import inspect, make_url
from starlette.testclient import TestClient

from agentos_sessions.app import create_app
from agentos_sessions.persistence import schema
from agentos_sessions.settings import DatabaseSettings, Settings
from tests.databases import fresh_database
from tests.direct import DirectDatabase
from tests.interop.test_agno_interop import AGENTOS, CREATE_BODIES, CREATE_URL, DETAIL_URL, READ_URLS, now_stamped

pytestmark = [pytest.mark.interop, pytest.mark.pg]


@pytest.fixture
def database(tmp_path) -> DatabaseSettings:
    return fresh_database(tmp_path)


def PostgresDb(**options):
    """agno's PostgresDb, imported when used: it needs psycopg, which only `tox -e pg` installs."""
    from agno.db.postgres import PostgresDb

    return PostgresDb(**options)


@pytest.fixture
def agno_db(database) -> Iterator:
    url = make_url(database.url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    db = PostgresDb(db_url=url, db_schema=database.db_schema, id="main")
    yield db
    db.db_engine.dispose()


@pytest.fixture
def seeded(agno_db, h):
    h.seed_agno(agno_db)
    return agno_db


@pytest.fixture
def client(database):
    with TestClient(create_app(Settings(databases={"main": database}))) as client:
        yield client


@pytest.mark.parametrize("url", ["/sessions", "/sessions?type=team", "/sessions?type=workflow"])
def test_list_of_what_agno_wrote_is_agentos_answer(url, seeded, client):
    response = client.get(url)
    body = response.json()
    assert isinstance(body["meta"].pop("search_time_ms"), int | float)
    assert (response.status_code, body) == AGENTOS[f"GET {url}"]


@pytest.mark.parametrize("url", READ_URLS)
def test_sessions_and_runs_agno_wrote_are_served_as_agentos_does(url, seeded, client):
    response = client.get(url)
    assert (response.status_code, response.json()) == AGENTOS[f"GET {url}"]


@pytest.mark.parametrize("kind", ["agent", "team", "workflow"])
def test_a_session_created_through_the_api_is_agnos_session(kind, client, agno_db):
    started = time.time()
    sent = CREATE_BODIES[kind]
    response = client.post(CREATE_URL[kind], json=sent)
    _, expected = AGENTOS[f"GET {DETAIL_URL[kind]}"]
    assert (response.status_code, now_stamped(response.json(), started)) == (201, expected)
    session = agno_db.get_session(session_id=sent["session_id"], session_type=SessionType(kind))
    assert session.session_data == {"session_state": sent["session_state"], "session_name": sent["session_name"]}
    assert (session.metadata, session.user_id, getattr(session, f"{kind}_id")) == (
        sent["metadata"],
        sent["user_id"],
        sent[f"{kind}_id"],
    )


def test_agno_continues_a_session_created_through_the_api(client, agno_db, h):
    client.post("/sessions", json=CREATE_BODIES["agent"])
    session = agno_db.get_session(session_id="new-agent", session_type=SessionType.AGENT)
    assert isinstance(session, AgentSession)
    run = h.agent_run("run-new-0", "new-agent", "u1", "First question", "First answer", h.T0 + 5, agent_id="agent-x")
    session.upsert_run(run)
    agno_db.upsert_session(session)
    agno_db.upsert_run(run=run, session_id="new-agent", user_id="u1", run_index=0)
    runs = client.get("/sessions/new-agent/runs").json()
    assert [(r["run_id"], r["run_input"], r["content"]) for r in runs] == [
        ("run-new-0", "First question", "First answer")
    ]
    assert client.get("/sessions/new-agent").json()["session_state"] == {"a": 1, "nested": {"b": [1, 2]}}


def test_rename_update_and_delete_through_the_api_are_read_by_agno(seeded, client):
    client.post("/sessions/sess-agent-2/rename", json={"session_name": "Renamed ✓"})
    client.patch("/sessions/sess-agent-1", json={"session_state": {"score": 3}, "metadata": {"m": True}})
    client.delete("/sessions/sess-wf-2")
    renamed = seeded.get_session(session_id="sess-agent-2", session_type=SessionType.AGENT)
    updated = seeded.get_session(session_id="sess-agent-1", session_type=SessionType.AGENT)
    assert renamed.session_data["session_name"] == "Renamed ✓"
    assert (updated.session_data["session_state"], updated.metadata) == ({"score": 3}, {"m": True})
    assert seeded.get_session(session_id="sess-wf-2", session_type=SessionType.WORKFLOW) is None
    assert len(updated.runs) == 2  # its runs are still agno's runs


def _layout(database: DatabaseSettings) -> dict:
    direct = DirectDatabase(database)
    inspector = inspect(direct.engine)
    layout = {
        table: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table, database.db_schema)],
            sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table, database.db_schema)),
            [(f["referred_table"], f["options"]) for f in inspector.get_foreign_keys(table, database.db_schema)],
        )
        for table in inspector.get_table_names(database.db_schema)
    }
    direct.dispose()
    return layout


def test_a_schema_agno_made_is_adopted_as_it_is(database, seeded):
    agnos = _layout(database)
    direct = DirectDatabase(database)
    rows = direct.snapshot()

    with TestClient(create_app(Settings(databases={"main": database}))) as client:
        assert client.get("/sessions").json()["meta"]["total_count"] == 6

    assert direct.snapshot() == rows
    after = _layout(database)
    own = {index.name for index in direct.models.own_indexes("postgresql")}
    assert set(after) == set(agnos) | {schema.version_table(direct.models)}
    for table, (columns, indexes, keys) in agnos.items():
        assert (after[table][0], after[table][2]) == (columns, keys), table
        assert [index for index in after[table][1] if index[0] not in own] == indexes, table
    with direct.engine.connect() as db:
        assert schema.current_revision(db, direct.models) == schema.head()
    direct.dispose()


def test_a_schema_we_made_is_agnos_plus_our_indexes(tmp_path, database, client):
    theirs = fresh_database(tmp_path, "theirs")
    url = make_url(theirs.url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    agno_db = PostgresDb(db_url=url, db_schema=theirs.db_schema)
    agno_db._get_table("sessions", create_table_if_not_found=True)
    agno_db._get_table("runs", create_table_if_not_found=True)
    agno_db.db_engine.dispose()

    ours, agnos = _layout(database), _layout(theirs)
    assert set(ours) == set(agnos) | {schema.version_table(DirectDatabase(database).models)}
    own = {index.name for index in DirectDatabase(database).models.own_indexes("postgresql")}
    for table, (columns, indexes, keys) in agnos.items():
        assert ours[table][0] == columns, table
        assert ours[table][2] == keys, table
        assert [index for index in ours[table][1] if index[0] not in own] == indexes, table
