"""Settings from the environment."""

from __future__ import annotations

import pytest

from settings import DatabaseSettings, Settings, SettingsError, agno_db_id


def test_default_is_sqlite_file_in_working_directory_with_agnos_db_id():
    settings = Settings.from_env({})
    assert dict(settings.databases) == {agno_db_id("sqlite:///agno.db"): DatabaseSettings("sqlite:///agno.db")}
    assert settings.validate_responses is True


def test_single_database_from_env():
    settings = Settings.from_env(
        {
            "AGENTOS_SESSIONS_DATABASE_URL": "sqlite:///x.db",
            "AGENTOS_SESSIONS_DB_ID": "main",
            "AGENTOS_SESSIONS_SESSION_TABLE": "my_sessions",
            "AGENTOS_SESSIONS_VALIDATE_RESPONSES": "false",
        }
    )
    assert dict(settings.databases) == {"main": DatabaseSettings("sqlite:///x.db", "my_sessions", "my_sessions_runs")}
    assert settings.validate_responses is False


def test_several_databases_from_json():
    settings = Settings.from_env(
        {"AGENTOS_SESSIONS_DATABASES": '{"a": "sqlite:///a.db", "b": {"url": "sqlite:///b.db", "session_table": "s"}}'}
    )
    assert dict(settings.databases) == {
        "a": DatabaseSettings("sqlite:///a.db"),
        "b": DatabaseSettings("sqlite:///b.db", "s", "s_runs"),
    }


@pytest.mark.parametrize(
    "environ",
    [
        {"AGENTOS_SESSIONS_DATABASES": "not json"},
        {"AGENTOS_SESSIONS_DATABASES": "{}"},
        {"AGENTOS_SESSIONS_DATABASES": '{"a": {"url": "sqlite://", "extra": 1}}'},
        {"AGENTOS_SESSIONS_SESSION_TABLE": "x; DROP TABLE y"},
        {"AGENTOS_SESSIONS_VALIDATE_RESPONSES": "maybe"},
    ],
)
def test_bad_configuration_is_refused_with_a_message(environ):
    with pytest.raises(SettingsError):
        Settings.from_env(environ)


def test_serve_flag_database_url_wins_and_keeps_the_other_variables(monkeypatch):
    import app

    seen = {}
    monkeypatch.setattr(
        "uvicorn.run", lambda application, host, port, access_log: seen.update(host=host, port=port, log=access_log)
    )
    monkeypatch.setattr(app, "create_app", lambda settings: seen.update(settings=settings))
    monkeypatch.setenv("AGENTOS_SESSIONS_DATABASES", '{"x": "sqlite:///x.db"}')
    monkeypatch.setenv("AGENTOS_SESSIONS_DB_ID", "main")
    monkeypatch.setenv("AGENTOS_SESSIONS_VALIDATE_RESPONSES", "false")

    assert app.main(["serve", "--port", "8001", "--database-url", "sqlite:///flag.db"]) == 0
    assert dict(seen["settings"].databases) == {"main": DatabaseSettings("sqlite:///flag.db")}
    assert seen["settings"].validate_responses is False
    assert (seen["host"], seen["port"], seen["log"]) == ("127.0.0.1", 8001, True)


def test_serve_refuses_bad_configuration_with_exit_code_2(monkeypatch, capsys):
    import app

    monkeypatch.setenv("AGENTOS_SESSIONS_DATABASES", "not json")
    assert app.main(["serve"]) == 2
    assert "AGENTOS_SESSIONS_DATABASES is not valid JSON" in capsys.readouterr().err
