"""Store functions against a real database."""

from __future__ import annotations

import pytest
from sqlalchemy import Text, cast, column, event, func, insert, inspect, select, table

from agentos_sessions.persistence import schema, store
from agentos_sessions.settings import DatabaseSettings
from tests.direct import DirectDatabase


@pytest.fixture
def database(database_settings):
    """An opened database with agno's tables created."""
    database = DirectDatabase(database_settings)
    with database.engine.begin() as db:
        schema.upgrade(db, database.models)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_database(tmp_path):
    """A SQLite database with agno's tables, whichever engine the suite runs on."""
    database = DirectDatabase(DatabaseSettings(f"sqlite:///{tmp_path / 'plans.db'}"))
    with database.engine.begin() as db:
        schema.upgrade(db, database.models)
    yield database
    database.dispose()


def add(database, session_id, **columns):
    defaults = {"session_type": "agent", "created_at": 100, "updated_at": 100}
    with database.engine.begin() as db:
        store.insert_new_session(db, database.models, session_id=session_id, **{**defaults, **columns})


def add_run(database, session_id, run_id, index, *, created_at=100, **run_data):
    with database.unit_of_work() as db:
        db.execute(
            insert(database.models.runs).values(
                run_id=run_id,
                session_id=session_id,
                run_type="agent",
                run_index=index,
                run_data={"run_id": run_id, **run_data},
                created_at=created_at,
            )
        )


def test_missing_tables_are_created_once_and_recorded_like_agno(database):
    table_schema = database.models.runs.schema
    with database.engine.begin() as db:
        assert schema.upgrade(db, database.models) == (schema.head(), schema.head())
        versions_table = table("agno_schema_versions", column("table_name"), column("version"), schema=table_schema)
        versions = dict(db.execute(select(versions_table.c.table_name, versions_table.c.version)).all())
    assert versions == {"agno_sessions": "3.0.0", "agno_runs": "3.0.0"}
    indexes = {i["name"] for i in inspect(database.engine).get_indexes("agno_runs", schema=table_schema)}
    assert "idx_agno_runs_session_id_run_index" in indexes


def test_list_sessions_sorts_with_session_id_tie_breaker(database):
    for sid in ("b", "a", "c"):
        add(database, sid)
    with database.engine.begin() as db:
        rows, total = store.list_sessions(db, database.models, sort_by="created_at", sort_order="asc")
        assert ([r.session_id for r in rows], total) == (["a", "b", "c"], 3)
        rows, _ = store.list_sessions(db, database.models, sort_by="created_at", sort_order="desc", limit=2)
        assert [r.session_id for r in rows] == ["c", "b"]


def test_list_sessions_sorts_by_updated_at_falling_back_to_created_at(database):
    add(database, "old", created_at=10, updated_at=None)
    add(database, "new", created_at=5, updated_at=50)
    with database.engine.begin() as db:
        rows, _ = store.list_sessions(db, database.models, sort_by="updated_at", sort_order="desc")
    assert [r.session_id for r in rows] == ["new", "old"]


def test_name_search_matches_the_name_only(database):
    add(database, "named", session_data={"session_name": "Ünïcode Trip"})
    add(database, "stateful", session_data={"session_state": {"x": "trip"}})
    with database.engine.begin() as db:
        rows, total = store.list_sessions(db, database.models, session_name="üNÏCODE")
        assert ([r.session_id for r in rows], total) == (["named"], 1)
        rows, total = store.list_sessions(db, database.models, session_name="trip")
        assert ([r.session_id for r in rows], total) == (["named"], 1)


def test_runs_come_in_run_index_order_and_iter_runs_stops_early(database):
    add(database, "s")
    for index in (2, 0, 1, 3, 4, 5):
        add_run(database, "s", f"r{index}", index)
    with database.engine.begin() as db:
        assert [r["run_id"] for r in store.get_runs(db, database.models, "s")] == [f"r{i}" for i in range(6)]
        runs = store.iter_runs(db, database.models, "s", batch=2)
        assert [next(runs)["run_id"], next(runs)["run_id"], next(runs)["run_id"]] == ["r0", "r1", "r2"]


def test_delete_sessions_removes_runs_and_respects_owner(database):
    add(database, "mine", user_id="u")
    add(database, "theirs", user_id="v")
    add_run(database, "mine", "r", 0)
    with database.engine.begin() as db:
        assert store.delete_sessions(db, database.models, ["mine", "theirs", "absent"], user_id="u") == 1
    with database.engine.begin() as db:
        assert store.get_session(db, database.models, "mine") is None
        assert store.get_session(db, database.models, "theirs") is not None
        assert db.execute(select(func.count()).select_from(database.models.runs)).scalar() == 0


