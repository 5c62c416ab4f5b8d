"""Every sessions operation over HTTP: status, whole body, and what the database holds."""

from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import func, insert, select
from starlette.testclient import TestClient

from agentos_sessions.app import create_app
from agentos_sessions.contract.spec import CONTRACT, load_document
from agentos_sessions.settings import DatabaseSettings, Settings
from tests.api.helpers import add_run, iso, not_an_object, stored_runs, stored_session
from tests.direct import DirectDatabase

# Also run through PgBouncer, in transaction and in session mode, by `tox -e pgbouncer`.
pytestmark = pytest.mark.pooler

USER_MESSAGE = {
    "id": "m1",
    "content": "What tools do you have?",
    "from_history": False,
    "stop_after_tool_call": False,
    "role": "user",
    "created_at": 1757088139,
}
ASSISTANT_MESSAGE = {
    "id": "m2",
    "content": "None.",
    "from_history": False,
    "stop_after_tool_call": False,
    "role": "assistant",
    "created_at": 1757088140,
}
SYSTEM_MESSAGE = {"id": "m0", "content": "Be brief.", "role": "system", "created_at": 1757088139}


def create(client, body=None, **params):
    response = client.post("/sessions", json=body if body is not None else {}, params=params)
    assert response.status_code == 201, response.text
    return response.json()


# --- create ---------------------------------------------------------------------------------


def test_create_session_with_everything_returns_201_and_stores_agno_row(client, database):
    body = create(
        client,
        {
            "session_id": "s1",
            "session_name": "Trip",
            "session_state": {"city": "Paris"},
            "metadata": {"tier": "gold"},
            "user_id": "alice",
            "agent_id": "agent-1",
        },
    )
    row = stored_session(database, "s1")
    assert body == {
        "user_id": "alice",
        "agent_session_id": "s1",
        "session_id": "s1",
        "session_name": "Trip",
        "session_state": {"city": "Paris"},
        "agent_id": "agent-1",
        "metrics": {},
        "metadata": {"tier": "gold"},
        "chat_history": [],
        "created_at": iso(row.created_at),
        "updated_at": iso(row.created_at),
    }
    assert (row.session_type, row.agent_id, row.user_id) == ("agent", "agent-1", "alice")
    assert row.session_data == {"session_state": {"city": "Paris"}, "session_name": "Trip"}
    assert row.metadata_ == {"tier": "gold"}
    assert row.created_at == row.updated_at


def test_create_session_without_body_generates_id(client, database):
    response = client.post("/sessions")
    assert response.status_code == 201
    body = response.json()
    row = stored_session(database, body["session_id"])
    assert body == {
        "agent_session_id": row.session_id,
        "session_id": row.session_id,
        "session_name": "",
        "chat_history": [],
        "created_at": iso(row.created_at),
        "updated_at": iso(row.created_at),
    }
    assert len(row.session_id) == 36
    assert row.session_data is None


def test_create_session_with_empty_session_id_generates_one(client):
    body = create(client, {"session_id": ""})
    assert len(body["session_id"]) == 36


@pytest.mark.parametrize("session_type", ["team", "workflow"])
def test_create_session_of_each_type(client, database, session_type):
    body = create(
        client, {"session_id": "s", f"{session_type}_id": "c-1", "session_state": {"k": 1}}, type=session_type
    )
    row = stored_session(database, "s")
    stamp = iso(row.created_at)
    if session_type == "team":
        assert body == {
            "session_id": "s",
            "session_name": "",
            "team_id": "c-1",
            "session_state": {"k": 1},
            "metrics": {},
            "chat_history": [],
            "created_at": stamp,
            "updated_at": stamp,
        }
    else:
        assert body == {
            "workflow_id": "c-1",
            "session_id": "s",
            "session_name": "",
            "session_data": {"session_state": {"k": 1}},
            "session_state": {"k": 1},
            "workflow_data": {},
            "metadata": {},
            "created_at": stamp,
            "updated_at": stamp,
        }
    assert (row.session_type, getattr(row, f"{session_type}_id")) == (session_type, "c-1")


