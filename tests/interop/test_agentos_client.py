"""Agno's own client, ``agno.client.AgentOSClient`` (agno 3.1.10), unmodified against our server.

The real program (``agentos-sessions serve``) runs on a SQLite file, or on a PostgreSQL schema when
AGENTOS_SESSIONS_TEST_PG_URL is set; its tables are emptied before each test. The tests drive it
with every sessions method of the client: create, list, get, runs, run previews (sync and async),
one run, rename, update, delete one and many, with and without ``db_id``/``table``.
What the client returns is compared with what it makes of AgentOS 3.1.10's recorded answer to the
same request on the same seed (``agentos_3_1_10_expected.json``, parsed by the client's own
schemas the way the client parses), and what the server stored is read straight from the tables.
Runs are written the way agno writes them (``conftest.seed_agno``, through agno's SqliteDb or
PostgresDb on the same database).

Then the use create_session exists for, end to end: a session made through our API with a
``session_state`` is continued by a real agno ``Agent`` whose model is an OpenAI-compatible stub
on loopback; the agent's prompt holds that state, and its runs are served by our API.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from agno.agent import Agent
from agno.client import AgentOSClient
from agno.db.base import SessionType
from agno.models.openai import OpenAIChat
from agno.os.schema import (
    AgentSessionDetailSchema,
    RunSchema,
    SessionRunPreviewSchema,
    SessionSchema,
    TeamRunSchema,
    TeamSessionDetailSchema,
    WorkflowRunSchema,
    WorkflowSessionDetailSchema,
)
from agno.remote.base import RemoteDb
from agno.utils.http import aclose_default_clients
from sqlalchemy import delete, select

from agentos_sessions.settings import DatabaseSettings
from tests.agno_storage import agno_storage
from tests.databases import fresh_database
from tests.direct import DirectDatabase
from tests.interop.openai_stub import USAGE, chat_completions_stub
from tests.interop.test_agno_interop import (
    AGENTOS,
    CREATE_BODIES,
    DETAIL_URL,
    PATCHES,
    RENAMES,
    SESSIONS,
    now_stamped,
)
from tests.servers import running_server

pytestmark = pytest.mark.interop

T0 = 1_750_000_000  # conftest.T0: the seed's timestamps
DETAIL_SCHEMA = {
    "agent": AgentSessionDetailSchema,
    "team": TeamSessionDetailSchema,
    "workflow": WorkflowSessionDetailSchema,
}
SESSION_KIND = {
    "sess-agent-1": "agent",
    "sess-agent-2": "agent",
    "sess-team-1": "team",
    "sess-team-2": "team",
    "sess-wf-1": "workflow",
    "sess-wf-2": "workflow",
}
DB_ID = "main"  # the server's id for its database (AGENTOS_SESSIONS_DB_ID)


# --- helpers ---------------------------------------------------------------------------------


def call(awaitable):
    """Run one of the client's async methods; the client's shared httpx pool closes with the loop."""

    async def closing():
        try:
            return await awaitable
        finally:
            await aclose_default_clients()

    return asyncio.run(closing())


def client_view(schema, body: dict) -> dict:
    """What the client makes of AgentOS's recorded ``body`` with ``schema``, as JSON; the
    timestamps the write set (recorded as ``"<now>"``) stay ``"<now>"``."""
    stamped = [key for key, value in body.items() if value == "<now>"]
    parsed = schema.model_validate({**body, **dict.fromkeys(stamped)}).model_dump(mode="json")
    return {**parsed, **dict.fromkeys(stamped, "<now>")}


def seen(result, started: float) -> dict:
    """The client's object as JSON, timestamps set since ``started`` as ``"<now>"``."""
    return now_stamped(result.model_dump(mode="json"), started)


def client_run(body: dict):
    """The run schema the client picks for a run body (agno/client/os.py, get_session_runs)."""
    if body.get("workflow_id") is not None:
        return WorkflowRunSchema.model_validate(body)
    if body.get("team_id") is not None:
        return TeamRunSchema.model_validate(body)
    return RunSchema.model_validate(body)


def agentos_runs(session_id: str) -> list:
    return [client_run(body) for body in AGENTOS[f"GET /sessions/{session_id}/runs"][1]]


def agentos_list(url: str) -> tuple[list[SessionSchema], dict]:
    """The client's page of sessions from AgentOS's recorded answer, and its meta (without the time)."""
    body = AGENTOS[f"GET {url}"][1]
    meta = {key: value for key, value in body["meta"].items() if key != "search_time_ms"}
    return [SessionSchema.from_dict(item) for item in body["data"]], meta


