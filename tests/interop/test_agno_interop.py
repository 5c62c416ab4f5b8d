"""Interop with agno 3.1.10 itself: agno's SqliteDb and our app share one SQLite file.

Each test proves one direction of compatibility on the same database file:

* what our API writes, agno's ``SqliteDb`` reads back (create, rename, update, delete);
* what agno writes (``upsert_session`` + ``upsert_run``), our API serves exactly as AgentOS does;
* a file agno created is used as-is, and a file we create is byte-identical in DDL to agno's.

The expected responses (``agentos_3_1_10_expected.json``, keyed by request) are what the real
AgentOS 3.1.10 (``AgentOS(db=SqliteDb(db_file=...)).get_app()``) answered for the same requests
on the same seed (``conftest.seed_agno``); ``"<now>"`` stands for a timestamp set by the write.
"""

from __future__ import annotations

import json
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest
from agno.db.base import SessionType
from agno.db.sqlite import SqliteDb
from agno.session import AgentSession, TeamSession, WorkflowSession
from sqlalchemy.exc import SADeprecationWarning

from agentos_sessions.persistence import schema

pytestmark = pytest.mark.interop

# "METHOD /path" -> (status, body), as AgentOS 3.1.10 answered on the seed.
AGENTOS = {
    request: (expected["status"], expected["body"])
    for request, expected in json.loads(
        Path(__file__).with_name("agentos_3_1_10_expected.json").read_text(encoding="utf-8")
    ).items()
}

SESSION_CLASS = {"agent": AgentSession, "team": TeamSession, "workflow": WorkflowSession}
SESSION_TYPE = {
    "agent": SessionType.AGENT,
    "team": SessionType.TEAM,
    "workflow": SessionType.WORKFLOW,
}