def test_create_with_existing_session_id_is_409_and_leaves_session_untouched(client, database):
    create(client, {"session_id": "dup", "session_name": "Original", "session_state": {"v": 1}})
    before = stored_session(database, "dup")
    response = client.post(
        "/sessions", json={"session_id": "dup", "session_name": "Overwrite"}, params={"type": "team"}
    )
    assert response.status_code == 409
    assert response.json() == {"detail": "Session with id 'dup' already exists. Use PATCH /sessions/dup to update it."}
    after = stored_session(database, "dup")
    assert (after.session_type, after.session_data, after.updated_at) == (
        "agent",
        before.session_data,
        before.updated_at,
    )


def test_create_strips_reserved_metadata_keys(client, database):
    create(client, {"session_id": "r", "metadata": {"agno_component_version": 3, "keep": 1}})
    assert stored_session(database, "r").metadata_ == {"keep": 1}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            {"session_name": 123},
            [
                {
                    "type": "string_type",
                    "loc": ["body", "session_name"],
                    "msg": "Input should be a valid string",
                    "input": 123,
                }
            ],
        ),
        (
            {"session_state": [1]},
            [
                {
                    "type": "dict_type",
                    "loc": ["body", "session_state"],
                    "msg": "Input should be a valid dictionary",
                    "input": [1],
                }
            ],
        ),
        ([], [not_an_object([])]),
    ],
)
def test_create_with_invalid_body_is_422_in_fastapi_shape(client, database, body, detail):
    response = client.post("/sessions", json=body)
    assert response.status_code == 422
    assert response.json() == {"detail": detail}
    with database.unit_of_work() as db:
        assert db.execute(select(func.count()).select_from(database.models.sessions)).scalar() == 0


def test_malformed_json_is_422_json_invalid(client):
    response = client.post("/sessions", content=b'{"session_id": ', headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "type": "json_invalid",
                "loc": ["body", 15],
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": "Expecting value"},
            }
        ]
    }


def test_non_json_content_type_is_422_with_raw_body(client):
    response = client.post("/sessions", content=b"session_id=x", headers={"content-type": "text/plain"})
    assert response.status_code == 422
    assert response.json() == {"detail": [not_an_object("session_id=x")]}


# --- list -------------------------------------------------------------------------------------


def test_list_sessions_pages_and_meta(client):
    for i in range(5):
        create(client, {"session_id": f"s{i}", "session_name": f"Session {i}", "user_id": "u"})
    response = client.get("/sessions", params={"limit": 2, "page": 2, "sort_by": "session_id", "sort_order": "asc"})
    assert response.status_code == 200
    body = response.json()
    assert [s["session_id"] for s in body["data"]] == ["s2", "s3"]
    assert body["data"][0] == {
        "session_id": "s2",
        "session_name": "Session 2",
        "created_at": body["data"][0]["created_at"],
        "updated_at": body["data"][0]["created_at"],
        "session_type": "agent",
        "user_id": "u",
    }
    meta = body["meta"]
    assert {k: meta[k] for k in ("page", "limit", "total_pages", "total_count")} == {
        "page": 2,
        "limit": 2,
        "total_pages": 3,
        "total_count": 5,
    }
    assert meta["search_time_ms"] > 0


def test_list_sessions_filters_by_type_component_and_user(client):
    create(client, {"session_id": "a", "agent_id": "x", "user_id": "u1"})
    create(client, {"session_id": "t", "team_id": "x", "user_id": "u2"}, type="team")
    create(client, {"session_id": "w", "workflow_id": "y", "user_id": "u1"}, type="workflow")

    def ids(**params):
        response = client.get("/sessions", params={"sort_by": "session_id", "sort_order": "asc", **params})
        assert response.status_code == 200
        return [s["session_id"] for s in response.json()["data"]]

    assert ids(type="team") == ["t"]
    assert ids(component_id="x") == ["a", "t"]
    assert ids(component_id="x", type="agent") == ["a"]
    assert ids(user_id="u1") == ["a", "w"]


def test_session_name_search_is_case_insensitive_unicode_and_name_only(client, database):
    create(client, {"session_id": "cafe", "session_name": "Café Straße"})
    create(client, {"session_id": "state", "session_name": "Other", "session_state": {"note": "café"}})
    create(client, {"session_id": "pct", "session_name": "100% done"})

    def ids(name):
        return sorted(s["session_id"] for s in client.get("/sessions", params={"session_name": name}).json()["data"])

    assert ids("CAFÉ") == ["cafe"]
    # Full Unicode case folding (ß is ss) on SQLite; PostgreSQL 15 has lower() only (docs/compatibility.md).
    assert ids("strasse") == (["cafe"] if database.engine.dialect.name == "sqlite" else [])
    assert ids("STRAßE") == ["cafe"]
    assert ids("%") == ["pct"]
    assert ids("_") == []