def meta_of(page) -> dict:
    meta = page.meta.model_dump()
    assert meta.pop("search_time_ms") >= 0
    return meta


def http_error(raised: pytest.ExceptionInfo) -> tuple[int, dict]:
    """Status and JSON body of the answer the client raised ``httpx.HTTPStatusError`` for."""
    response = raised.value.response
    return response.status_code, response.json()


def session_row(direct: DirectDatabase, session_id: str) -> dict | None:
    """The session's row in the sessions table, column name -> value (None if there is none)."""
    sessions = direct.models.sessions
    with direct.engine.connect() as connection:
        row = connection.execute(select(sessions).where(sessions.c.session_id == session_id)).one_or_none()
    return None if row is None else dict(row._mapping)


def run_rows(direct: DirectDatabase, session_id: str | None = None) -> list[tuple]:
    """(session_id, run_id, run_index, status) of the stored runs, of one session if given."""
    runs = direct.models.runs
    query = select(runs.c.session_id, runs.c.run_id, runs.c.run_index, runs.c.status)
    if session_id is not None:
        query = query.where(runs.c.session_id == session_id)
    with direct.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query.order_by(runs.c.session_id, runs.c.run_index))]


def session_ids(direct: DirectDatabase) -> list[str]:
    sessions = direct.models.sessions
    with direct.engine.connect() as connection:
        return list(connection.scalars(select(sessions.c.session_id).order_by(sessions.c.session_id)))


# --- fixtures --------------------------------------------------------------------------------
# One server for the module (starting one takes about two seconds); each test empties the tables.


@pytest.fixture(scope="module")
def shared_database(tmp_path_factory) -> DatabaseSettings:
    """The module's database: a SQLite file, or a fresh schema on PostgreSQL."""
    return fresh_database(tmp_path_factory.mktemp("agentos-client"))


@pytest.fixture(scope="module")
def server(shared_database, tmp_path_factory) -> Iterator[str]:
    """`agentos-sessions serve` on the module's database (its tables made on start); its URL."""
    with running_server(shared_database, tmp_path_factory.mktemp("server"), AGENTOS_SESSIONS_DB_ID=DB_ID) as url:
        yield url


@pytest.fixture(scope="module")
def direct(shared_database, server) -> Iterator[DirectDatabase]:
    """Straight access to the tables, to check what the server stored."""
    database = DirectDatabase(shared_database)
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def agno_db(shared_database, server) -> Iterator:
    """agno's SqliteDb or PostgresDb on the same database, once our server has made the tables."""
    db = agno_storage(shared_database)
    yield db
    db.db_engine.dispose()


@pytest.fixture
def api(server, direct) -> str:
    """Our server's URL, its tables emptied for this test."""
    with direct.unit_of_work() as db:
        db.execute(delete(direct.models.runs))
        db.execute(delete(direct.models.sessions))
    return server


@pytest.fixture
def agentos(api) -> AgentOSClient:
    """agno's AgentOSClient, pointed at our server."""
    return AgentOSClient(base_url=api)


@pytest.fixture
def seeded(agentos, agno_db, h):
    """The six sessions of conftest.seed_agno and their runs, written by agno itself."""
    h.seed_agno(agno_db)
    return agno_db


# --- create ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["agent", "team", "workflow"])
def test_create_session_returns_what_agentos_returns_and_stores_agnos_row(kind, agentos, direct):
    sent = CREATE_BODIES[kind]
    started = time.time()
    created = call(agentos.create_session(session_type=SessionType(kind), **sent))

    assert type(created) is DETAIL_SCHEMA[kind]
    assert seen(created, started) == client_view(DETAIL_SCHEMA[kind], AGENTOS[f"GET {DETAIL_URL[kind]}"][1])
    assert (created.session_id, created.session_name, created.session_state, created.metadata, created.user_id) == (
        sent["session_id"],
        sent["session_name"],
        sent["session_state"],
        sent["metadata"],
        sent["user_id"],
    )
    assert getattr(created, f"{kind}_id") == sent[f"{kind}_id"]

    row = session_row(direct, sent["session_id"])
    assert int(started) <= row["created_at"] == row["updated_at"] <= time.time()
    assert {key: value for key, value in row.items() if key not in ("created_at", "updated_at")} == {
        "session_id": sent["session_id"],
        "session_type": kind,
        "agent_id": sent.get("agent_id"),
        "team_id": sent.get("team_id"),
        "workflow_id": sent.get("workflow_id"),
        "user_id": sent["user_id"],
        "session_data": {"session_state": sent["session_state"], "session_name": sent["session_name"]},
        "agent_data": None,
        "team_data": None,
        "workflow_data": {} if kind == "workflow" else None,
        "metadata": sent["metadata"],
        "summary": None,
    }
    assert run_rows(direct, sent["session_id"]) == []

    # get_session reads the same session back, by its type and without one.
    assert call(agentos.get_session(sent["session_id"], session_type=SessionType(kind))) == created
    assert call(agentos.get_session(sent["session_id"])) == created


