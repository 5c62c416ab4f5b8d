"""Shared fixtures for the agno interop tests: one SQLite file, agno's SqliteDb and our app on it.

These tests need agno==3.1.10 (the ``interop`` extra, a test dependency only); the default tox
env installs it. The seed below writes sessions and runs exactly the way agno 3.1.10
persists them: ``SqliteDb.upsert_session(session)`` for the session row (which no longer writes
runs), then ``SqliteDb.upsert_run(run, session_id, user_id, run_index=i)`` for each run
(agno/agents/base.py, agno/team/_storage.py). Every id and timestamp is fixed, so the expected
response bodies can be written out literally.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from agno.db.sqlite import SqliteDb
from agno.metrics import ModelMetrics, RunMetrics, SessionMetrics
from agno.models.message import Message
from agno.run.agent import RunInput, RunOutput
from agno.run.base import RunStatus
from agno.run.team import TeamRunInput, TeamRunOutput
from agno.run.workflow import WorkflowRunOutput
from agno.session import AgentSession, TeamSession, WorkflowSession
from agno.session.summary import SessionSummary

T0 = 1_750_000_000  # 2025-06-15T15:06:40Z


# --- seeding through agno's own API ----------------------------------------------------------


def run_metrics(inp: int, out: int, model_id: str = "gpt-4o-mini") -> RunMetrics:
    return RunMetrics(
        input_tokens=inp,
        output_tokens=out,
        total_tokens=inp + out,
        duration=1.25,
        time_to_first_token=0.4,
        details={
            "model": [
                ModelMetrics(
                    id=model_id,
                    provider="OpenAI",
                    input_tokens=inp,
                    output_tokens=out,
                    total_tokens=inp + out,
                )
            ]
        },
    )


def agent_run(
    run_id,
    session_id,
    user_id,
    question,
    answer,
    created_at,
    agent_id="agent-research",
    status=None,
):
    return RunOutput(
        run_id=run_id,
        agent_id=agent_id,
        agent_name="Research Agent",
        session_id=session_id,
        user_id=user_id,
        input=RunInput(input_content=question),
        content=answer,
        model="gpt-4o-mini",
        model_provider="OpenAI",
        messages=[
            Message(
                id=f"{run_id}-m0",
                role="system",
                content="You are a helpful research agent.",
                created_at=created_at,
            ),
            Message(id=f"{run_id}-m1", role="user", content=question, created_at=created_at),
            Message(id=f"{run_id}-m2", role="assistant", content=answer, created_at=created_at + 1),
        ],
        metrics=run_metrics(20, 12),
        created_at=created_at,
        status=status or RunStatus.completed,
    )


def seed_agno(db: SqliteDb) -> None:
    """Write 6 sessions and their runs with agno's storage API (see the table in each block)."""
    # sess-agent-1 (alice): named, state, metadata, summary, metrics; runs run-a1-0, run-a1-1.
    r1 = agent_run("run-a1-0", "sess-agent-1", "alice", "What is the capital of France?", "Paris.", T0 + 10)
    r2 = agent_run("run-a1-1", "sess-agent-1", "alice", "And of Germany? (Größe ✓)", "Berlin — ✓", T0 + 20)
    s1 = AgentSession(
        session_id="sess-agent-1",
        agent_id="agent-research",
        user_id="alice",
        agent_data={"name": "Research Agent", "agent_id": "agent-research"},
        session_data={
            "session_name": "Capitals Quiz ✓",
            "session_state": {"counter": 2, "topics": ["geo"]},
            "session_metrics": SessionMetrics(input_tokens=40, output_tokens=24, total_tokens=64).to_dict(),
        },
        metadata={"source": "seed", "tier": "gold"},
        summary=SessionSummary(
            summary="User asked about capitals.",
            topics=["geography"],
            updated_at=datetime(2025, 6, 15, 12, 0, 0),
        ),
        created_at=T0,
        runs=[r1, r2],
    )
    db.upsert_session(s1)
    for i, run in enumerate(s1.runs):
        db.upsert_run(run=run, session_id=s1.session_id, user_id=s1.user_id, run_index=i)

    # sess-agent-2 (bob): no session_name (derived from the first user message), no metadata.
    r3 = agent_run("run-a2-0", "sess-agent-2", "bob", "Hello there", "Hi Bob!", T0 + 110)
    r4 = agent_run("run-a2-1", "sess-agent-2", "bob", "Second question", "Second answer", T0 + 120)
    s2 = AgentSession(
        session_id="sess-agent-2",
        agent_id="agent-research",
        user_id="bob",
        agent_data={"name": "Research Agent", "agent_id": "agent-research"},
        session_data={"session_state": {"mood": "curious"}},
        metadata=None,
        created_at=T0 + 100,
        runs=[r3, r4],
    )
    db.upsert_session(s2)
    for i, run in enumerate(s2.runs):
        db.upsert_run(run=run, session_id=s2.session_id, user_id=s2.user_id, run_index=i)

    # sess-team-1 (alice): named; member run (index 0, parent_run_id) + team run (index 1).
    team_run = team_run_output(
        "run-t1-0",
        "sess-team-1",
        "Write a haiku about the sea",
        "Waves fold into foam / ...",
        T0 + 210,
    )
    member_run = agent_run(
        "run-t1-0-member",
        "sess-team-1",
        "alice",
        "Draft a haiku",
        "Waves fold into foam",
        T0 + 211,
        agent_id="agent-poet",
    )
    member_run.parent_run_id = "run-t1-0"
    team_run.member_responses = [member_run]
    s3 = TeamSession(
        session_id="sess-team-1",
        team_id="team-writers",
        user_id="alice",
        team_data={"name": "Writers Team", "team_id": "team-writers"},
        session_data={"session_name": "Sea haiku", "session_state": {"drafts": 1}},
        metadata={"source": "seed"},
        summary=SessionSummary(summary="A haiku was written."),
        created_at=T0 + 200,
        runs=[member_run, team_run],
    )
    db.upsert_session(s3)
    db.upsert_run(run=member_run, session_id=s3.session_id, user_id=s3.user_id, run_index=0)
    db.upsert_run(run=team_run, session_id=s3.session_id, user_id=s3.user_id, run_index=1)

    # sess-team-2 (carol): no name; the member run comes first, so the name must skip it.
    team_run2 = team_run_output("run-t2-0", "sess-team-2", "Plan a trip to Rome", "Day 1: Colosseum", T0 + 410)
    member_run2 = agent_run(
        "run-t2-0-member",
        "sess-team-2",
        "carol",
        "Find hotels",
        "Hotel list",
        T0 + 411,
        agent_id="agent-scout",
    )
    member_run2.parent_run_id = "run-t2-0"
    s5 = TeamSession(
        session_id="sess-team-2",
        team_id="team-writers",
        user_id="carol",
        team_data={"name": "Writers Team", "team_id": "team-writers"},
        session_data={"session_state": {}},
        created_at=T0 + 400,
        runs=[member_run2, team_run2],
    )
    db.upsert_session(s5)
    db.upsert_run(run=member_run2, session_id=s5.session_id, user_id=s5.user_id, run_index=0)
    db.upsert_run(run=team_run2, session_id=s5.session_id, user_id=s5.user_id, run_index=1)

    # sess-wf-1 (bob): named workflow session with one WorkflowRunOutput.
    wf_run = WorkflowRunOutput(
        run_id="run-w1-0",
        workflow_id="wf-blog",
        workflow_name="Blog Pipeline",
        session_id="sess-wf-1",
        user_id="bob",
        input="Write a post about SQLite",
        content="# SQLite\nSQLite is ...",
        created_at=T0 + 310,
        status=RunStatus.completed,
    )
    s4 = WorkflowSession(
        session_id="sess-wf-1",
        workflow_id="wf-blog",
        workflow_name="Blog Pipeline",
        user_id="bob",
        session_data={"session_name": "SQLite blog", "session_state": {"step": "done"}},
        workflow_data={"name": "Blog Pipeline", "workflow_id": "wf-blog"},
        metadata={"source": "seed"},
        created_at=T0 + 300,
        runs=[wf_run],
    )
    db.upsert_session(s4)
    db.upsert_run(run=wf_run, session_id=s4.session_id, user_id=s4.user_id, run_index=0)

    # sess-wf-2 (bob): unnamed workflow session; its name is the first run's input.
    wf_run2 = WorkflowRunOutput(
        run_id="run-w2-0",
        workflow_id="wf-blog",
        workflow_name="Blog Pipeline",
        session_id="sess-wf-2",
        user_id="bob",
        input="Write a post about WAL",
        content="# WAL",
        created_at=T0 + 510,
        status=RunStatus.error,
    )
    s6 = WorkflowSession(
        session_id="sess-wf-2",
        workflow_id="wf-blog",
        user_id="bob",
        session_data=None,
        workflow_data={"name": "Blog Pipeline", "workflow_id": "wf-blog"},
        created_at=T0 + 500,
        runs=[wf_run2],
    )
    db.upsert_session(s6)
    db.upsert_run(run=wf_run2, session_id=s6.session_id, user_id=s6.user_id, run_index=0)