def test_list_derives_unset_names_from_first_user_message(client, database):
    create(client, {"session_id": "n"})
    add_run(
        database,
        "n",
        "r1",
        0,
        created_at=1757088139,
        agent_id="a",
        messages=[SYSTEM_MESSAGE, USER_MESSAGE, ASSISTANT_MESSAGE],
    )
    data = client.get("/sessions").json()["data"]
    assert data[0]["session_name"] == "What tools do you have?"


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        (
            {"limit": "0"},
            [
                {
                    "type": "greater_than_equal",
                    "loc": ["query", "limit"],
                    "msg": "Input should be greater than or equal to 1",
                    "input": "0",
                    "ctx": {"ge": 1},
                }
            ],
        ),
        (
            {"limit": "abc"},
            [
                {
                    "type": "int_parsing",
                    "loc": ["query", "limit"],
                    "msg": "Input should be a valid integer, unable to parse string as an integer",
                    "input": "abc",
                }
            ],
        ),
        (
            {"sort_order": "ASC"},
            [
                {
                    "type": "enum",
                    "loc": ["query", "sort_order"],
                    "msg": "Input should be 'asc' or 'desc'",
                    "input": "ASC",
                    "ctx": {"expected": "'asc' or 'desc'"},
                }
            ],
        ),
        (
            {"limit": "1001"},
            [
                {
                    "type": "less_than_equal",
                    "loc": ["query", "limit"],
                    "msg": "Input should be less than or equal to 1000",
                    "input": "1001",
                    "ctx": {"le": 1000},
                }
            ],
        ),
    ],
)
def test_list_with_invalid_query_is_422(client, params, detail):
    response = client.get("/sessions", params=params)
    assert response.status_code == 422
    assert response.json() == {"detail": detail}


def test_unknown_sort_by_is_422_not_a_silent_no_sort(client):
    response = client.get("/sessions", params={"sort_by": "bogus"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "enum"
    assert response.json()["detail"][0]["loc"] == ["query", "sort_by"]


def test_page_zero_is_served_as_page_one(client):
    create(client, {"session_id": "s"})
    body = client.get("/sessions", params={"page": 0}).json()
    assert [s["session_id"] for s in body["data"]] == ["s"]
    assert body["meta"]["page"] == 1


# --- get, runs -------------------------------------------------------------------------------


@pytest.fixture
def session_with_runs(client, database):
    create(client, {"session_id": "s", "user_id": "alice", "agent_id": "a"})
    add_run(
        database,
        "s",
        "r1",
        0,
        created_at=1757088139,
        agent_id="a",
        user_id="alice",
        content="None.",
        messages=[SYSTEM_MESSAGE, USER_MESSAGE, ASSISTANT_MESSAGE],
    )
    add_run(
        database,
        "s",
        "r2",
        1,
        created_at=1757088149,
        agent_id="a",
        user_id="alice",
        status="ERROR",
        content="x" * 300,
        input={"input_content": "Second?"},
    )
    return "s"


def test_get_session_returns_chat_history_and_derived_name(client, database, session_with_runs):
    row = stored_session(database, "s")
    response = client.get("/sessions/s")
    assert response.status_code == 200
    assert response.json() == {
        "user_id": "alice",
        "agent_session_id": "s",
        "session_id": "s",
        "session_name": "What tools do you have?",
        "agent_id": "a",
        "chat_history": [USER_MESSAGE, ASSISTANT_MESSAGE],
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


@pytest.mark.parametrize(
    ("path", "params", "detail"),
    [
        ("/sessions/nope", {}, "Session with id 'nope' not found"),
        ("/sessions/nope", {"type": "workflow"}, "Workflow Session with id 'nope' not found"),
        ("/sessions/s", {"user_id": "bob"}, "Session with id 's' not found"),
        ("/sessions/nope/runs", {}, "Session with ID nope not found"),
        ("/sessions/s/runs/nope", {}, "Run with ID nope not found in session s"),
        ("/sessions/s", {"db_id": "other"}, "No database found with id 'other'"),
        ("/sessions/s", {"db_id": "main", "table": "other"}, "No database with id 'main' has table 'other'"),
    ],
)
def test_not_found_messages_match_agentos(client, session_with_runs, path, params, detail):
    response = client.get(path, params=params)
    assert response.status_code == 404
    assert response.json() == {"detail": detail}


def test_table_without_db_id_is_400(client):
    response = client.get("/sessions", params={"table": "agno_sessions"})
    assert response.status_code == 400
    assert response.json() == {"detail": "The db_id query parameter is required when passing a table"}


def test_get_session_runs_filters_and_shapes(client, session_with_runs):
    runs = client.get("/sessions/s/runs").json()
    assert [r["run_id"] for r in runs] == ["r1", "r2"]
    assert runs[0] == {
        "run_id": "r1",
        "parent_run_id": "",
        "agent_id": "a",
        "user_id": "alice",
        "status": "COMPLETED",
        "run_input": "What tools do you have?",
        "content": "None.",
        "run_response_format": "text",
        "reasoning_content": "",
        "reasoning_steps": [],
        "metrics": {},
        "messages": [SYSTEM_MESSAGE, USER_MESSAGE, ASSISTANT_MESSAGE],
        "created_at": iso(1757088139),
        "references": [],
        "reasoning_messages": [],
        "images": [],
        "videos": [],
        "audio": [],
        "files": [],
        "input_media": {"images": [], "videos": [], "audios": [], "files": []},
    }
    assert [r["run_id"] for r in client.get("/sessions/s/runs", params={"created_after": 1757088140}).json()] == ["r2"]
    assert [r["run_id"] for r in client.get("/sessions/s/runs", params={"status": "error"}).json()] == ["r2"]


def test_unknown_run_status_is_422(client, session_with_runs):
    document = load_document(CONTRACT)
    pattern = document["components"]["parameters"]["RunStatus"]["schema"]["items"]["pattern"]
    response = client.get("/sessions/s/runs", params={"status": ["error", "bogus"]})
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "type": "string_pattern_mismatch",
                "loc": ["query", "status", 1],
                "msg": f"String should match pattern '{pattern}'",
                "input": "bogus",
                "ctx": {"pattern": pattern},
            }
        ]
    }


