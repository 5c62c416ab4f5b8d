"""The session list's filters beyond AgentOS's: metadata containment, time ranges, all together.

Every test runs on the suite's engine (SQLite, or PostgreSQL under `tox -e pg`): the same
answers on both are the point, since PostgreSQL's `@>` does the matching there and a function
of ours does it on SQLite.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from agentos_sessions.persistence import store

# Also run through PgBouncer, in transaction and in session mode, by `tox -e pgbouncer`.
pytestmark = pytest.mark.pooler

METADATA = {
    "travel": {"team": "travel", "tags": ["urgent", "eu"], "level": 1, "owner": {"name": "ann", "org": "x"}},
    "travel-2": {"team": "travel", "tags": ["eu"], "level": 1.0, "flag": True},
    "sales": {"team": "sales", "tags": [{"k": "v", "w": 1}, "eu"], "level": "1", "flag": 1, "gone": None},
    "empty": {},
    "none": None,
}


@pytest.fixture
def seeded(client, database):
    for session_id, metadata in METADATA.items():
        response = client.post("/sessions", json={"session_id": session_id, "metadata": metadata})
        assert response.status_code == 201
    return client


def _listed(client, **params) -> list[str]:
    params = {key: json.dumps(value) if key == "metadata" else value for key, value in params.items()}
    response = client.get("/sessions", params={"sort_by": "session_id", "sort_order": "asc", **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["meta"]["total_count"] == len(body["data"])
    return [session["session_id"] for session in body["data"]]


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ({}, ["empty", "sales", "travel", "travel-2"]),
        ({"team": "travel"}, ["travel", "travel-2"]),
        ({"team": "travel", "flag": True}, ["travel-2"]),
        # Numbers by value, never a boolean or a string.
        ({"level": 1}, ["travel", "travel-2"]),
        ({"level": 1.0}, ["travel", "travel-2"]),
        ({"level": "1"}, ["sales"]),
        ({"flag": 1}, ["sales"]),
        ({"flag": True}, ["travel-2"]),
        # Arrays contain each element given, anywhere, in any order.
        ({"tags": ["eu"]}, ["sales", "travel", "travel-2"]),
        ({"tags": ["eu", "urgent"]}, ["travel"]),
        ({"tags": []}, ["sales", "travel", "travel-2"]),
        ({"tags": "eu"}, []),
        ({"tags": [{"k": "v"}]}, ["sales"]),
        ({"tags": [{"k": "other"}]}, []),
        # Objects nest the same way.
        ({"owner": {"name": "ann"}}, ["travel"]),
        ({"owner": {}}, ["travel"]),
        ({"owner": {"name": "ann", "org": "y"}}, []),
        ({"owner": "ann"}, []),
        # A null is a value that must be there.
        ({"gone": None}, ["sales"]),
        ({"missing": None}, []),
        ({"team": "nobody"}, []),
    ],
)
def test_metadata_filter_keeps_sessions_whose_metadata_contains_the_object(seeded, wanted, expected):
    assert _listed(seeded, metadata=wanted) == expected


def test_metadata_filter_sees_metadata_written_by_agno_as_stored(seeded, database):
    with database.unit_of_work() as db:
        sessions = database.models.sessions
        agnos = {"team": "travel", "agno_component_version": 2}
        db.execute(update(sessions).where(sessions.c.session_id == "none").values(metadata=agnos))
    assert _listed(seeded, metadata={"agno_component_version": 2}) == ["none"]
    assert _listed(seeded, metadata={"team": "travel"}) == ["none", "travel", "travel-2"]


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("{", {"type": "json_invalid", "loc": ["query", "metadata"], "input": "{"}),
        ("[1]", {"type": "dict_type", "loc": ["query", "metadata"], "input": [1]}),
        ('"team"', {"type": "dict_type", "loc": ["query", "metadata"], "input": "team"}),
        ('{"a": "\\u0000"}', {"type": "string_pattern_mismatch", "loc": ["query", "metadata", "a"]}),
        (
            "[" * 600 + "]" * 600,
            {"type": "json_invalid", "loc": ["query", "metadata"], "ctx": {"error": "Nesting too deep"}},
        ),
    ],
)
def test_a_metadata_filter_that_is_not_a_json_object_is_422(seeded, raw, error):
    response = seeded.get("/sessions", params={"metadata": raw})
    assert response.status_code == 422
    [entry] = response.json()["detail"]
    assert {key: entry[key] for key in error} == error


def _add(database, session_id, created_at, updated_at, **columns):
    with database.engine.begin() as db:
        store.insert_new_session(
            db,
            database.models,
            session_id=session_id,
            session_type=columns.pop("session_type", "agent"),
            created_at=created_at,
            updated_at=updated_at,
            **columns,
        )


@pytest.fixture
def timed(client, database):
    _add(database, "t100", 100, 100)
    _add(database, "t200", 200, 500)
    _add(database, "t300", 300, None)  # no update time: it matches no update bound
    _add(database, "t400", 400, 400)
    return client


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"created_after": 200}, ["t200", "t300", "t400"]),
        ({"created_before": 200}, ["t100", "t200"]),
        ({"created_after": 200, "created_before": 300}, ["t200", "t300"]),
        ({"created_after": 301, "created_before": 399}, []),
        ({"updated_after": 400}, ["t200", "t400"]),
        ({"updated_before": 300}, ["t100"]),
        ({"updated_after": 400, "updated_before": 400}, ["t400"]),
        ({"created_before": 250, "updated_after": 450}, ["t200"]),
        ({"created_after": -(2**63), "created_before": 2**63 - 1}, ["t100", "t200", "t300", "t400"]),
        ({"updated_after": -(2**63), "updated_before": 2**63 - 1}, ["t100", "t200", "t400"]),
    ],
)
def test_time_ranges_are_inclusive_unix_seconds(timed, params, expected):
    assert _listed(timed, **params) == expected


@pytest.mark.parametrize("name", ["created_after", "created_before", "updated_after", "updated_before"])
def test_a_time_bound_that_is_not_an_integer_is_422(timed, name):
    response = timed.get("/sessions", params={name: "yesterday"})
    assert response.status_code == 422
    [entry] = response.json()["detail"]
    assert (entry["type"], entry["loc"], entry["input"]) == ("int_parsing", ["query", name], "yesterday")


def test_every_filter_together_must_hold_and_the_count_is_exact(client, database):
    combos = [
        (user, kind, component, team, created)
        for user in ("u1", "u2")
        for kind in ("agent", "team")
        for component in ("c1", "c2")
        for team in ("travel", "sales")
        for created in (100, 200)
    ]
    for n, (user, kind, component, team, created) in enumerate(combos):
        _add(
            database,
            f"s{n:02d}",
            created,
            created + 1,
            session_type=kind,
            user_id=user,
            metadata_={"team": team, "n": n},
            **{f"{kind}_id": component},
        )
    expected = [
        f"s{n:02d}"
        for n, combo in enumerate(combos)
        if combo[0] == "u1" and combo[1] == "agent" and combo[2] == "c1" and combo[3] == "travel" and combo[4] >= 150
    ]
    assert len(expected) == 1
    filters = {
        "user_id": "u1",
        "type": "agent",
        "component_id": "c1",
        "metadata": {"team": "travel"},
        "created_after": 150,
        "updated_before": 201,
    }
    assert _listed(client, **filters) == expected
    # Without a type, component_id matches whichever component column holds it.
    without_type = {key: value for key, value in filters.items() if key != "type"}
    expected = [
        f"s{n:02d}"
        for n, combo in enumerate(combos)
        if combo[0] == "u1" and combo[2] == "c1" and combo[3] == "travel" and combo[4] >= 150
    ]
    assert _listed(client, **without_type) == expected
    assert len(expected) == 2
    paged = client.get("/sessions", params={**without_type, "metadata": '{"team": "travel"}', "limit": 1}).json()
    assert paged["meta"] == {**paged["meta"], "total_count": 2, "total_pages": 2}


def test_ties_are_ordered_by_session_id_and_pages_neither_repeat_nor_skip_while_sessions_are_added(client, database):
    for n in range(30):
        _add(database, f"tie-{n:02d}", 1000, 1000)
    seen: list[str] = []
    for page in range(1, 7):
        response = client.get("/sessions", params={"sort_order": "asc", "limit": 5, "page": page})
        seen += [session["session_id"] for session in response.json()["data"]]
        # Newer sessions, added between pages, sort after every page read so far.
        _add(database, f"new-{page}", 2000 + page, 2000 + page)
    assert seen == [f"tie-{n:02d}" for n in range(30)]
    descending = client.get("/sessions", params={"created_before": 1000, "limit": 100}).json()["data"]
    assert [session["session_id"] for session in descending] == [f"tie-{n:02d}" for n in reversed(range(30))]