def test_create_session_with_defaults_and_an_existing_id(agentos, direct):
    started = time.time()
    minimal = call(agentos.create_session(session_id="new-agent-min"))
    assert seen(minimal, started) == client_view(AgentSessionDetailSchema, AGENTOS["GET /sessions/new-agent-min"][1])

    generated = call(agentos.create_session())  # no field at all: the server makes the id
    assert type(generated) is AgentSessionDetailSchema
    assert uuid.UUID(generated.session_id).version == 4
    assert seen(generated, started) == {
        **seen(minimal, started),
        "session_id": generated.session_id,
        "agent_session_id": generated.session_id,
    }
    assert session_ids(direct) == sorted(["new-agent-min", generated.session_id])
    assert session_row(direct, generated.session_id)["session_type"] == "agent"

    with pytest.raises(httpx.HTTPStatusError) as refused:
        call(agentos.create_session(session_id="new-agent-min", session_name="again"))
    assert http_error(refused) == (
        409,
        {"detail": "Session with id 'new-agent-min' already exists. Use PATCH /sessions/new-agent-min to update it."},
    )
    assert session_row(direct, "new-agent-min")["session_data"] is None


# --- list ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("session_type", "url"),
    [(None, "/sessions"), (SessionType.TEAM, "/sessions?type=team"), (SessionType.WORKFLOW, "/sessions?type=workflow")],
)
def test_get_sessions_is_agentos_page(session_type, url, seeded, agentos):
    page = call(agentos.get_sessions(session_type=session_type))
    sessions, meta = agentos_list(url)
    assert page.data == sessions
    assert meta_of(page) == meta