def test_json_columns_are_written_as_agno_writes_them(database):
    add(database, "s", session_data={"session_name": "Café"}, metadata_=None)
    sessions = database.models.sessions
    as_text = [cast(sessions.c[name], Text) for name in ("session_data", "metadata", "team_data")]
    with database.engine.connect() as connection:
        raw = connection.execute(select(*as_text)).one()
    if database.engine.dialect.name == "sqlite":
        # agno's json.dumps text, ASCII-escaped.
        assert tuple(raw) == ('{"session_name": "Caf\\u00e9"}', "null", None)
    else:
        # JSONB keeps values, not text; a None given for a JSON column is JSON null, as agno's is.
        assert tuple(raw) == ('{"session_name": "Café"}', "null", None)


def test_update_session_only_touches_given_fields(database):
    add(database, "s", session_data={"session_name": "A", "session_state": {"x": 1}}, metadata_={"m": 1})
    with database.engine.begin() as db:
        row = store.get_session(db, database.models, "s")
        store.update_session(db, database.models, row, session_state={"y": 2})
    with database.engine.begin() as db:
        row = store.get_session(db, database.models, "s")
        assert (row.session_data, row.metadata_) == ({"session_name": "A", "session_state": {"y": 2}}, {"m": 1})
        assert row.updated_at > 100


USER_INDEX = "idx_agno_sessions_user_id_session_type_created_at_session_id"


@pytest.mark.parametrize(
    ("filters", "index", "sorts"),
    [
        ({}, "idx_agno_sessions_created_at_session_id", False),
        ({"user_id": "u", "session_type": "agent"}, USER_INDEX, False),
        # One user's sessions of all types: three runs of the index merged by a sort.
        ({"user_id": "u"}, USER_INDEX, True),
    ],
)
def test_a_page_in_default_order_comes_from_an_index(sqlite_database, filters, index, sorts):
    """Read from SQLite's query plans (on PostgreSQL the planner's choice depends on statistics)."""
    database = sqlite_database
    statements = []
    with database.engine.begin() as db:
        listener = lambda *args: statements.append((args[2], args[3]))  # noqa: E731
        event.listen(db, "before_cursor_execute", listener)
        store.list_sessions(db, database.models, page=3, **filters)
        event.remove(db, "before_cursor_execute", listener)
        # The page statement, which counts the matching sessions in a scalar subquery.
        sql, params = statements[0]
        steps = db.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()
    count_plan, page_plan = _subquery_and_rest(steps)
    assert "USING COVERING INDEX" in count_plan
    assert f"USING INDEX {index}" in page_plan
    assert ("TEMP B-TREE" in page_plan) is sorts


def _subquery_and_rest(steps) -> tuple[str, str]:
    """SQLite's query plan steps (id, parent, _, detail) of a statement with one scalar subquery:
    the subquery's steps, and the others."""
    parents = {step_id: parent for step_id, parent, _, _ in steps}
    details = {step_id: detail for step_id, _, _, detail in steps}

    def in_subquery(step_id) -> bool:
        while step_id:
            if details.get(step_id, "").startswith("SCALAR SUBQUERY"):
                return True
            step_id = parents.get(step_id, 0)
        return False

    subquery = [detail for step_id, _, _, detail in steps if in_subquery(step_id)]
    rest = [detail for step_id, _, _, detail in steps if not in_subquery(step_id)]
    return " | ".join(subquery), " | ".join(rest)


def test_first_runs_of_several_sessions_in_agnos_order(database):
    for sid in ("a", "b", "empty"):
        add(database, sid)
    # run_index first, then created_at, then run_id, as agno orders a session's runs.
    for run_id, session_id, index, created_at in [
        ("a-late", "a", 0, 200),
        ("a-early", "a", 0, 100),
        ("a-next", "a", 1, 50),
        ("b-1", "b", 1, 10),
        ("b-0", "b", 0, 20),
    ]:
        add_run(database, session_id, run_id, index, created_at=created_at)
    with database.engine.begin() as db:
        first = store.first_runs(db, database.models, ["a", "b", "empty"], count=2)
    assert {sid: [run["run_id"] for run in runs] for sid, runs in first.items()} == {
        "a": ["a-early", "a-late"],
        "b": ["b-0", "b-1"],
        "empty": [],
    }


