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
