"""Migrations: what `agentos-sessions migrate` (and serve, on start) does to a database."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from agentos_sessions.persistence import schema, store
from agentos_sessions.persistence.migrations.catalog import index_names
from agentos_sessions.persistence.schema import SchemaMismatch
from tests.agno_storage import create_agno_tables
from tests.direct import DirectDatabase
from tests.servers import free_port


@pytest.fixture
def direct(database_settings):
    """The test database, empty, with its own engine."""
    database = DirectDatabase(database_settings)
    yield database
    database.dispose()


def _migrate(direct) -> tuple:
    with direct.engine.begin() as db:
        return schema.upgrade(db, direct.models)


def _layout(direct) -> dict:
    """Tables, their columns and their indexes, as the database reports them."""
    inspector = inspect(direct.engine)
    table_schema = direct.models.sessions.schema
    with direct.engine.connect() as db:
        return {
            table: (
                [column["name"] for column in inspector.get_columns(table, schema=table_schema)],
                sorted(index_names(db, table, table_schema)),
            )
            for table in sorted(inspector.get_table_names(schema=table_schema))
        }


def test_an_empty_database_gets_every_table_and_the_newest_revision(direct):
    assert _migrate(direct) == (None, schema.head())
    layout = _layout(direct)
    assert set(layout) == {"agno_sessions", "agno_runs", "agno_schema_versions", "agentos_agno_sessions_version"}
    assert "idx_agno_sessions_created_at_session_id" in layout["agno_sessions"][1]
    assert "idx_agno_runs_session_id_run_index_created_at_run_id" in layout["agno_runs"][1]


def test_migrating_again_changes_nothing(direct):
    _migrate(direct)
    before = _layout(direct)
    assert _migrate(direct) == (schema.head(), schema.head())
    assert _layout(direct) == before


@pytest.mark.interop
def test_tables_agno_made_are_adopted_with_their_rows(database_settings, direct):
    """agno's tables (without our indexes), holding a session: only our indexes and the version are added."""
    create_agno_tables(database_settings)
    with direct.engine.begin() as db:
        store.insert_new_session(db, direct.models, session_id="s", session_type="agent", created_at=1, updated_at=1)
    rows = direct.snapshot()
    agnos = _layout(direct)

    assert _migrate(direct) == (None, schema.head())

    assert direct.snapshot() == rows
    after = _layout(direct)
    for table, (columns, indexes) in agnos.items():
        assert after[table][0] == columns
        assert set(indexes) <= set(after[table][1])
    added = {name for table in after for name in after[table][1]} - {name for t in agnos for name in agnos[t][1]}
    assert added == {
        index.name for index in direct.models.own_indexes(direct.engine.dialect.name)
    } | _version_table_indexes(direct)


def _version_table_indexes(direct) -> set[str]:
    table_schema = direct.models.sessions.schema
    return {i["name"] for i in inspect(direct.engine).get_indexes(schema.version_table(direct.models), table_schema)}


@pytest.mark.interop
def test_a_table_without_a_needed_column_is_refused_untouched(database_settings, direct):
    sessions = direct.models.sessions
    create_agno_tables(database_settings)
    with direct.engine.begin() as db:
        db.execute(text(f"ALTER TABLE {_name(db, sessions)} DROP COLUMN summary"))
    before = _layout(direct)
    with pytest.raises(SchemaMismatch, match="agno_sessions has no column summary"):
        _migrate(direct)
    assert _layout(direct) == before


def test_a_revision_this_version_does_not_know_is_refused(direct):
    _migrate(direct)
    with direct.engine.begin() as db:
        table = schema.version_table(direct.models)
        qualified = f"{direct.models.sessions.schema}.{table}" if direct.models.sessions.schema else table
        db.execute(text(f"UPDATE {qualified} SET version_num = '9999'"))
    with pytest.raises(SchemaMismatch, match="at migration '9999', which this version does not know"):
        _migrate(direct)


def _name(db, table) -> str:
    return db.dialect.identifier_preparer.format_table(table)


def test_the_migrate_command(database_settings, monkeypatch, capsys):
    from agentos_sessions import cli

    if database_settings.db_schema:
        monkeypatch.setenv("AGENTOS_SESSIONS_DB_SCHEMA", database_settings.db_schema)
    assert cli.main(["migrate", "--database-url", database_settings.url]) == 0
    assert cli.main(["migrate", "--database-url", database_settings.url]) == 0
    direct = DirectDatabase(database_settings)
    with direct.engine.connect() as db:
        assert schema.current_revision(db, direct.models) == schema.head()
    direct.dispose()


@pytest.mark.interop
def test_serve_refuses_tables_it_cannot_use_before_listening(database_settings, monkeypatch, capsys):
    from agentos_sessions import cli

    create_agno_tables(database_settings)
    direct = DirectDatabase(database_settings)
    with direct.engine.begin() as db:
        db.execute(text(f"ALTER TABLE {_name(db, direct.models.runs)} DROP COLUMN run_data"))
    direct.dispose()
    if database_settings.db_schema:
        monkeypatch.setenv("AGENTOS_SESSIONS_DB_SCHEMA", database_settings.db_schema)
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: pytest.fail("the server must not start"))
    assert cli.main(["serve", "--port", str(free_port()), "--database-url", database_settings.url]) == 2
    assert "agno_runs has no column run_data" in capsys.readouterr().err


def test_migrate_says_when_the_database_cannot_be_reached(tmp_path, capsys):
    from agentos_sessions import cli

    missing = tmp_path / "missing" / "dir"
    assert cli.main(["migrate", "--database-url", f"sqlite:///{missing / 'x.db'}"]) == 1
    assert capsys.readouterr().err == (
        f"agentos-sessions: cannot reach the database: cannot create the SQLite file {missing / 'x.db'}: "
        f"its directory {missing} does not exist\n"
    )
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda tmp: tmp / "missing" / "x.db", "its directory {tmp}/missing does not exist"),
        (lambda tmp: (tmp / "plain").touch() or tmp / "plain" / "x.db", "{tmp}/plain is not a directory"),
    ],
)
def test_a_sqlite_file_that_cannot_be_created_says_why(tmp_path, capsys, monkeypatch, make, problem):
    from agentos_sessions import cli

    monkeypatch.chdir(tmp_path)
    file = make(tmp_path)
    relative = file.relative_to(tmp_path)  # said as an absolute path
    assert cli.main(["migrate", "--database-url", f"sqlite:///{relative}"]) == 1
    assert capsys.readouterr().err == (
        f"agentos-sessions: cannot reach the database: cannot create the SQLite file {file}: "
        f"{problem.format(tmp=tmp_path)}\n"
    )