def test_run_previews_truncate_to_280_characters(client, session_with_runs):
    previews = client.get("/sessions/s/run-previews").json()
    assert previews[1] == {
        "run_id": "r2",
        "parent_run_id": "",
        "agent_id": "a",
        "user_id": "alice",
        "status": "ERROR",
        "run_input": "Second?",
        "content_preview": "x" * 280,
        "created_at": iso(1757088149),
    }


def test_get_single_run_sends_nulls(client, session_with_runs):
    run = client.get("/sessions/s/runs/r2").json()
    assert run["run_id"] == "r2"
    assert run["cancellation_stage"] is None and "messages" in run and run["messages"] is None


def test_get_run_of_session_without_runs_is_404(client):
    create(client, {"session_id": "empty"})
    response = client.get("/sessions/empty/runs/r")
    assert response.status_code == 404
    assert response.json() == {"detail": "Session with ID empty has no runs"}


# --- rename, update ---------------------------------------------------------------------------


def test_rename_session_sets_name_and_sends_nulls(client, database):
    create(client, {"session_id": "s", "user_id": "u"})
    response = client.post("/sessions/s/rename", json={"session_name": "Renamed"})
    row = stored_session(database, "s")
    assert response.status_code == 200
    assert response.json() == {
        "user_id": "u",
        "agent_session_id": "s",
        "session_id": "s",
        "session_name": "Renamed",
        "session_summary": None,
        "session_state": None,
        "agent_id": None,
        "total_tokens": None,
        "agent_data": None,
        "metrics": {},
        "metadata": None,
        "chat_history": [],
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }
    assert row.session_data == {"session_name": "Renamed"}


def test_rename_requires_a_string_name(client):
    create(client, {"session_id": "s"})
    response = client.post("/sessions/s/rename", json={"session_name": None})
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "type": "string_type",
                "loc": ["body", "session_name"],
                "msg": "Input should be a valid string",
                "input": None,
            }
        ]
    }


def test_rename_other_users_session_is_404_and_unchanged(client, database):
    create(client, {"session_id": "s", "user_id": "owner", "session_name": "Mine"})
    response = client.post("/sessions/s/rename", params={"user_id": "intruder"}, json={"session_name": "Stolen"})
    assert response.status_code == 404
    assert stored_session(database, "s").session_data == {"session_name": "Mine"}