# RFC 7396, Appendix A: every example, target and patch to result.
RFC_7396_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_7396_EXAMPLES)
def test_merge_patch_gives_rfc_7396s_results(target, patch, result):
    import copy

    kept_target, kept_patch = copy.deepcopy(target), copy.deepcopy(patch)
    assert store.merge_patch(target, patch) == result
    assert (target, patch) == (kept_target, kept_patch)


def _plan(db, m, filters: dict, values: dict) -> str:
    """The query plan of the page statement store.list_sessions runs for ``filters``."""
    options = {"session_type": None, "by_component": False, "by_user": False, "by_name": False}
    options |= {"by_metadata": False, "bounds": frozenset(), "sort_by": "created_at", "sort_order": "desc"}
    _count, page_of = store._list_statements(m, db.dialect.name, **(options | filters))
    compiled = page_of.compile(dialect=db.dialect)
    values = {**compiled.params, **values, "limit": 20, "offset": 0}
    if db.dialect.name == "sqlite":
        rows = db.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", tuple(values[n] for n in compiled.positiontup))
        return "\n".join(row[-1] for row in rows)
    db.exec_driver_sql("SET LOCAL enable_seqscan = off")  # tiny test tables: would the index serve?
    return "\n".join(row[0] for row in db.exec_driver_sql(f"EXPLAIN {compiled}", values))


@pytest.mark.parametrize(
    ("filters", "values", "index"),
    [
        (
            {"session_type": "agent", "by_component": True},
            {"session_type": "agent", "component_id": "c"},
            "idx_agno_sessions_agent_id_created_at_session_id",
        ),
        (
            {"session_type": "workflow", "by_component": True, "by_user": True},
            {"session_type": "workflow", "component_id": "c", "user_id": "u"},
            "idx_agno_sessions_",  # the user's or the component's: either narrows to few rows
        ),
        ({"bounds": frozenset({"created_after"})}, {"created_after": 5}, "idx_agno_sessions_created_at_session_id"),
        (
            {"bounds": frozenset({"updated_after", "updated_before"})},
            {"updated_after": 5, "updated_before": 9},
            "idx_agno_sessions_updated_at_session_id",
        ),
    ],
)
def test_the_list_filters_are_served_by_an_index(database, filters, values, index):
    with database.engine.begin() as db:
        plan = _plan(db, database.models, filters, values)
    assert index in plan, plan
    assert "SCAN agno_sessions\n" not in plan + "\n" and "Seq Scan" not in plan, plan


@pytest.mark.pg  # SQLite has no index for JSON containment: it tests the rows the other filters leave
def test_the_metadata_filter_is_served_by_a_gin_index_on_postgresql(database):
    with database.engine.begin() as db:
        assert db.dialect.name == "postgresql", "run with tox -e pg"
        plan = _plan(db, database.models, {"by_metadata": True}, {"metadata": '{"team": "travel"}'})
    assert "idx_agno_sessions_metadata_gin" in plan, plan


def _image(key: str) -> dict:
    return {"id": key, "media_reference": {"media_id": key, "storage_key": key, "storage_backend": "local"}}


def test_only_the_runs_that_mention_a_media_key_are_read(database):
    add(database, "s")
    add(database, "t", session_type="workflow")
    add_run(database, "s", "r0", 0, input={"input_content": "no media"})
    # agno's SQLite JSON may hold a NaN (json.dumps writes it; PostgreSQL's jsonb refuses it).
    nan = {"score": float("nan")} if database.engine.dialect.name == "sqlite" else {}
    add_run(database, "s", "r1", 1, images=[_image("agno/media/a.png")], **nan)
    add_run(database, "s", "r2", 2, input={"images": [_image("agno/media/b.png")]})
    add_run(database, "s", "r3", 3, content="a text that names agno/media/a.png without quotes")
    # Another session's run naming the key is not read.
    add_run(database, "t", "t0", 0, images=[_image("agno/media/a.png")])
    with database.unit_of_work() as db:
        holding = store.runs_holding(db, database.models, "s", "agno/media/a.png")
        with_media = store.runs_with_media(db, database.models, ["s", "t", "absent"])
    assert [run["run_id"] for run in holding] == ["r1"]
    assert {sid: (kind, [run["run_id"] for run in runs]) for sid, (kind, runs) in with_media.items()} == {
        "s": ("agent", ["r1", "r2"]),
        "t": ("workflow", ["t0"]),
    }