def test_get_sessions_filters_sorts_and_pages(seeded, agentos):
    def listed(**filters) -> tuple[list[str], dict]:
        page = call(agentos.get_sessions(**filters))
        return [session.session_id for session in page.data], meta_of(page)

    def meta(total: int, page: int = 1, limit: int = 20) -> dict:
        return {"page": page, "limit": limit, "total_pages": -(-total // limit), "total_count": total}

    assert listed(session_type=SessionType.AGENT) == (["sess-agent-2", "sess-agent-1"], meta(2))
    assert listed(component_id="agent-research") == (["sess-agent-2", "sess-agent-1"], meta(2))
    assert listed(session_type=SessionType.TEAM, component_id="team-writers") == (
        ["sess-team-2", "sess-team-1"],
        meta(2),
    )
    assert listed(component_id="agent-poet") == ([], meta(0))  # a member's id is not the session's
    assert listed(user_id="bob") == (["sess-wf-2", "sess-wf-1", "sess-agent-2"], meta(3))
    assert listed(user_id="bob", session_type=SessionType.WORKFLOW, component_id="wf-blog") == (
        ["sess-wf-2", "sess-wf-1"],
        meta(2),
    )
    assert listed(session_name="quiz") == (["sess-agent-1"], meta(1))  # in "Capitals Quiz ✓"
    assert listed(session_name="SEA") == (["sess-team-1"], meta(1))
    assert listed(user_id="nobody") == ([], meta(0))

    # Pages of two, oldest first, and one past the end.
    pages = [listed(limit=2, page=n, sort_order="asc") for n in (1, 2, 3, 4)]
    assert pages == [
        (["sess-agent-1", "sess-agent-2"], meta(6, 1, 2)),
        (["sess-team-1", "sess-wf-1"], meta(6, 2, 2)),
        (["sess-team-2", "sess-wf-2"], meta(6, 3, 2)),
        ([], meta(6, 4, 2)),
    ]
    assert listed(limit=4, page=2) == (["sess-agent-2", "sess-agent-1"], meta(6, 2, 4))

    # A rename makes sess-agent-1 the most recently updated.
    call(agentos.rename_session("sess-agent-1", "Capitals, renamed"))
    assert listed(sort_by="updated_at", sort_order="desc", limit=3) == (
        ["sess-agent-1", "sess-wf-2", "sess-team-2"],
        meta(6, 1, 3),
    )
    assert listed(sort_by="updated_at", sort_order="asc", limit=3) == (
        ["sess-agent-2", "sess-team-1", "sess-wf-1"],
        meta(6, 1, 3),
    )
    page = call(agentos.get_sessions(session_name="renamed"))
    assert [(s.session_id, s.session_name, s.session_type, s.agent_id, s.user_id) for s in page.data] == [
        ("sess-agent-1", "Capitals, renamed", "agent", "agent-research", "alice")
    ]


# --- get, runs, previews, one run ------------------------------------------------------------


@pytest.mark.parametrize("session_id", SESSIONS)
def test_get_session_and_its_runs_are_agentos_answers(session_id, seeded, agentos):
    kind = SESSION_KIND[session_id]
    expected = DETAIL_SCHEMA[kind].model_validate(AGENTOS[f"GET /sessions/{session_id}"][1])
    assert call(agentos.get_session(session_id)) == expected
    assert call(agentos.get_session(session_id, session_type=SessionType(kind))) == expected

    runs = call(agentos.get_session_runs(session_id))
    assert runs == agentos_runs(session_id)
    assert call(agentos.get_session_runs(session_id, session_type=SessionType(kind))) == runs

    previews = [
        SessionRunPreviewSchema.model_validate(body) for body in AGENTOS[f"GET /sessions/{session_id}/run-previews"][1]
    ]
    assert agentos.get_session_run_previews(session_id) == previews  # the client's one sync method
    assert call(agentos.aget_session_run_previews(session_id, session_type=SessionType(kind))) == previews
    assert [preview.run_id for preview in previews] == [run.run_id for run in runs]


def test_runs_are_typed_and_filtered_as_the_client_expects(seeded, agentos):
    runs = call(agentos.get_session_runs("sess-team-1", session_type=SessionType.TEAM))
    assert [(type(run), run.run_id, run.parent_run_id, run.status, run.run_input, run.content) for run in runs] == [
        (RunSchema, "run-t1-0-member", "run-t1-0", "COMPLETED", "Draft a haiku", "Waves fold into foam"),
        (TeamRunSchema, "run-t1-0", "", "COMPLETED", "Write a haiku about the sea", "Waves fold into foam / ..."),
    ]
    assert runs[1].team_id == "team-writers"
    assert runs[1].metrics["total_tokens"] == 45
    [workflow_run] = call(agentos.get_session_runs("sess-wf-2", session_type=SessionType.WORKFLOW, status=["error"]))
    assert (type(workflow_run), workflow_run.run_id, workflow_run.workflow_id, workflow_run.status) == (
        WorkflowRunSchema,
        "run-w2-0",
        "wf-blog",
        "ERROR",
    )
    assert call(agentos.get_session_runs("sess-wf-2", status=["COMPLETED"])) == []
    assert [run.run_id for run in call(agentos.get_session_runs("sess-agent-1", created_after=T0 + 15))] == ["run-a1-1"]
    assert [run.run_id for run in call(agentos.get_session_runs("sess-agent-1", created_before=T0 + 15))] == [
        "run-a1-0"
    ]
    assert [run.run_id for run in call(agentos.get_session_runs("sess-agent-1", user_id="alice"))] == [
        "run-a1-0",
        "run-a1-1",
    ]
    with pytest.raises(httpx.HTTPStatusError) as other_user:
        call(agentos.get_session_runs("sess-agent-1", user_id="bob"))
    assert http_error(other_user) == (404, {"detail": "Session with ID sess-agent-1 not found"})


@pytest.mark.parametrize(
    ("session_id", "run_id", "schema"),
    [
        ("sess-agent-1", "run-a1-1", RunSchema),
        ("sess-team-1", "run-t1-0", TeamRunSchema),
        ("sess-team-1", "run-t1-0-member", RunSchema),
        ("sess-wf-1", "run-w1-0", WorkflowRunSchema),
    ],
)
def test_get_session_run_is_agentos_answer(session_id, run_id, schema, seeded, agentos):
    run = call(agentos.get_session_run(session_id, run_id))
    assert type(run) is schema
    assert run == schema.model_validate(AGENTOS[f"GET /sessions/{session_id}/runs/{run_id}"][1])
    assert run.run_id == run_id
    kind = SessionType(SESSION_KIND[session_id])
    assert call(agentos.get_session_run(session_id, run_id, session_type=kind)) == run


def test_unknown_session_and_run_are_404s(seeded, agentos):
    with pytest.raises(httpx.HTTPStatusError) as no_session:
        call(agentos.get_session("no-such-session"))
    assert http_error(no_session) == (404, {"detail": "Session with id 'no-such-session' not found"})
    with pytest.raises(httpx.HTTPStatusError) as no_runs:
        call(agentos.get_session_runs("no-such-session"))
    assert http_error(no_runs) == (404, {"detail": "Session with ID no-such-session not found"})
    with pytest.raises(httpx.HTTPStatusError) as no_run:
        call(agentos.get_session_run("sess-agent-1", "run-a2-0"))  # another session's run
    assert http_error(no_run) == (404, {"detail": "Run with ID run-a2-0 not found in session sess-agent-1"})


def test_db_id_and_table_name_the_database_as_in_agentos(seeded, agentos, direct):
    named = {"db_id": DB_ID, "table": "agno_sessions"}
    page = call(agentos.get_sessions(session_type=SessionType.TEAM, **named))
    assert page.data == agentos_list("/sessions?type=team")[0]
    assert call(agentos.get_session("sess-agent-1", **named)) == AgentSessionDetailSchema.model_validate(
        AGENTOS["GET /sessions/sess-agent-1"][1]
    )
    assert call(agentos.get_session_runs("sess-agent-1", **named)) == agentos_runs("sess-agent-1")
    assert call(agentos.get_session_run("sess-agent-1", "run-a1-1", **named)).run_id == "run-a1-1"
    assert agentos.get_session_run_previews("sess-agent-1", **named)[1].run_id == "run-a1-1"
    assert call(agentos.rename_session("sess-agent-1", "Named", **named)).session_name == "Named"
    assert call(agentos.update_session("sess-agent-1", metadata={"m": 1}, **named)).metadata == {"m": 1}
    created = call(agentos.create_session(session_id="in-main", db_id=DB_ID))
    assert created.session_id == "in-main"
    call(agentos.delete_session("in-main", **named))
    call(agentos.delete_sessions(["sess-wf-2"], [SessionType.WORKFLOW], **named))
    assert session_ids(direct) == ["sess-agent-1", "sess-agent-2", "sess-team-1", "sess-team-2", "sess-wf-1"]

    with pytest.raises(httpx.HTTPStatusError) as unknown_db:
        call(agentos.get_sessions(db_id="other"))
    assert http_error(unknown_db) == (404, {"detail": "No database found with id 'other'"})
    with pytest.raises(httpx.HTTPStatusError) as unknown_table:
        call(agentos.get_session("sess-agent-1", db_id=DB_ID, table="agno_memories"))
    assert http_error(unknown_table) == (404, {"detail": "No database with id 'main' has table 'agno_memories'"})
    with pytest.raises(httpx.HTTPStatusError) as table_alone:
        call(agentos.delete_session("sess-agent-1", table="agno_sessions"))
    assert http_error(table_alone) == (400, {"detail": "The db_id query parameter is required when passing a table"})
    assert session_row(direct, "sess-agent-1") is not None


# --- rename, update --------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "session_id", "url", "name"), RENAMES)
def test_rename_session_is_agentos_answer_and_renames_the_row(kind, session_id, url, name, seeded, agentos, direct):
    before = session_row(direct, session_id)
    runs_before = run_rows(direct, session_id)
    session_type = None if kind == "agent" else SessionType(kind)  # the recorded request's query
    started = time.time()
    renamed = call(agentos.rename_session(session_id, name, session_type=session_type))

    assert type(renamed) is DETAIL_SCHEMA[kind]
    assert seen(renamed, started) == client_view(DETAIL_SCHEMA[kind], AGENTOS[f"POST {url}"][1])
    assert renamed.session_name == name
    after = session_row(direct, session_id)
    assert int(started) <= after["updated_at"] <= time.time()
    assert after == {
        **before,
        "session_data": {**(before["session_data"] or {}), "session_name": name},
        "updated_at": after["updated_at"],
    }
    assert run_rows(direct, session_id) == runs_before


@pytest.mark.parametrize(("kind", "session_id", "url", "patch"), PATCHES)
def test_update_session_is_agentos_answer_and_updates_the_row(kind, session_id, url, patch, seeded, agentos, direct):
    before = session_row(direct, session_id)
    runs_before = run_rows(direct, session_id)
    session_type = None if kind == "agent" else SessionType(kind)
    started = time.time()
    updated = call(agentos.update_session(session_id, session_type=session_type, **patch))

    assert type(updated) is DETAIL_SCHEMA[kind]
    assert seen(updated, started) == client_view(DETAIL_SCHEMA[kind], AGENTOS[f"PATCH {url}"][1])
    assert (updated.session_state, updated.metadata) == (patch["session_state"], patch["metadata"])
    after = session_row(direct, session_id)
    assert int(started) <= after["updated_at"] <= time.time()
    expected_summary = before["summary"]
    if "summary" in patch:  # agno's SessionSummary.to_dict() spelling of the time
        expected_summary = {**patch["summary"], "updated_at": "2025-10-21T14:30:00+00:00"}
    assert after == {
        **before,
        "session_data": {**before["session_data"], "session_state": patch["session_state"]},
        "metadata": patch["metadata"],
        "summary": expected_summary,
        "updated_at": after["updated_at"],
    }
    assert run_rows(direct, session_id) == runs_before


def test_update_session_name_alone(seeded, agentos, direct):
    before = session_row(direct, "sess-wf-2")
    updated = call(agentos.update_session("sess-wf-2", session_type=SessionType.WORKFLOW, session_name="WAL, again"))
    assert (type(updated), updated.session_name, updated.session_data, updated.metadata) == (
        WorkflowSessionDetailSchema,
        "WAL, again",
        {"session_name": "WAL, again"},
        {},
    )
    after = session_row(direct, "sess-wf-2")
    assert after == {**before, "session_data": {"session_name": "WAL, again"}, "updated_at": after["updated_at"]}
    assert call(agentos.get_session("sess-wf-2")) == updated


# --- delete ----------------------------------------------------------------------------------


def test_delete_session_and_sessions_remove_rows_and_runs(seeded, agentos, direct):
    assert len(run_rows(direct)) == 10

    assert call(agentos.delete_session("sess-agent-2")) is None
    assert session_row(direct, "sess-agent-2") is None
    assert run_rows(direct, "sess-agent-2") == []
    with pytest.raises(httpx.HTTPStatusError) as gone:
        call(agentos.get_session("sess-agent-2"))
    assert http_error(gone) == (404, {"detail": "Session with id 'sess-agent-2' not found"})

    assert call(agentos.delete_sessions(["sess-team-1", "sess-wf-1"], [SessionType.TEAM, SessionType.WORKFLOW])) is None
    assert call(agentos.delete_session("no-such-session")) is None  # an absent session: 204, as AgentOS

    assert session_ids(direct) == ["sess-agent-1", "sess-team-2", "sess-wf-2"]
    assert run_rows(direct) == [
        ("sess-agent-1", "run-a1-0", 0, "COMPLETED"),
        ("sess-agent-1", "run-a1-1", 1, "COMPLETED"),
        ("sess-team-2", "run-t2-0-member", 0, "COMPLETED"),
        ("sess-team-2", "run-t2-0", 1, "COMPLETED"),
        ("sess-wf-2", "run-w2-0", 0, "ERROR"),
    ]
    page = call(agentos.get_sessions())
    assert ([s.session_id for s in page.data], meta_of(page)) == (
        ["sess-wf-2", "sess-team-2", "sess-agent-1"],
        {"page": 1, "limit": 20, "total_pages": 1, "total_count": 3},
    )


def test_delete_session_of_another_user_deletes_nothing_and_says_so(seeded, agentos, direct):
    """docs/compatibility.md: AgentOS answers 204 and keeps the session; we answer 404."""
    before = direct.snapshot()
    with pytest.raises(httpx.HTTPStatusError) as refused:
        call(agentos.delete_session("sess-agent-1", user_id="bob"))
    assert http_error(refused) == (404, {"detail": "Session with id 'sess-agent-1' not found"})
    call(agentos.delete_sessions(["sess-agent-1"], [SessionType.AGENT], user_id="bob"))
    assert direct.snapshot() == before

    assert call(agentos.delete_session("sess-agent-1", user_id="alice")) is None
    assert session_row(direct, "sess-agent-1") is None
    assert run_rows(direct, "sess-agent-1") == []


# --- end to end: an agno Agent continues a session created through our API ------------------


REPLIES = {
    "Which city am I in?": "You are in {city}.",
    "Plan my day there.": "Morning walk in {city}, then lunch by the river.",
}


def reply(messages: list[dict]) -> str:
    """The stub model's answer: it names the city only if the session state in its prompt does."""
    instructions = "".join(m["content"] for m in messages if m["role"] in ("system", "developer"))
    city = "Lyon" if "'city': 'Lyon'" in instructions else "an unknown city"
    return REPLIES[messages[-1]["content"]].format(city=city)


def test_agent_continues_a_session_created_through_the_api(shared_database, api, direct, loopback_only, monkeypatch):
    monkeypatch.setenv("AGNO_TELEMETRY", "false")
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    started = time.time()
    created = httpx.post(
        f"{api}/sessions",
        json={
            "session_id": "trip-1",
            "session_name": "Trip",
            "session_state": {"city": "Lyon"},
            "metadata": {"channel": "web"},
            "user_id": "alice",
            "agent_id": "travel-agent",
        },
    )
    assert (created.status_code, now_stamped(created.json(), started)) == (
        201,
        {
            "user_id": "alice",
            "agent_session_id": "trip-1",
            "session_id": "trip-1",
            "session_name": "Trip",
            "session_state": {"city": "Lyon"},
            "agent_id": "travel-agent",
            "metrics": {},
            "metadata": {"channel": "web"},
            "chat_history": [],
            "created_at": "<now>",
            "updated_at": "<now>",
        },
    )

    storage = agno_storage(shared_database)
    with chat_completions_stub(reply) as stub:
        agent = Agent(
            id="travel-agent",
            name="Travel Agent",
            model=OpenAIChat(id="stub-model", base_url=stub.base_url, api_key="test"),
            db=storage,
            add_session_state_to_context=True,
            session_id="trip-1",
            user_id="alice",
            telemetry=False,
        )
        first = agent.run("Which city am I in?")
        streamed = list(agent.run("Plan my day there.", stream=True))
    storage.db_engine.dispose()
    second_run_id = {event.run_id for event in streamed}.pop()
    assert loopback_only == []

    # The agent saw the state made through our API: in its prompt, and so in the model's answers.
    assert (first.status.value, first.content) == ("COMPLETED", "You are in Lyon.")
    assert (
        "".join(event.content for event in streamed if event.content)
        == "Morning walk in Lyon, then lunch by the river."
    )
    assert [(request["model"], request.get("stream"), request.get("stream_options")) for request in stub.requests] == [
        ("stub-model", None, None),
        ("stub-model", True, {"include_usage": True}),
    ]
    for request, run_id, question in zip(stub.requests, [first.run_id, second_run_id], REPLIES, strict=True):
        assert request["messages"] == [
            {
                "role": "developer",
                "content": "<session_state>\n{'city': 'Lyon', 'current_user_id': 'alice', "
                f"'current_session_id': 'trip-1', 'current_run_id': '{run_id}'}}\n</session_state>",
            },
            {"role": "user", "content": question},
        ]

    # Both runs are served by our API, as the agent stored them.
    answers = [first.content, "Morning walk in Lyon, then lunch by the river."]
    runs = httpx.get(f"{api}/sessions/trip-1/runs")
    assert runs.status_code == 200
    assert [
        (run["run_id"], run["agent_id"], run["user_id"], run["status"], run["run_input"], run["content"])
        for run in runs.json()
    ] == [
        (first.run_id, "travel-agent", "alice", "COMPLETED", "Which city am I in?", answers[0]),
        (second_run_id, "travel-agent", "alice", "COMPLETED", "Plan my day there.", answers[1]),
    ]
    for run, question, answer in zip(runs.json(), REPLIES, answers, strict=True):
        assert [(m["role"], m["content"]) for m in run["messages"]][1:] == [("user", question), ("assistant", answer)]
        assert run["messages"][0]["role"] == "system"
        assert "'city': 'Lyon'" in run["messages"][0]["content"]
        assert run["session_state"] == {"city": "Lyon"}
        tokens = {key: run["metrics"][key] for key in ("input_tokens", "output_tokens", "total_tokens")}
        assert tokens == {
            "input_tokens": USAGE["prompt_tokens"],
            "output_tokens": USAGE["completion_tokens"],
            "total_tokens": USAGE["total_tokens"],
        }
    one = httpx.get(f"{api}/sessions/trip-1/runs/{second_run_id}")
    assert one.status_code == 200
    # The same run; as AgentOS, one run is sent with its nulls, the list without them.
    assert {key: value for key, value in one.json().items() if value is not None} == runs.json()[1]
    # ... and so to agno's client.
    client_runs = call(AgentOSClient(base_url=api).get_session_runs("trip-1"))
    assert [(type(run), run.run_id, run.run_input, run.content) for run in client_runs] == [
        (RunSchema, first.run_id, "Which city am I in?", answers[0]),
        (RunSchema, second_run_id, "Plan my day there.", answers[1]),
    ]

    # The session keeps what our API created, and its chat history is the two turns.
    session = httpx.get(f"{api}/sessions/trip-1")
    assert session.status_code == 200
    body = session.json()
    assert (body["session_id"], body["session_name"], body["session_state"], body["user_id"], body["agent_id"]) == (
        "trip-1",
        "Trip",
        {"city": "Lyon"},
        "alice",
        "travel-agent",
    )
    assert body["metadata"] == {"channel": "web"}
    assert body["total_tokens"] == 98
    assert [(m["role"], m["content"]) for m in body["chat_history"]] == [
        ("user", "Which city am I in?"),
        ("assistant", answers[0]),
        ("user", "Plan my day there."),
        ("assistant", answers[1]),
    ]
    assert run_rows(direct, "trip-1") == [
        ("trip-1", first.run_id, 0, "COMPLETED"),
        ("trip-1", second_run_id, 1, "COMPLETED"),
    ]
    row = session_row(direct, "trip-1")
    assert (row["session_type"], row["agent_id"], row["user_id"], row["metadata"]) == (
        "agent",
        "travel-agent",
        "alice",
        {"channel": "web"},
    )
    assert (row["session_data"]["session_name"], row["session_data"]["session_state"]) == ("Trip", {"city": "Lyon"})


# --- GET /config, and AgentOS itself on a RemoteDb built from it --------------------------------


def test_the_client_reads_our_config_and_builds_a_remote_db_from_it(agentos):
    config = agentos.get_config()
    assert (config.databases, config.agents, config.teams, config.workflows) == ([DB_ID], [], [], [])
    assert [(db.db_id, db.tables) for db in config.session.dbs] == [(DB_ID, ["agno_sessions"])]
    assert (config.memory, config.metrics, config.knowledge, config.evals, config.traces) == (None,) * 5
    remote = RemoteDb.from_config(DB_ID, agentos, config)
    assert (remote.id, remote.session_table_name) == (DB_ID, "agno_sessions")


def test_agentos_on_a_remote_db_serves_every_sessions_route_through_ours(agentos, seeded, direct, api):
    """An AgentOS 3.1.10 app whose db is a RemoteDb made from our /config: each of its sessions
    routes goes through our server, and what it answers is what we hold."""
    from agno.os import AgentOS
    from starlette.testclient import TestClient

    remote = RemoteDb.from_config(DB_ID, agentos, agentos.get_config())
    app = AgentOS(db=remote, telemetry=False).get_app()
    on = {"db_id": DB_ID}
    with TestClient(app) as os_client, httpx.Client(base_url=api) as ours:
        listed = os_client.get(
            "/sessions", params={**on, "type": "agent", "sort_by": "session_id", "sort_order": "asc"}
        )
        assert listed.status_code == 200, listed.text
        assert [s["session_id"] for s in listed.json()["data"]] == ["sess-agent-1", "sess-agent-2"]

        got = os_client.get("/sessions/sess-agent-1", params={**on, "type": "agent"})
        assert got.status_code == 200, got.text
        mine = ours.get("/sessions/sess-agent-1", params={"type": "agent"}).json()
        for key in ("session_id", "session_name", "session_state", "metadata", "user_id", "agent_id"):
            assert got.json()[key] == mine[key], key

        runs = os_client.get("/sessions/sess-agent-1/runs", params={**on, "type": "agent"})
        assert runs.status_code == 200, runs.text
        assert [run["run_id"] for run in runs.json()] == ["run-a1-0", "run-a1-1"]

        created = os_client.post(
            "/sessions", params={**on, "type": "agent"}, json={"session_id": "via-os", "session_name": "Via AgentOS"}
        )
        assert created.status_code == 201, created.text
        renamed = os_client.post(
            "/sessions/via-os/rename", params={**on, "type": "agent"}, json={"session_name": "Renamed"}
        )
        assert renamed.status_code == 200, renamed.text
        updated = os_client.patch(
            "/sessions/via-os", params={**on, "type": "agent"}, json={"session_state": {"step": 2}}
        )
        assert updated.status_code == 200, updated.text
        row = session_row(direct, "via-os")
        assert row["session_data"]["session_name"] == "Renamed"
        assert row["session_data"]["session_state"] == {"step": 2}

        one_run = os_client.get("/sessions/sess-agent-1/runs/run-a1-1", params={**on, "type": "agent"})
        assert (one_run.status_code, one_run.json()["run_id"]) == (200, "run-a1-1"), one_run.text
        previews = os_client.get("/sessions/sess-agent-1/run-previews", params={**on, "type": "agent"})
        assert previews.status_code == 200, previews.text
        assert previews.json() == ours.get("/sessions/sess-agent-1/run-previews", params={"type": "agent"}).json()

        deleted = os_client.delete("/sessions/via-os", params=on)
        assert deleted.status_code == 204, deleted.text
        assert "via-os" not in session_ids(direct)
        body = {"session_ids": ["sess-team-1", "sess-wf-1"], "session_types": ["team", "workflow"]}
        deleted_many = os_client.request("DELETE", "/sessions", params=on, json=body)
        assert deleted_many.status_code == 204, deleted_many.text
        assert session_ids(direct) == ["sess-agent-1", "sess-agent-2", "sess-team-2", "sess-wf-2"]