def team_run_output(run_id, session_id, question, answer, created_at) -> TeamRunOutput:
    user = {"sess-team-1": "alice", "sess-team-2": "carol"}[session_id]
    return TeamRunOutput(
        run_id=run_id,
        team_id="team-writers",
        team_name="Writers Team",
        session_id=session_id,
        user_id=user,
        input=TeamRunInput(input_content=question),
        content=answer,
        model="gpt-4o",
        model_provider="OpenAI",
        messages=[
            Message(id=f"{run_id}-m0", role="user", content=question, created_at=created_at),
            Message(id=f"{run_id}-m1", role="assistant", content=answer, created_at=created_at + 2),
        ],
        metrics=run_metrics(30, 15, "gpt-4o"),
        created_at=created_at,
        status=RunStatus.completed,
    )


# --- raw SQLite helpers ----------------------------------------------------------------------


def schema_dump(db_file: Path) -> list[tuple]:
    """Every object of the file as (type, name, tbl_name, sql), in a stable order."""
    with contextlib.closing(sqlite3.connect(db_file)) as con:
        return con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()


def query(db_file: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(db_file)) as con:
        return con.execute(sql, params).fetchall()


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    return tmp_path / "agno.db"


@pytest.fixture
def agno_db(db_file: Path) -> Iterator[SqliteDb]:
    db = SqliteDb(db_file=str(db_file), id="main")
    yield db
    db.db_engine.dispose()