def test_update_session_replaces_given_fields_only(client, database):
    create(client, {"session_id": "s", "session_name": "Keep", "session_state": {"a": 1}, "metadata": {"m": 1}})
    response = client.patch("/sessions/s", json={"session_state": {"b": 2}, "summary": {"summary": "Short"}})
    assert response.status_code == 200
    row = stored_session(database, "s")
    assert row.session_data == {"session_state": {"b": 2}, "session_name": "Keep"}
    assert row.metadata_ == {"m": 1}
    assert row.summary == {"summary": "Short"}
    assert response.json()["session_summary"] == {"summary": "Short"}


def test_update_summary_without_text_is_422(client):
    create(client, {"session_id": "s"})
    response = client.patch("/sessions/s", json={"summary": {"topics": ["x"]}})
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "missing"


def test_update_unknown_session_is_404(client):
    response = client.patch("/sessions/nope", json={})
    assert response.status_code == 404
    assert response.json() == {"detail": "Session with id 'nope' not found"}


# --- delete -----------------------------------------------------------------------------------


def test_delete_session_removes_it_and_its_runs(client, database, session_with_runs):
    assert client.delete("/sessions/s").status_code == 204
    assert stored_session(database, "s") is None
    assert stored_runs(database, "s") == []
    assert client.delete("/sessions/s").status_code == 204


def test_delete_other_users_session_is_404_and_keeps_it(client, database):
    create(client, {"session_id": "s", "user_id": "owner"})
    response = client.delete("/sessions/s", params={"user_id": "intruder"})
    assert (response.status_code, response.json()) == (404, {"detail": "Session with id 's' not found"})
    assert stored_session(database, "s") is not None
    assert client.delete("/sessions/s", params={"user_id": "owner"}).status_code == 204
    assert stored_session(database, "s") is None


def test_delete_with_media_without_media_storage_is_503_and_deletes_nothing(client, database):
    """As AgentOS without a media storage: 503, and the session stays."""
    for sid in ("s", "t"):
        create(client, {"session_id": sid})
    response = client.delete("/sessions/s", params={"delete_media": "true"})
    assert (response.status_code, response.json()) == (503, {"detail": "Media storage is not configured on AgentOS"})
    assert "retry-after" not in response.headers
    bulk = {"session_ids": ["s", "t"], "session_types": ["agent", "agent"]}
    response = client.request("DELETE", "/sessions", params={"delete_media": "true"}, json=bulk)
    assert (response.status_code, response.json()) == (503, {"detail": "Media storage is not configured on AgentOS"})
    assert stored_session(database, "s") is not None and stored_session(database, "t") is not None
    assert client.delete("/sessions/s", params={"delete_media": "false"}).status_code == 204
    assert stored_session(database, "s") is None


def test_bulk_delete(client, database):
    for sid in ("a", "b", "c"):
        create(client, {"session_id": sid})
    response = client.request(
        "DELETE", "/sessions", json={"session_ids": ["a", "b", "zz"], "session_types": ["agent", "agent", "team"]}
    )
    assert response.status_code == 204
    assert [stored_session(database, sid) is None for sid in ("a", "b", "c")] == [True, True, False]


def test_bulk_delete_length_mismatch_is_400(client):
    response = client.request("DELETE", "/sessions", json={"session_ids": ["a", "b"], "session_types": ["agent"]})
    assert response.status_code == 400
    assert response.json() == {"detail": "Session IDs and session types must have the same length"}


