"""PATCH with Content-Type application/merge-patch+json: RFC 7396 on the stored session.

Plain application/json keeps AgentOS's replace semantics (tests/api/test_sessions.py); these
tests check the merge, and that both media types are told apart.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from tests.api.helpers import stored_session

# Also run through PgBouncer, in transaction and in session mode, by `tox -e pgbouncer`.
pytestmark = pytest.mark.pooler

MERGE = {"Content-Type": "application/merge-patch+json"}


def _merge(client, body, session_id="s", headers=None, **params):
    return client.patch(
        f"/sessions/{session_id}", content=json.dumps(body), headers={**MERGE, **(headers or {})}, params=params
    )


def _create(client, session_id="s", **body):
    response = client.post("/sessions", json={"session_id": session_id, **body})
    assert response.status_code == 201
    return response


STATE = {"keep": 1, "replace": "old", "remove": True, "nested": {"a": 1, "b": {"c": 2}}, "list": [1, 2]}


def test_merge_sets_replaces_and_removes_keys_and_keeps_the_rest(client, database):
    _create(client, session_state=STATE, metadata={"team": "x", "tags": ["a"]}, session_name="named")
    patch = {
        "session_state": {
            "replace": "new",
            "remove": None,
            "added": {"deep": [None, 1]},
            "nested": {"b": {"c": None, "d": 4}},
            "list": [3],
        },
        "metadata": {"team": None, "owner": "bob"},
    }
    response = _merge(client, patch)
    assert response.status_code == 200, response.text
    state = {"keep": 1, "replace": "new", "nested": {"a": 1, "b": {"d": 4}}, "list": [3], "added": {"deep": [None, 1]}}
    body = response.json()
    assert body["session_state"] == state
    assert body["metadata"] == {"tags": ["a"], "owner": "bob"}
    assert body["session_name"] == "named"
    row = stored_session(database, "s")
    assert row.session_data == {"session_state": state, "session_name": "named"}
    assert row.metadata_ == {"tags": ["a"], "owner": "bob"}
    assert client.get("/sessions/s").json() == {**client.get("/sessions/s").json(), **{"session_state": state}}


def test_the_same_body_as_plain_json_replaces_instead(client, database):
    _create(client, session_state={"keep": 1})
    response = client.patch("/sessions/s", json={"session_state": {"added": 2}})
    assert response.json()["session_state"] == {"added": 2}
    _merge(client, {"session_state": {"more": 3}})
    assert stored_session(database, "s").session_data == {"session_state": {"added": 2, "more": 3}}


def test_null_members_remove_the_state_the_name_and_the_metadata(client, database):
    _create(client, session_state={"a": 1}, session_name="named", metadata={"m": 1})
    response = _merge(client, {"session_state": None, "session_name": None, "metadata": None})
    assert response.status_code == 200
    body = response.json()
    assert (body["session_state"], body["metadata"], body["session_name"]) == (None, None, "")
    row = stored_session(database, "s")
    assert (row.session_data, row.metadata_) == ({}, None)


def test_merging_into_nothing_stored_creates_the_objects(client, database):
    _create(client)
    assert stored_session(database, "s").session_data is None
    response = _merge(client, {"session_state": {"a": {"b": 1}, "gone": None}, "metadata": {"m": None}})
    assert (response.json()["session_state"], response.json()["metadata"]) == ({"a": {"b": 1}}, {})
    row = stored_session(database, "s")
    assert (row.session_data, row.metadata_) == ({"session_state": {"a": {"b": 1}}}, {})


def test_an_empty_patch_changes_nothing_but_the_update_time(client, database):
    _create(client, session_state={"a": 1}, metadata={"m": 1})
    before = stored_session(database, "s")
    response = _merge(client, {})
    assert response.status_code == 200
    after = stored_session(database, "s")
    assert (after.session_data, after.metadata_, after.summary) == (before.session_data, before.metadata_, None)
    assert after.updated_at >= before.updated_at


def test_a_summary_is_merged_too(client, database):
    _create(client)
    summary = {"summary": "first", "topics": ["x"], "updated_at": "2026-01-02T03:04:05Z"}
    client.patch("/sessions/s", json={"summary": summary})
    response = _merge(client, {"summary": {"summary": "second"}})
    stored = {"summary": "second", "topics": ["x"], "updated_at": "2026-01-02T03:04:05+00:00"}
    assert stored_session(database, "s").summary == stored
    assert response.json()["session_summary"] == stored
    _merge(client, {"summary": {"summary": "third", "topics": None, "updated_at": "2026-02-01T00:00:00+01:00"}})
    assert stored_session(database, "s").summary == {"summary": "third", "updated_at": "2026-02-01T00:00:00+01:00"}
    _merge(client, {"summary": None})
    assert stored_session(database, "s").summary is None


def test_a_workflow_session_takes_no_summary_as_with_plain_json(client, database):
    _create(client, session_state={"a": 1})
    client.post("/sessions?type=workflow", json={"session_id": "w", "session_state": {"a": 1}})
    response = _merge(client, {"summary": {"summary": "s"}, "session_state": {"b": 2}}, session_id="w")
    assert response.status_code == 200
    row = stored_session(database, "w")
    assert (row.summary, row.session_data["session_state"]) == (None, {"a": 1, "b": 2})


def test_metadata_keys_agno_owns_are_kept_whatever_the_patch_says(client, database):
    _create(client, metadata={"mine": 1})
    with database.unit_of_work() as db:
        sessions = database.models.sessions
        agnos = {"mine": 1, "agno_component_version": 3}
        db.execute(update(sessions).where(sessions.c.session_id == "s").values(metadata=agnos))
    response = _merge(client, {"metadata": {"agno_component_version": None, "agno_dispatch_depth": 9, "mine": 2}})
    assert response.status_code == 200
    assert stored_session(database, "s").metadata_ == {"mine": 2, "agno_component_version": 3}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"session_id": "other"},
            {"type": "extra_forbidden", "loc": ["body", "session_id"], "msg": "Extra inputs are not permitted"},
        ),
        ({"session_state": [1]}, {"type": "dict_type", "loc": ["body", "session_state"]}),
        ({"metadata": "m"}, {"type": "dict_type", "loc": ["body", "metadata"]}),
        ({"session_name": 5}, {"type": "string_type", "loc": ["body", "session_name"]}),
        (
            {"session_state": {"k": "a\x00b"}},
            {"type": "string_pattern_mismatch", "loc": ["body", "session_state", "k"]},
        ),
        ({"summary": {"topics": ["t"]}}, {"type": "missing", "loc": ["body", "summary", "summary"]}),
        (
            {"summary": {"summary": "s", "other": 1}},
            {"type": "extra_forbidden", "loc": ["body", "summary", "other"], "msg": "Extra inputs are not permitted"},
        ),
    ],
)
def test_a_patch_the_contract_refuses_is_422_and_changes_nothing(client, database, body, error):
    _create(client, session_state={"a": 1})
    before = database.snapshot()
    response = _merge(client, body)
    assert response.status_code == 422
    [entry] = response.json()["detail"]
    assert {key: entry[key] for key in error} == error
    assert database.snapshot() == before


def test_a_patch_that_is_not_an_object_is_422(client, database):
    _create(client)
    before = database.snapshot()
    for raw in (b"[]", b"null", b'"x"', b"{"):
        response = client.patch("/sessions/s", content=raw, headers=MERGE)
        assert response.status_code == 422, raw
    assert database.snapshot() == before


def test_the_media_type_is_recognised_in_any_case_and_with_a_charset(client, database):
    _create(client, session_state={"a": 1})
    headers = {"Content-Type": "Application/Merge-Patch+JSON; charset=utf-8"}
    response = client.patch("/sessions/s", content=b'{"session_state": {"b": 2}}', headers=headers)
    assert response.status_code == 200, response.text
    assert stored_session(database, "s").session_data == {"session_state": {"a": 1, "b": 2}}


def test_an_absent_session_is_404(client, database):
    response = _merge(client, {"session_state": {"a": 1}}, session_id="none")
    assert (response.status_code, response.json()) == (404, {"detail": "Session with id 'none' not found"})
    assert stored_session(database, "none") is None


def test_if_match_guards_a_merge_like_any_change(client, database):
    tag = _create(client, session_state={"a": 1}).headers["etag"]
    fresh = _merge(client, {"session_state": {"b": 2}}, headers={"If-Match": tag})
    assert fresh.status_code == 200
    before = database.snapshot()
    stale = _merge(client, {"session_state": {"c": 3}}, headers={"If-Match": tag})
    assert (stale.status_code, stale.json()) == (
        412,
        {"detail": "Session with id 's' has changed: If-Match does not name its ETag"},
    )
    assert database.snapshot() == before
    assert _merge(client, {"session_state": {"c": 3}}, headers={"If-Match": fresh.headers["etag"]}).status_code == 200
    assert stored_session(database, "s").session_data == {"session_state": {"a": 1, "b": 2, "c": 3}}


def test_concurrent_merges_of_different_keys_all_take_effect(client, database):
    from concurrent.futures import ThreadPoolExecutor

    _create(client, session_state={"base": 0}, metadata={"base": 0})
    writers = 32

    def merge(n: int) -> int:
        body = {"session_state": {f"k{n}": n, "shared": {f"k{n}": n}}, "metadata": {f"m{n}": n}}
        return _merge(client, body).status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(merge, range(writers))) == [200] * writers
    row = stored_session(database, "s")
    assert row.session_data["session_state"] == {
        "base": 0,
        **{f"k{n}": n for n in range(writers)},
        "shared": {f"k{n}": n for n in range(writers)},
    }
    assert row.metadata_ == {"base": 0, **{f"m{n}": n for n in range(writers)}}
