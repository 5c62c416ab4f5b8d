"""Migrations as history: every way to the newest revision ends in the same schema.

Three databases on the suite's engine (a SQLite file each, or a PostgreSQL schema each):
migrated from nothing to the newest revision at once; upgraded one revision at a time, each in
a transaction of its own, as releases meet a database over time; and made by agno 3.1.10 (its
SqliteDb or PostgresDb creating its tables) before migrating adopts it. Their schemas are compared
whole: tables, columns (name, type as compiled, nullability, default), primary keys, foreign
keys, unique and check constraints, indexes (name, columns or expressions, uniqueness, options),
and the database's own DDL of each (SQLite's sqlite_master; PostgreSQL's pg_indexes.indexdef and
pg_get_constraintdef). The first revision is agno's tables exactly, and the newest is what the
models declare, so the server reads and writes the tables it was written for.
"""

from __future__ import annotations

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.schema import CreateSchema

from agentos_sessions.persistence import schema
from agentos_sessions.settings import DatabaseSettings
from tests.agno_storage import create_agno_tables
from tests.databases import fresh_database
from tests.direct import DirectDatabase

# Oldest first.
SCRIPTS = list(reversed(list(ScriptDirectory(str(schema.MIGRATIONS)).walk_revisions())))
REVISIONS = [script.revision for script in SCRIPTS]
SCHEMA = "<schema>"


@pytest.fixture(params=[{}, {"session_table": "archive", "runs_table": "archive_runs"}], ids=["agno", "configured"])
def table_names(request) -> dict[str, str]:
    """agno's table names, or names of one's own (the revisions are given them)."""
    return request.param


@pytest.fixture
def new_database(tmp_path, table_names):
    """Fresh, empty databases (``new_database(name)``), with the table names of the test."""
    return lambda name: fresh_database(tmp_path, name, **table_names)


def describe(database: DatabaseSettings) -> dict[str, dict]:
    """Every table of the database (SQLite) or of its schema (PostgreSQL) as the database
    describes it, the schema's name written as <schema>; agno_schema_versions with its rows."""
    direct = DirectDatabase(database)
    try:
        table_schema = direct.models.sessions.schema
        dialect = direct.engine.dialect
        with direct.engine.connect() as db:
            inspector = inspect(db)
            tables = {}
            for table in inspector.get_table_names(schema=table_schema):
                tables[table] = {
                    "columns": [
                        {**column, "type": column["type"].compile(dialect)}
                        for column in inspector.get_columns(table, table_schema)
                    ],
                    "primary key": inspector.get_pk_constraint(table, table_schema),
                    "foreign keys": [
                        {**key, "referred_schema": SCHEMA if key["referred_schema"] == table_schema else None}
                        for key in inspector.get_foreign_keys(table, table_schema)
                    ],
                    "unique constraints": inspector.get_unique_constraints(table, table_schema),
                    "check constraints": inspector.get_check_constraints(table, table_schema),
                    "indexes": sorted(inspector.get_indexes(table, table_schema), key=lambda index: index["name"]),
                    "options": inspector.get_table_options(table, table_schema),
                    "ddl": _ddl(db, table, table_schema),
                }
            if "agno_schema_versions" in tables:
                versions = f"{table_schema}.agno_schema_versions" if table_schema else "agno_schema_versions"
                rows = db.execute(text(f"SELECT table_name, version FROM {versions} ORDER BY table_name"))
                tables["agno_schema_versions"]["rows"] = sorted(tuple(row) for row in rows)
            return tables
    finally:
        direct.dispose()