def test_bulk_delete_without_body_is_422(client):
    response = client.request("DELETE", "/sessions")
    assert response.status_code == 422
    assert response.json() == {"detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]}


# --- the rest ---------------------------------------------------------------------------------


def test_health(client):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["instantiated_at"].endswith("Z")


def test_unknown_route_and_method(client):
    assert (client.get("/nope").status_code, client.get("/nope").json()) == (404, {"detail": "Not Found"})
    response = client.put("/sessions")
    assert (response.status_code, response.json()) == (405, {"detail": "Method Not Allowed"})


def test_spec_and_docs_are_served(client):
    assert client.get("/openapi.json").json()["openapi"] == "3.1.0"
    assert client.get("/docs/").status_code == 200


def test_an_empty_stored_name_is_kept_not_derived(client, database):
    create(client, {"session_id": "blank", "session_name": ""})
    add_run(database, "blank", "r1", 0, created_at=1757088139, agent_id="a", messages=[USER_MESSAGE])
    assert client.get("/sessions").json()["data"][0]["session_name"] == ""
    assert client.get("/sessions/blank").json()["session_name"] == ""


def test_json_body_without_content_type_is_422_with_raw_body(client, database):
    response = client.post("/sessions", content=b'{"session_id": "x"}')
    assert response.status_code == 422
    assert response.json() == {"detail": [not_an_object('{"session_id": "x"}')]}
    assert stored_session(database, "x") is None


def test_every_missing_field_is_reported(client):
    response = client.request("DELETE", "/sessions", json={})
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {"type": "missing", "loc": ["body", "session_ids"], "msg": "Field required", "input": {}},
            {"type": "missing", "loc": ["body", "session_types"], "msg": "Field required", "input": {}},
        ]
    }


@pytest.mark.parametrize("body", [b'"new name"', b"[]", b"{}", b"", b"null"])
def test_rename_body_problems_are_reported_as_missing_session_name(client, body):
    create(client, {"session_id": "s"})
    response = client.post("/sessions/s/rename", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json() == {
        "detail": [{"type": "missing", "loc": ["body", "session_name"], "msg": "Field required", "input": None}]
    }


def test_json_null_body_is_not_an_object(client, database):
    response = client.post("/sessions", content=b"null", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json() == {"detail": [not_an_object(None)]}
    with database.unit_of_work() as db:
        assert db.execute(select(func.count()).select_from(database.models.sessions)).scalar() == 0


def test_summary_on_a_workflow_session_is_accepted_and_dropped(client, database):
    create(client, {"session_id": "w"}, type="workflow")
    response = client.patch("/sessions/w", json={"summary": {"summary": "ignored"}, "session_name": "W"})
    assert response.status_code == 200
    row = stored_session(database, "w")
    assert (row.summary, row.session_data) == (None, {"session_name": "W"})


def test_trailing_slash_is_the_same_path(client):
    create(client, {"session_id": "s"})
    assert [s["session_id"] for s in client.get("/sessions/").json()["data"]] == ["s"]
    assert client.get("/sessions/s/").json()["session_id"] == "s"


def test_path_with_control_characters_is_404(client):
    response = client.get("/sessions/a%0Ab")
    assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})


def test_a_response_breaking_the_contract_is_a_bare_500(client, monkeypatch, caplog):
    from agentos_sessions.handlers import views

    shaped = views.session_detail
    monkeypatch.setattr(views, "session_detail", lambda *a, **k: {**shaped(*a, **k), "session_name": 5})
    response = client.post("/sessions", json={"session_id": "s"})
    assert (response.status_code, response.headers["content-type"]) == (500, "application/json")
    assert response.json() == {"detail": "Internal server error"}
    assert "does not conform" in caplog.text


def test_an_unexpected_error_is_a_bare_500(client, monkeypatch, caplog):
    from agentos_sessions.persistence import store

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(store, "list_sessions", broken)
    response = client.get("/sessions")
    assert (response.status_code, response.json()) == (500, {"detail": "Internal server error"})
    assert "secret internals" in caplog.text