@pytest.fixture
def seeded(agno_db: SqliteDb) -> SqliteDb:
    seed_agno(agno_db)
    return agno_db


@contextlib.contextmanager
def serve(db_file: Path):
    """Our app on ``db_file``, lifespan running (missing tables are created on start)."""
    from starlette.testclient import TestClient

    from agentos_sessions.app import create_app
    from agentos_sessions.settings import DatabaseSettings, Settings

    app = create_app(Settings(databases={"main": DatabaseSettings(f"sqlite:///{db_file}")}))
    with TestClient(app) as client:
        yield client


@pytest.fixture
def client(db_file: Path):
    with serve(db_file) as c:
        yield c


@pytest.fixture
def h():
    """The helpers above, for the test module (conftest is not importable as a module)."""
    import types

    return types.SimpleNamespace(
        T0=T0,
        agent_run=agent_run,
        query=query,
        schema_dump=schema_dump,
        seed_agno=seed_agno,
        serve=serve,
    )


@pytest.fixture
def loopback_only(monkeypatch) -> list:
    """No network for this process beyond loopback: other connections and name look-ups fail,
    and are listed for the test to check. Proxies are cleared, so loopback stays direct."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    attempts: list = []

    def is_loopback(host) -> bool:
        if host in ("localhost", "localhost."):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def guarded(original):
        def connect(sock, address, *args):
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(address[0]):
                attempts.append(("connect", address[0]))
                raise ConnectionRefusedError(f"no network in this test: {address[0]}")
            return original(sock, address, *args)

        return connect

    getaddrinfo = socket.getaddrinfo

    def guarded_getaddrinfo(host, *args, **kwargs):
        if host is not None and not is_loopback(host if isinstance(host, str) else host.decode()):
            attempts.append(("getaddrinfo", host))
            raise socket.gaierror(socket.EAI_NONAME, f"no network in this test: {host}")
        return getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guarded(socket.socket.connect_ex))
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    return attempts