def _ddl(db, table: str, table_schema: str | None) -> list[tuple]:
    """The database's own DDL of a table and its indexes and constraints."""
    if db.dialect.name == "sqlite":
        listed = text("SELECT type, name, sql FROM sqlite_master WHERE tbl_name = :table ORDER BY type, name")
        return [tuple(row) for row in db.execute(listed, {"table": table})]
    indexes = text(
        "SELECT 'index', indexname, indexdef FROM pg_indexes"
        " WHERE schemaname = :schema AND tablename = :table ORDER BY indexname"
    )
    constraints = text(
        "SELECT 'constraint', con.conname, pg_get_constraintdef(con.oid) FROM pg_constraint con"
        " JOIN pg_class rel ON rel.oid = con.conrelid JOIN pg_namespace ns ON ns.oid = rel.relnamespace"
        " WHERE ns.nspname = :schema AND rel.relname = :table ORDER BY con.conname"
    )
    rows = [*db.execute(indexes, {"schema": table_schema, "table": table})]
    rows += db.execute(constraints, {"schema": table_schema, "table": table})
    return [(kind, name, definition.replace(f"{table_schema}.", f"{SCHEMA}.")) for kind, name, definition in rows]


def migrate(database: DatabaseSettings, revision: str = "head") -> tuple[str | None, str]:
    """Migrate in one transaction, as `agentos-sessions migrate` does."""
    direct = DirectDatabase(database)
    try:
        with direct.engine.begin() as db:
            return schema.upgrade(db, direct.models, revision)
    finally:
        direct.dispose()


def differences(database: DatabaseSettings) -> list[str]:
    """What `agentos-sessions check` reports of the database."""
    direct = DirectDatabase(database)
    try:
        with direct.engine.connect() as db:
            return schema.differences(db, direct.models)
    finally:
        direct.dispose()


def test_the_revisions_are_one_line_to_the_newest():
    assert [script.down_revision for script in SCRIPTS] == [None, *REVISIONS[:-1]]
    assert sorted(REVISIONS) == REVISIONS
    assert REVISIONS[-1] == schema.head()


@pytest.mark.interop
def test_at_once_one_revision_at_a_time_and_adopted_from_agno_are_one_schema(new_database, table_names):
    at_once = new_database("at-once")
    assert migrate(at_once) == (None, schema.head())

    stepwise = new_database("stepwise")
    for before, revision in zip([None, *REVISIONS[:-1]], REVISIONS, strict=True):
        assert migrate(stepwise, revision) == (before, revision)

    adopted = new_database("adopted")
    create_agno_tables(adopted)
    assert migrate(adopted) == (None, schema.head())

    expected = describe(at_once)
    sessions = table_names.get("session_table", "agno_sessions")
    runs = table_names.get("runs_table", "agno_runs")
    version_table = f"agentos_{sessions}_version"
    assert set(expected) == {sessions, runs, "agno_schema_versions", version_table}
    assert expected["agno_schema_versions"]["rows"] == sorted([(sessions, "3.0.0"), (runs, "3.0.0")])
    assert describe(stepwise) == expected
    assert describe(adopted) == expected
    assert differences(at_once) == differences(stepwise) == differences(adopted) == []


@pytest.mark.interop
def test_the_first_revision_is_the_tables_agno_makes(new_database, table_names):
    ours = new_database("ours")
    assert migrate(ours, REVISIONS[0]) == (None, REVISIONS[0])
    agnos = new_database("agnos")
    create_agno_tables(agnos)

    described = describe(ours)
    del described[f"agentos_{table_names.get('session_table', 'agno_sessions')}_version"]
    assert described == describe(agnos)


def test_the_newest_revision_is_what_the_models_declare(new_database):
    migrated = new_database("migrated")
    migrate(migrated)
    declared = new_database("declared")
    direct = DirectDatabase(declared)
    try:
        with direct.engine.begin() as db:
            if direct.models.sessions.schema is not None:
                db.execute(CreateSchema(direct.models.sessions.schema))
            direct.models.metadata.create_all(db)
        tables = [direct.models.sessions.name, direct.models.runs.name]
    finally:
        direct.dispose()

    described, expected = describe(declared), describe(migrated)
    assert sorted(described) == sorted(tables)
    assert described == {table: expected[table] for table in tables}