@pytest.fixture
def run_queries():
    """The SQL statements that read the runs table while the test runs: from SQLAlchemy's engines
    (SQLite) and from the statements the PostgreSQL database logs at DEBUG."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    seen: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _executemany):
        if re.search(r"FROM (\w+\.)?agno_runs\b", statement):
            seen.append(statement)

    class Recorder(logging.Handler):
        def emit(self, entry: logging.LogRecord) -> None:
            record(None, None, entry.getMessage(), None, None, False)

    sql_log = logging.getLogger("agentos_sessions.sql")
    recorder, level = Recorder(), sql_log.level
    sql_log.addHandler(recorder)
    sql_log.setLevel(logging.DEBUG)
    event.listen(Engine, "before_cursor_execute", record)
    yield seen
    event.remove(Engine, "before_cursor_execute", record)
    sql_log.removeHandler(recorder)
    sql_log.setLevel(level)


def test_listing_reads_no_runs_of_named_sessions_and_only_the_first_few_of_unnamed(client, database, run_queries):
    create(client, {"session_id": "named", "session_name": "Named"})
    create(client, {"session_id": "unnamed"})
    for index in range(50):
        for session_id in ("named", "unnamed"):
            add_run(
                database,
                session_id,
                f"{session_id}-{index}",
                index,
                created_at=1757088139 + index,
                agent_id="a",
                messages=[USER_MESSAGE, ASSISTANT_MESSAGE],
            )
    run_queries.clear()
    body = client.get("/sessions", params={"sort_by": "session_id", "sort_order": "asc"}).json()
    assert [(s["session_id"], s["session_name"]) for s in body["data"]] == [
        ("named", "Named"),
        ("unnamed", "What tools do you have?"),
    ]
    [query] = run_queries
    if database.engine.dialect.name == "sqlite":
        # The first runs of the unnamed sessions of the page, ranked on the runs' keys.
        assert "row_number() OVER" in query and re.search(r"position <= \?", query), query
    else:
        # The page itself brings the first run of each session without a stored name.
        assert re.search(r"CASE WHEN \(+page\.session_data ->> .*IS NULL\) THEN \(SELECT ", query), query
        assert re.search(r"FROM \w+\.agno_runs\s+WHERE \w+\.agno_runs\.session_id = page\.session_id", query), query
        assert re.search(r"LIMIT %\(\w+\)s::INTEGER\) END AS first_run", query), query


def test_a_name_found_only_past_the_first_runs_is_still_derived(client, database):
    create(client, {"session_id": "late"})
    for index in range(6):
        messages = [USER_MESSAGE] if index == 5 else [ASSISTANT_MESSAGE]
        add_run(database, "late", f"r{index}", index, created_at=1757088139 + index, agent_id="a", messages=messages)
    assert client.get("/sessions").json()["data"][0]["session_name"] == "What tools do you have?"


def test_state_with_nan_written_by_an_agent_is_served_as_null(tmp_path):
    # agno writes JSON with json.dumps, which spells a float NaN as a bare word; AgentOS serves null.
    # Only SQLite stores it (PostgreSQL's JSONB refuses NaN, from agno as from anyone).
    config = DatabaseSettings(f"sqlite:///{tmp_path / 'agent.db'}")
    with TestClient(create_app(Settings(databases={"main": config}))) as client:
        database = DirectDatabase(config)
        with database.unit_of_work() as db:
            db.execute(
                insert(database.models.sessions).values(
                    session_id="nan",
                    session_type="agent",
                    session_data={"session_state": {"score": float("nan"), "ok": 1}},
                    created_at=1_700_000_000,
                )
            )
        database.dispose()
        response = client.get("/sessions/nan")
    assert response.status_code == 200
    assert response.json()["session_state"] == {"score": None, "ok": 1}
    assert b'"score":null' in response.content


@pytest.mark.parametrize("name", ["x\\ud800y", "x\\udc00", "\\ud800\\ud800"])
def test_a_lone_surrogate_is_422_json_invalid_and_nothing_is_stored(client, database, name):
    body = f'{{"session_id": "s", "session_name": "{name}"}}'.encode()
    response = client.post("/sessions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert {key: error[key] for key in ("type", "msg", "input", "ctx")} == {
        "type": "json_invalid",
        "msg": "JSON decode error",
        "input": {},
        "ctx": {"error": "Lone surrogate in string"},
    }
    assert error["loc"][0] == "body" and 0 < error["loc"][1] <= len(body)
    assert stored_session(database, "s") is None


def test_a_surrogate_pair_escape_is_the_character_it_encodes(client, database):
    body = b'{"session_id": "s", "session_name": "compass \\ud83e\\udded"}'
    response = client.post("/sessions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 201
    assert response.json()["session_name"] == "compass \U0001f9ed"
    assert stored_session(database, "s").session_data == {"session_name": "compass \U0001f9ed"}


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"session_state": ' + b"[" * 3_000 + b"]" * 3_000 + b"}",
        b'{"session_state":' * 50_000 + b"1" + b"}" * 50_000,
    ],
)
def test_json_nested_too_deep_is_422_not_a_500(client, database, body):
    response = client.post("/sessions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["type"], error["ctx"]) == ("json_invalid", {"error": "Nesting too deep"})
    with database.unit_of_work() as db:
        assert db.execute(select(func.count()).select_from(database.models.sessions)).scalar() == 0


@pytest.mark.parametrize("depth", [513, 990, 1_023])
def test_json_nested_deeper_than_512_levels_is_422_at_the_first_opening_too_deep(client, database, depth):
    # Depths that Python code after parsing could not handle (990 was a 500) are refused up front.
    prefix = b'{"session_id": "d", "session_state": '
    body = prefix + b'{"n":' * (depth - 1) + b"1" + b"}" * depth
    response = client.post("/sessions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["type"], error["loc"], error["ctx"]) == (
        "json_invalid",
        ["body", len(prefix) + 5 * (512 - 1)],
        {"error": "Nesting too deep"},
    )
    assert stored_session(database, "d") is None


def test_json_nested_512_levels_is_stored_and_served(client):
    nested: dict = {"a": [1]}
    for _ in range(512 - 3):
        nested = {"n": nested}
    response = client.post("/sessions", json={"session_id": "deep", "session_state": nested})
    assert response.status_code == 201
    assert client.get("/sessions/deep").json()["session_state"] == nested


def test_a_media_type_in_capitals_is_json_too(client, database):
    response = client.post(
        "/sessions", content=b'{"session_id": "c", "session_name": "n"}', headers={"Content-Type": "Application/JSON"}
    )
    assert response.status_code == 201, response.text
    assert stored_session(database, "c").session_data == {"session_name": "n"}


def test_json_nested_a_few_hundred_levels_is_stored_and_served(client):
    nested = {"a": 1}
    for _ in range(300):
        nested = {"n": nested}
    response = client.post("/sessions", json={"session_id": "deep", "session_state": nested})
    assert response.status_code == 201
    assert client.get("/sessions/deep").json()["session_state"] == nested


NUL_PATTERN = "^[^\\x00]*$"


@pytest.mark.parametrize(
    ("method", "path", "body", "loc", "value"),
    [
        ("POST", "/sessions", b'{"session_id": "n", "metadata": {"a\\u0000": 1}}', ["metadata", "a\0"], "a\0"),
        (
            "POST",
            "/sessions",
            b'{"session_id": "n", "session_state": {"deep": [{"x": "a\\u0000b"}]}}',
            ["session_state", "deep", 0, "x"],
            "a\0b",
        ),
        ("PATCH", "/sessions/s", b'{"session_state": {"x": "\\\\\\u0000"}}', ["session_state", "x"], "\\\0"),
        ("PATCH", "/sessions/s", b'{"summary": {"summary": "\\u0000"}}', ["summary", "summary"], "\0"),
        ("POST", "/sessions/s/rename", b'{"session_name": "\\u0000"}', ["session_name"], "\0"),
    ],
)
def test_a_nul_character_in_a_stored_string_is_422_and_nothing_changes(
    client, database, method, path, body, loc, value
):
    """PostgreSQL's JSONB cannot hold NUL: the contract refuses it on every engine, at any depth."""
    create(client, {"session_id": "s", "session_state": {"k": 1}})
    before = database.snapshot()
    response = client.request(method, path, content=body, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (
        422,
        {
            "detail": [
                {
                    "type": "string_pattern_mismatch",
                    "loc": ["body", *loc],
                    "msg": f"String should match pattern '{NUL_PATTERN}'",
                    "input": value,
                    "ctx": {"pattern": NUL_PATTERN},
                }
            ]
        },
    )
    assert database.snapshot() == before


def test_an_escaped_backslash_before_u0000_is_plain_text(client):
    body = b'{"session_id": "t", "session_state": {"path": "C:\\\\u0000"}}'
    response = client.post("/sessions", content=body, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()["session_state"]) == (201, {"path": "C:\\u0000"})


@pytest.mark.parametrize("body", [b"\n", b" ", b"\t\r\n"])
def test_a_whitespace_body_is_json_that_does_not_parse_as_in_agentos(client, database, body):
    """FastAPI takes only an empty body for an absent one: AgentOS 3.1.10 answers this 422."""
    response = client.post("/sessions", content=body, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (
        422,
        {
            "detail": [
                {
                    "type": "json_invalid",
                    "loc": ["body", len(body)],
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": "Expecting value"},
                }
            ]
        },
    )
    with database.unit_of_work() as db:
        assert db.execute(select(func.count()).select_from(database.models.sessions)).scalar() == 0