def now_stamped(body, started: float):
    """``body`` with every timestamp written during this test replaced by ``"<now>"``.

    Seeded timestamps are in 2025 (T0); anything at or after ``started`` was set by the request.
    """
    if isinstance(body, dict):
        return {key: now_stamped(value, started) for key, value in body.items()}
    if isinstance(body, list):
        return [now_stamped(value, started) for value in body]
    if isinstance(body, str) and body.endswith("Z") and len(body) == 20:
        try:
            moment = datetime.strptime(body, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            return body
        if started - 1 <= moment <= time.time() + 1:
            return "<now>"
    return body


def runs_of(h, db_file, session_id: str) -> list[tuple]:
    return h.query(
        db_file,
        "SELECT run_id, run_index, status, parent_run_id FROM agno_runs WHERE session_id = ? ORDER BY run_index",
        (session_id,),
    )


def run_rows(h, db_file, session_id: str) -> list[tuple]:
    """Every column of the session's agno_runs rows, in run_index order."""
    return h.query(db_file, "SELECT * FROM agno_runs WHERE session_id = ? ORDER BY run_index", (session_id,))


# --- 1. sessions created through our API are agno's sessions --------------------------------


CREATE_BODIES = {
    "agent": {
        "session_id": "new-agent",
        "session_name": "My chat ✓",
        "session_state": {"a": 1, "nested": {"b": [1, 2]}},
        "metadata": {"k": "v", "n": 1},
        "user_id": "u1",
        "agent_id": "agent-x",
    },
    "team": {
        "session_id": "new-team",
        "session_name": "Team chat",
        "session_state": {"t": True},
        "metadata": {"m": None},
        "user_id": "u2",
        "team_id": "team-x",
    },
    "workflow": {
        "session_id": "new-wf",
        "session_name": "WF chat",
        "session_state": {"w": []},
        "metadata": {"x": "y"},
        "user_id": "u3",
        "workflow_id": "wf-x",
    },
}
CREATE_URL = {
    "agent": "/sessions",
    "team": "/sessions?type=team",
    "workflow": "/sessions?type=workflow",
}
DETAIL_URL = {
    "agent": "/sessions/new-agent",
    "team": "/sessions/new-team?type=team",
    "workflow": "/sessions/new-wf?type=workflow",
}


@pytest.mark.parametrize("kind", ["agent", "team", "workflow"])
def test_session_created_through_api_is_loaded_by_agno(kind, db_file, client, agno_db):
    started = time.time()
    sent = CREATE_BODIES[kind]
    response = client.post(CREATE_URL[kind], json=sent)
    status, expected = AGENTOS[f"GET {DETAIL_URL[kind]}"]
    assert (response.status_code, now_stamped(response.json(), started)) == (201, expected)
    # ... and our own GET serves it the way AgentOS does.
    response = client.get(DETAIL_URL[kind])
    assert (response.status_code, now_stamped(response.json(), started)) == (status, expected)

    # agno reads the row as its own session (get_session with the agent type, as AgentOS's
    # default route does, and with the session's own type).
    for session_type in {SessionType.AGENT, SESSION_TYPE[kind]}:
        session = agno_db.get_session(session_id=sent["session_id"], session_type=session_type)
        assert session is not None
        assert session.session_id == sent["session_id"]
        assert session.session_data["session_name"] == sent["session_name"]
        assert session.session_data["session_state"] == sent["session_state"]
        assert session.metadata == sent["metadata"]
        assert session.user_id == sent["user_id"]
    session = agno_db.get_session(session_id=sent["session_id"], session_type=SESSION_TYPE[kind])
    assert type(session) is SESSION_CLASS[kind]
    assert getattr(session, f"{kind}_id") == sent[f"{kind}_id"]
    assert session.session_data == {
        "session_state": sent["session_state"],
        "session_name": sent["session_name"],
    }
    assert started - 1 <= session.created_at <= time.time() + 1
    assert session.runs in (None, [])

    raw = agno_db.get_session(session_id=sent["session_id"], deserialize=False)
    assert raw["session_type"] == kind
    assert raw["created_at"] == raw["updated_at"]
    assert raw["runs"] == []

    # agno's own listing finds it by type, user and component id.
    listed = agno_db.get_sessions(
        session_type=SESSION_TYPE[kind], user_id=sent["user_id"], component_id=sent[f"{kind}_id"]
    )
    assert [s.session_id for s in listed] == [sent["session_id"]]


def test_minimal_session_created_through_api_is_loaded_by_agno(db_file, client, agno_db):
    started = time.time()
    response = client.post("/sessions", json={"session_id": "new-agent-min"})
    _, expected = AGENTOS["GET /sessions/new-agent-min"]
    assert (response.status_code, now_stamped(response.json(), started)) == (201, expected)
    session = agno_db.get_session(session_id="new-agent-min", session_type=SessionType.AGENT)
    assert isinstance(session, AgentSession)
    assert (session.session_id, session.user_id, session.agent_id, session.metadata) == (
        "new-agent-min",
        None,
        None,
        None,
    )
    assert not session.session_data  # no name and no state were given


def test_agno_can_add_runs_to_a_session_created_through_api(db_file, client, agno_db, h):
    """The Agent's next turn: agno upserts the session our API created and appends runs."""
    client.post("/sessions", json=CREATE_BODIES["agent"])
    session = agno_db.get_session(session_id="new-agent", session_type=SessionType.AGENT)
    run = h.agent_run(
        "run-new-0",
        "new-agent",
        "u1",
        "First question",
        "First answer",
        h.T0 + 5,
        agent_id="agent-x",
    )
    session.upsert_run(run)
    assert agno_db.upsert_session(session) is not None
    agno_db.upsert_run(run=run, session_id="new-agent", user_id="u1", run_index=0)

    body = client.get("/sessions/new-agent").json()
    assert body["session_name"] == "My chat ✓"
    assert body["session_state"] == {"a": 1, "nested": {"b": [1, 2]}}
    assert body["metadata"] == {"k": "v", "n": 1}
    assert [(m["id"], m["role"], m["content"]) for m in body["chat_history"]] == [
        ("run-new-0-m1", "user", "First question"),
        ("run-new-0-m2", "assistant", "First answer"),
    ]
    runs = client.get("/sessions/new-agent/runs").json()
    assert [(r["run_id"], r["run_input"], r["content"], r["status"]) for r in runs] == [
        ("run-new-0", "First question", "First answer", "COMPLETED")
    ]


# --- 2. what agno writes, our API serves as AgentOS does -----------------------------------


@pytest.mark.parametrize("url", ["/sessions", "/sessions?type=team", "/sessions?type=workflow"])
def test_list_sessions_written_by_agno(url, seeded, client):
    response = client.get(url)
    body = response.json()
    assert isinstance(body["meta"].pop("search_time_ms"), int | float)
    assert (response.status_code, body) == AGENTOS[f"GET {url}"]


def test_list_sessions_derives_names_from_first_user_message(seeded, client):
    names = {item["session_id"]: item["session_name"] for item in client.get("/sessions").json()["data"]}
    assert names == {
        "sess-agent-1": "Capitals Quiz ✓",
        "sess-agent-2": "Hello there",  # first user message of the first run
        "sess-team-1": "Sea haiku",
        "sess-team-2": "Plan a trip to Rome",  # member runs (agent_id) are skipped for teams
        "sess-wf-1": "SQLite blog",
        "sess-wf-2": "Write a post about WAL",  # a workflow's first run input
    }


SESSIONS = ["sess-agent-1", "sess-agent-2", "sess-team-1", "sess-team-2", "sess-wf-1", "sess-wf-2"]
READ_URLS = [
    *(f"/sessions/{sid}{suffix}" for sid in SESSIONS for suffix in ("", "/runs", "/run-previews")),
    "/sessions/sess-agent-1/runs/run-a1-1",
    "/sessions/sess-team-1/runs/run-t1-0",
    "/sessions/sess-team-1/runs/run-t1-0-member",
    "/sessions/sess-wf-1/runs/run-w1-0",
]


@pytest.mark.parametrize("url", READ_URLS)
def test_session_and_runs_written_by_agno_are_served_as_agentos_does(url, seeded, client):
    response = client.get(url)
    assert (response.status_code, response.json()) == AGENTOS[f"GET {url}"]


def test_runs_written_by_agno_in_agno_order(seeded, client):
    """Run ids, inputs, contents and statuses, in agno's run_index order (member runs included)."""
    expected = {
        "sess-agent-1": [
            ("run-a1-0", "What is the capital of France?", "Paris.", "COMPLETED"),
            ("run-a1-1", "And of Germany? (Größe ✓)", "Berlin — ✓", "COMPLETED"),
        ],
        "sess-agent-2": [
            ("run-a2-0", "Hello there", "Hi Bob!", "COMPLETED"),
            ("run-a2-1", "Second question", "Second answer", "COMPLETED"),
        ],
        "sess-team-1": [
            ("run-t1-0-member", "Draft a haiku", "Waves fold into foam", "COMPLETED"),
            ("run-t1-0", "Write a haiku about the sea", "Waves fold into foam / ...", "COMPLETED"),
        ],
        "sess-team-2": [
            ("run-t2-0-member", "Find hotels", "Hotel list", "COMPLETED"),
            ("run-t2-0", "Plan a trip to Rome", "Day 1: Colosseum", "COMPLETED"),
        ],
        "sess-wf-1": [("run-w1-0", "Write a post about SQLite", "# SQLite\nSQLite is ...", "COMPLETED")],
        "sess-wf-2": [("run-w2-0", "Write a post about WAL", "# WAL", "ERROR")],
    }
    for session_id, runs in expected.items():
        body = client.get(f"/sessions/{session_id}/runs").json()
        assert [(r["run_id"], r["run_input"], r["content"], r["status"]) for r in body] == runs
        # ... the same runs agno itself reassembles for the session.
        agno_runs = seeded.get_session(session_id=session_id, deserialize=False)["runs"]
        assert [r["run_id"] for r in agno_runs] == [r[0] for r in runs]


def test_chat_history_is_agnos_chat_history(seeded, client):
    """GET /sessions/{id} chat_history is agno's own AgentSession/TeamSession.get_chat_history()."""
    for session_id, session_type in [
        ("sess-agent-1", SessionType.AGENT),
        ("sess-agent-2", SessionType.AGENT),
        ("sess-team-1", SessionType.TEAM),
        ("sess-team-2", SessionType.TEAM),
    ]:
        session = seeded.get_session(session_id=session_id, session_type=session_type)
        expected = [message.to_dict() for message in session.get_chat_history()]
        assert client.get(f"/sessions/{session_id}").json()["chat_history"] == expected


# --- 3. rename, update and delete through our API are what agno reads -----------------------


RENAMES = [
    ("agent", "sess-agent-2", "/sessions/sess-agent-2/rename", "Renamed ✓"),
    ("team", "sess-team-2", "/sessions/sess-team-2/rename?type=team", "Rome trip"),
    ("workflow", "sess-wf-2", "/sessions/sess-wf-2/rename?type=workflow", "WAL post"),
]


@pytest.mark.parametrize(("kind", "session_id", "url", "name"), RENAMES)
def test_rename_through_api_is_read_by_agno(kind, session_id, url, name, db_file, seeded, client, h):
    before = seeded.get_session(session_id=session_id, deserialize=False)
    runs_before = run_rows(h, db_file, session_id)
    started = time.time()
    response = client.post(url, json={"session_name": name})
    assert (response.status_code, now_stamped(response.json(), started)) == AGENTOS[f"POST {url}"]

    after = seeded.get_session(session_id=session_id, deserialize=False)
    session = seeded.get_session(session_id=session_id, session_type=SESSION_TYPE[kind])
    assert type(session) is SESSION_CLASS[kind]
    assert session.session_data["session_name"] == name
    # Only the name and updated_at changed; the runs rows are untouched.
    assert after["session_data"] == {**(before["session_data"] or {}), "session_name": name}
    assert started - 1 <= after["updated_at"] <= time.time() + 1
    unchanged = (
        "session_type",
        "agent_id",
        "team_id",
        "workflow_id",
        "user_id",
        "agent_data",
        "team_data",
        "workflow_data",
        "metadata",
        "summary",
        "created_at",
        "runs",
    )
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
    assert run_rows(h, db_file, session_id) == runs_before
    # agno's listing searches the new name.
    with warnings.catch_warnings():
        # agno's own LIKE on a JSON column (sqlite.py get_sessions) is deprecated in SQLAlchemy 2.1.
        warnings.simplefilter("ignore", SADeprecationWarning)
        found = seeded.get_sessions(session_name=name.split()[0])
    assert [s.session_id for s in found] == [session_id]


PATCHES = [
    (
        "agent",
        "sess-agent-1",
        "/sessions/sess-agent-1",
        {
            "session_state": {"counter": 3},
            "metadata": {"tier": "platinum"},
            "summary": {
                "summary": "New summary",
                "topics": ["t"],
                "updated_at": "2025-10-21T14:30:00Z",
            },
        },
    ),
    (
        "team",
        "sess-team-1",
        "/sessions/sess-team-1?type=team",
        {"session_state": {"drafts": 2}, "metadata": {"source": "patched"}},
    ),
    (
        "workflow",
        "sess-wf-1",
        "/sessions/sess-wf-1?type=workflow",
        {"session_state": {"step": "again"}, "metadata": {"source": "patched"}},
    ),
]


@pytest.mark.parametrize(("kind", "session_id", "url", "patch"), PATCHES)
def test_update_through_api_is_read_by_agno(kind, session_id, url, patch, db_file, seeded, client, h):
    before = seeded.get_session(session_id=session_id, deserialize=False)
    runs_before = run_rows(h, db_file, session_id)
    started = time.time()
    response = client.patch(url, json=patch)
    assert (response.status_code, now_stamped(response.json(), started)) == AGENTOS[f"PATCH {url}"]

    session = seeded.get_session(session_id=session_id, session_type=SESSION_TYPE[kind])
    assert type(session) is SESSION_CLASS[kind]
    assert session.session_data["session_state"] == patch["session_state"]
    assert session.session_data["session_name"] == before["session_data"]["session_name"]
    assert session.metadata == patch["metadata"]
    if "summary" in patch:
        assert session.summary.summary == "New summary"
        assert session.summary.topics == ["t"]
        assert session.summary.to_dict() == {
            "summary": "New summary",
            "topics": ["t"],
            "updated_at": "2025-10-21T14:30:00+00:00",
        }
    after = seeded.get_session(session_id=session_id, deserialize=False)
    assert after["session_data"] == {
        **before["session_data"],
        "session_state": patch["session_state"],
    }
    assert started - 1 <= after["updated_at"] <= time.time() + 1
    assert (after["created_at"], after["user_id"], after["session_type"]) == (
        before["created_at"],
        before["user_id"],
        before["session_type"],
    )
    if "summary" not in patch:
        assert after["summary"] == before["summary"]
    assert run_rows(h, db_file, session_id) == runs_before


def test_delete_through_api_is_read_by_agno(db_file, seeded, client, h):
    assert [r[0] for r in runs_of(h, db_file, "sess-agent-2")] == ["run-a2-0", "run-a2-1"]
    response = client.delete("/sessions/sess-agent-2")
    assert (response.status_code, response.content) == (204, b"")
    assert seeded.get_session(session_id="sess-agent-2", session_type=SessionType.AGENT) is None
    assert runs_of(h, db_file, "sess-agent-2") == []
    assert seeded.get_run("run-a2-0") is None

    response = client.request(
        "DELETE",
        "/sessions",
        json={"session_ids": ["sess-team-1", "sess-wf-1"], "session_types": ["team", "workflow"]},
    )
    assert (response.status_code, response.content) == (204, b"")
    assert seeded.get_session(session_id="sess-team-1", session_type=SessionType.TEAM) is None
    assert seeded.get_session(session_id="sess-wf-1", session_type=SessionType.WORKFLOW) is None
    assert runs_of(h, db_file, "sess-team-1") == []
    assert runs_of(h, db_file, "sess-wf-1") == []

    # The other sessions and all their runs are still agno's.
    remaining = sorted(s.session_id for s in seeded.get_sessions())
    assert remaining == ["sess-agent-1", "sess-team-2", "sess-wf-2"]
    assert h.query(db_file, "SELECT session_id, run_id FROM agno_runs ORDER BY session_id, run_index") == [
        ("sess-agent-1", "run-a1-0"),
        ("sess-agent-1", "run-a1-1"),
        ("sess-team-2", "run-t2-0-member"),
        ("sess-team-2", "run-t2-0"),
        ("sess-wf-2", "run-w2-0"),
    ]
    assert [item["session_id"] for item in client.get("/sessions").json()["data"]] == [
        "sess-wf-2",
        "sess-team-2",
        "sess-agent-1",
    ]


def test_agno_delete_is_seen_by_api(seeded, client):
    assert seeded.delete_session("sess-agent-1") is True
    response = client.get("/sessions/sess-agent-1")
    assert (response.status_code, response.json()) == (
        404,
        {"detail": "Session with id 'sess-agent-1' not found"},
    )


# --- 4. DDL: agno's file used as it is; our fresh file is agno's fresh file -------------------
# Both plus the indexes of ours and our migrations' version table, and nothing else.

OWN_INDEXES = [
    (
        "index",
        "idx_agno_runs_session_id_run_index_created_at_run_id",
        "agno_runs",
        "CREATE INDEX idx_agno_runs_session_id_run_index_created_at_run_id "
        "ON agno_runs (session_id, run_index, created_at, run_id)",
    ),
    (
        "index",
        "idx_agno_sessions_created_at_session_id",
        "agno_sessions",
        "CREATE INDEX idx_agno_sessions_created_at_session_id ON agno_sessions (created_at, session_id)",
    ),
    (
        "index",
        "idx_agno_sessions_user_id_session_type_created_at_session_id",
        "agno_sessions",
        "CREATE INDEX idx_agno_sessions_user_id_session_type_created_at_session_id "
        "ON agno_sessions (user_id, session_type, created_at, session_id)",
    ),
    *(
        (
            "index",
            f"idx_agno_sessions_{column}_created_at_session_id",
            "agno_sessions",
            f"CREATE INDEX idx_agno_sessions_{column}_created_at_session_id "
            f"ON agno_sessions ({column}, created_at, session_id)",
        )
        for column in ("agent_id", "team_id", "workflow_id")
    ),
    (
        "index",
        "idx_agno_sessions_updated_at_session_id",
        "agno_sessions",
        "CREATE INDEX idx_agno_sessions_updated_at_session_id ON agno_sessions (updated_at, session_id)",
    ),
]


# Alembic's record of our migrations (persistence/schema.py), at the newest revision.
MIGRATIONS_TABLE = [
    (
        "index",
        "sqlite_autoindex_agentos_agno_sessions_version_1",
        "agentos_agno_sessions_version",
        None,
    ),
    (
        "table",
        "agentos_agno_sessions_version",
        "agentos_agno_sessions_version",
        "CREATE TABLE agentos_agno_sessions_version (\n\tversion_num VARCHAR(32) NOT NULL, \n"
        "\tCONSTRAINT agentos_agno_sessions_version_pkc PRIMARY KEY (version_num)\n)",
    ),
]
OURS = OWN_INDEXES + MIGRATIONS_TABLE


def test_file_created_by_agno_is_used_as_is(db_file, seeded, h):
    schema_before = h.schema_dump(db_file)
    versions_before = h.query(db_file, "SELECT * FROM agno_schema_versions ORDER BY table_name")
    assert [(name, version) for name, version, *_ in versions_before] == [
        ("agno_runs", "3.0.0"),
        ("agno_sessions", "3.0.0"),
    ]
    with h.serve(db_file) as client:
        assert client.get("/sessions").json()["meta"]["total_count"] == 6
        client.post("/sessions", json={"session_id": "x"})
        client.post("/sessions/sess-agent-1/rename", json={"session_name": "again"})
    assert h.schema_dump(db_file) == sorted(schema_before + OURS)
    assert h.query(db_file, "SELECT * FROM agno_schema_versions ORDER BY table_name") == versions_before
    assert h.query(db_file, "SELECT version_num FROM agentos_agno_sessions_version") == [(schema.head(),)]


def agno_fresh_file(h, path) -> SqliteDb:
    """A file agno creates on its own: a plain SqliteDb's first session write and run write."""
    db = SqliteDb(db_file=str(path))
    h.seed_agno(db)
    return db


def test_fresh_file_gets_agnos_exact_ddl(tmp_path, db_file, h):
    ours = tmp_path / "ours.db"
    with h.serve(ours) as client:
        assert client.get("/sessions").json()["data"] == []
    theirs = tmp_path / "theirs.db"
    agno_db = agno_fresh_file(h, theirs)
    agno_db.db_engine.dispose()

    assert h.schema_dump(ours) == sorted(h.schema_dump(theirs) + OURS)
    assert h.query(ours, "SELECT table_name, version FROM agno_schema_versions ORDER BY table_name") == h.query(
        theirs, "SELECT table_name, version FROM agno_schema_versions ORDER BY table_name"
    )
    assert h.query(ours, "PRAGMA journal_mode") == h.query(theirs, "PRAGMA journal_mode") == [("wal",)]


def test_agno_writes_sessions_and_runs_to_a_file_we_created(tmp_path, h):
    ours = tmp_path / "ours.db"
    with h.serve(ours):
        pass
    schema = h.schema_dump(ours)
    db = SqliteDb(db_file=str(ours))
    h.seed_agno(db)
    assert h.schema_dump(ours) == schema  # agno accepted our tables and created nothing
    assert seed_round_trip(db) == 6
    db.db_engine.dispose()
    with h.serve(ours) as client:
        response = client.get("/sessions/sess-agent-1")
        assert (response.status_code, response.json()) == AGENTOS["GET /sessions/sess-agent-1"]
        response = client.get("/sessions/sess-team-1/runs")
        assert (response.status_code, response.json()) == AGENTOS["GET /sessions/sess-team-1/runs"]


def seed_round_trip(db: SqliteDb) -> int:
    sessions = db.get_sessions()
    for session in sessions:
        assert session.runs, session.session_id
    return len(sessions)
