"""`agentos-sessions check`: the contract, the handlers and the database, compared."""

from __future__ import annotations

import copy

import pytest
import yaml
from sqlalchemy import inspect, text

from agentos_sessions import checks, cli
from agentos_sessions.contract.spec import CONTRACT
from agentos_sessions.persistence import schema
from tests.direct import DirectDatabase


@pytest.fixture
def document() -> dict:
    return copy.deepcopy(yaml.safe_load(CONTRACT.read_text(encoding="utf-8")))


@pytest.fixture
def migrated(database_settings):
    """A database migrated by this release, and direct access to it."""
    direct = DirectDatabase(database_settings)
    with direct.engine.begin() as db:
        schema.upgrade(db, direct.models)
    yield database_settings, direct
    direct.dispose()


def test_the_repository_agrees_with_itself(migrated):
    settings, _direct = migrated
    assert checks.run(CONTRACT, {"main": settings}) == []


def test_a_parameter_added_to_the_contract_alone_is_reported(document):
    document["paths"]["/sessions"]["get"]["parameters"].append(
        {"name": "team-name", "in": "query", "schema": {"type": "string"}}
    )
    # Named as Connexion's default sanitiser (the one the app runs) passes it: the hyphen dropped.
    assert checks.handler_mismatches(document) == [
        "GET /sessions (get_sessions): get_sessions() has no parameter 'teamname': Connexion would drop it"
    ]


def test_a_parameter_removed_from_the_contract_alone_is_reported(document):
    parameters = document["paths"]["/sessions"]["get"]["parameters"]
    document["paths"]["/sessions"]["get"]["parameters"] = [p for p in parameters if p.get("name") != "session_name"]
    assert checks.handler_mismatches(document) == [
        "GET /sessions (get_sessions): get_sessions() takes 'session_name', which the operation does not have"
    ]


def test_an_optional_body_for_a_handler_that_requires_one_is_reported(document):
    document["paths"]["/sessions/{session_id}"]["patch"]["requestBody"]["required"] = False
    assert checks.handler_mismatches(document) == [
        "PATCH /sessions/{session_id} (update_session): update_session() requires 'body', "
        "which the contract makes optional (give it a default)"
    ]


def test_an_operation_without_a_handler_is_reported(document):
    document["paths"]["/sessions"]["get"]["operationId"] = "list_everything"
    assert checks.handler_mismatches(document) == [
        "GET /sessions (list_everything): no handler: "
        "no module of agentos_sessions.handlers lists list_everything in its __all__"
    ]


def test_an_invalid_contract_is_reported(tmp_path, document):
    document["paths"]["/sessions"]["get"]["parameters"].append({"name": "x", "schema": {}})  # no `in`
    spec = tmp_path / "openapi.yaml"
    spec.write_text(yaml.safe_dump(document), encoding="utf-8")
    [problem] = checks.run(spec, {})
    assert problem.startswith(f"{spec}: Invalid OpenAPI 3.1 document: ")


def test_a_database_behind_this_release_is_reported(migrated):
    settings, direct = migrated
    dialect = direct.engine.dialect.name
    [index, *_] = direct.models.own_indexes(dialect)
    with direct.engine.begin() as db:
        index.drop(db)
        table_schema = direct.models.sessions.schema
        version_table = (
            f"{table_schema}.{schema.version_table(direct.models)}"
            if table_schema
            else schema.version_table(direct.models)
        )
        db.execute(text(f"UPDATE {version_table} SET version_num = '0002'"))
    assert checks.database_mismatches("main", settings) == [
        f"database 'main': tables at migration 0002, this release's newest is {schema.head()} (run migrate)",
        f"database 'main': no index {index.name} (run migrate)",
    ]


def test_an_empty_database_is_reported_and_left_empty(database_settings):
    direct = DirectDatabase(database_settings)
    try:
        problems = checks.database_mismatches("main", database_settings)
        assert len(problems) == 1
        assert problems[0].startswith("database 'main': no ")
        assert "agentos-sessions migrate creates it" in problems[0]
        tables = inspect(direct.engine).get_table_names(schema=direct.models.sessions.schema)
        assert tables == []
    finally:
        direct.dispose()


def test_the_command_prints_each_mismatch_and_exits_1(tmp_path, document, capsys, monkeypatch):
    document["paths"]["/sessions"]["get"]["parameters"].append({"name": "x", "in": "query", "schema": {}})
    spec = tmp_path / "openapi.yaml"
    spec.write_text(yaml.safe_dump(document), encoding="utf-8")
    monkeypatch.delenv("AGENTOS_SESSIONS_DATABASES", raising=False)
    database = f"sqlite:///{tmp_path / 'absent.db'}"
    assert cli.main(["check", "--spec", str(spec), "--database-url", database]) == 1
    out = capsys.readouterr().out.splitlines()
    assert (
        out[0] == "mismatch: GET /sessions (get_sessions): get_sessions() has no parameter 'x': Connexion would drop it"
    )
    assert out[1].startswith("mismatch: database ") and out[1].endswith("(agentos-sessions migrate creates it)")
    assert not (tmp_path / "absent.db").exists()


def test_the_command_agrees_on_a_migrated_database(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("AGENTOS_SESSIONS_DATABASES", raising=False)
    database = f"sqlite:///{tmp_path / 'served.db'}"
    assert cli.main(["migrate", "--database-url", database]) == 0
    assert cli.main(["check", "--database-url", database]) == 0
    assert capsys.readouterr().out.strip().endswith("its handlers and 1 database(s) agree")
