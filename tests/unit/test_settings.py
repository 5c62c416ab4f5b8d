"""Settings from the environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agentos_sessions.observability import logging_config
from agentos_sessions.server import OneSendHttpToolsProtocol
from agentos_sessions.settings import DatabaseSettings, Settings, SettingsError, agno_db_id


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


async def _no_migration(settings):
    pass


def _the_settings(settings):
    """create_app's stand-in: the settings it would build the app from."""
    return settings


@pytest.fixture
def served(monkeypatch):
    """What `agentos-sessions serve` hands to uvicorn.run (the app built from its settings), or
    to the worker processes (the factory each of them builds its app with)."""
    from agentos_sessions import cli, server

    seen = {}
    monkeypatch.setattr("uvicorn.run", lambda application, **options: seen.update(app=application, options=options))
    monkeypatch.setattr(
        server,
        "serve_workers",
        lambda factory, workers, options: seen.update(factory=factory, workers=workers, options=options) or 0,
    )
    monkeypatch.setattr(cli, "create_app", _the_settings)
    monkeypatch.setattr(cli, "_migrate_all", _no_migration)
    # Whether the port is free is tests/unit/test_cli.py's business, not these tests'.
    monkeypatch.setattr(server, "listen_problem", lambda host, port: None)
    monkeypatch.delenv("AGENTOS_SESSIONS_DATABASE_URL", raising=False)
    monkeypatch.delenv("AGENTOS_SESSIONS_DATABASES", raising=False)
    return seen


def test_serve_flag_database_url_wins_and_keeps_the_other_variables(served, monkeypatch):
    from agentos_sessions import cli

    monkeypatch.setenv("AGENTOS_SESSIONS_DATABASES", '{"x": "sqlite:///x.db"}')
    monkeypatch.setenv("AGENTOS_SESSIONS_DB_ID", "main")
    monkeypatch.setenv("AGENTOS_SESSIONS_VALIDATE_RESPONSES", "false")

    assert cli.main(["serve", "--port", "8001", "--database-url", "sqlite:///flag.db"]) == 0
    assert dict(served["app"].databases) == {"main": DatabaseSettings("sqlite:///flag.db")}
    assert served["app"].validate_responses is False
    assert served["options"] == {
        "host": "127.0.0.1",
        "port": 8001,
        "loop": "asyncio",
        "access_log": False,  # uvicorn's: ours is on, in the logging configuration
        "log_config": logging_config(access_log_enabled=True),
        "http": OneSendHttpToolsProtocol,
    }
    # The flag reached the app as settings; the environment is as it was.
    assert os.environ["AGENTOS_SESSIONS_DATABASES"] == '{"x": "sqlite:///x.db"}'
    assert "AGENTOS_SESSIONS_DATABASE_URL" not in os.environ


def test_serve_with_workers_hands_each_process_the_settings(served, monkeypatch):
    """Each worker process builds its app from the settings the command read, pickled into it
    (as uvicorn's Multiprocess does), not from the environment."""
    import pickle

    from agentos_sessions import cli

    monkeypatch.setenv("AGENTOS_SESSIONS_DATABASES", '{"x": "sqlite:///x.db"}')
    assert cli.main(["serve", "--workers", "3", "--database-url", "sqlite:///w.db", "--no-access-log"]) == 0
    assert served["workers"] == 3
    assert served["options"] == {
        "host": "127.0.0.1",
        "port": 7777,
        "loop": "asyncio",
        "access_log": False,
        "log_config": logging_config(access_log_enabled=False),
        "http": OneSendHttpToolsProtocol,
    }
    monkeypatch.setenv("AGENTOS_SESSIONS_DATABASE_URL", "sqlite:///not-this.db")
    settings = pickle.loads(pickle.dumps(served["factory"]))()
    assert [database.url for database in settings.databases.values()] == ["sqlite:///w.db"]
    assert os.environ["AGENTOS_SESSIONS_DATABASES"] == '{"x": "sqlite:///x.db"}'


def test_serve_refuses_zero_workers_with_its_own_usage(served, capsys):
    from agentos_sessions import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["serve", "--workers", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: agentos-sessions serve "), err
    assert err.endswith("agentos-sessions serve: error: argument --workers: must be at least 1, not '0'\n"), err
    assert served == {}


@pytest.mark.parametrize("port", ["99999", "65536", "-1", "http", "٨٠"])
def test_serve_refuses_a_port_out_of_range_with_its_own_usage(served, capsys, port):
    from agentos_sessions import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["serve", f"--port={port}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: agentos-sessions serve "), err
    assert err.endswith(
        f"agentos-sessions serve: error: argument --port: must be a port number from 0 to 65535, not {port!r}\n"
    ), err
    assert served == {}


def test_serve_refuses_bad_configuration_with_exit_code_2(monkeypatch, capsys):
    from agentos_sessions import cli

    monkeypatch.setenv("AGENTOS_SESSIONS_DATABASES", "not json")
    assert cli.main(["serve"]) == 2
    assert "AGENTOS_SESSIONS_DATABASES is not valid JSON" in capsys.readouterr().err


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_a_worker_gets_a_socket_of_its_own_whose_connections_have_nagle_off(host):
    """The parent's socket, pickled into a worker as uvicorn's Multiprocess does, arrives there as a
    new socket on the same address (SO_REUSEPORT); connections accepted on it get TCP_NODELAY from
    asyncio (without it, each response waited for a delayed ACK). The parent's never listens."""
    import asyncio
    import pickle
    import socket
    from multiprocessing.reduction import ForkingPickler

    from agentos_sessions import server

    accepted = []
    with server.ReusePortSocket.bound(host, 0) as reserved:
        worker = pickle.loads(ForkingPickler.dumps(reserved))
        assert type(worker) is socket.socket
        assert worker.getsockname() == reserved.getsockname()
        assert worker.proto == socket.IPPROTO_TCP
        assert worker.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1

        async def scenario():
            server = await asyncio.get_running_loop().create_server(lambda: _Recorder(accepted), sock=worker)
            _, writer = await asyncio.open_connection(host, reserved.getsockname()[1])
            for _ in range(100):
                if accepted:
                    break
                await asyncio.sleep(0.01)
            writer.close()
            server.close()
            await server.wait_closed()

        asyncio.run(scenario())  # the server closed the worker's socket
        assert reserved.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 0
    assert accepted == [1]  # TCP_NODELAY of the accepted connection


class _Recorder:
    def __init__(self, accepted):
        self.accepted = accepted

    def connection_made(self, transport):
        import socket

        self.accepted.append(transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    def connection_lost(self, exc):
        pass

    def data_received(self, data):
        pass

    def eof_received(self):
        pass


def test_body_limit_from_the_environment():
    assert Settings.from_env({}).max_body_bytes == 1_048_576
    assert Settings.from_env({"AGENTOS_SESSIONS_MAX_BODY_BYTES": "4096"}).max_body_bytes == 4096
    for bad in ("0", "-1", "1MB", "1.5"):
        with pytest.raises(SettingsError, match="AGENTOS_SESSIONS_MAX_BODY_BYTES must be a positive whole number"):
            Settings.from_env({"AGENTOS_SESSIONS_MAX_BODY_BYTES": bad})


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root@localhost/db", "Unsupported database 'mysql': use sqlite:// or postgresql://"),
        ("not a url", "Not a database URL: 'not a url'"),
    ],
)
def test_serve_refuses_a_database_it_cannot_use(monkeypatch, capsys, url, message):
    from agentos_sessions import cli

    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: pytest.fail("the server must not start"))
    assert cli.main(["serve", "--database-url", url]) == 2
    assert message in capsys.readouterr().err


def test_postgresql_without_its_driver_says_what_to_install(monkeypatch):
    import sys

    from agentos_sessions.persistence.database import check_driver

    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now raises ImportError
    with pytest.raises(SettingsError, match=r"pip install 'agentos-sessions\[postgresql\]'"):
        check_driver(DatabaseSettings("postgresql://localhost/db"))


def test_pool_settings_from_the_environment():
    settings = Settings.from_env({"AGENTOS_SESSIONS_POOL_SIZE": "2", "AGENTOS_SESSIONS_MAX_OVERFLOW": "0"})
    assert (settings.pool_size, settings.max_overflow) == (2, 0)
    assert (Settings.from_env({}).pool_size, Settings.from_env({}).max_overflow) == (5, 0)
    with pytest.raises(SettingsError, match="AGENTOS_SESSIONS_POOL_SIZE must be a positive whole number"):
        Settings.from_env({"AGENTOS_SESSIONS_POOL_SIZE": "0"})


def test_database_timeout_from_the_environment():
    assert Settings.from_env({}).database_timeout == 10.0
    assert Settings.from_env({"AGENTOS_SESSIONS_DATABASE_TIMEOUT": "2.5"}).database_timeout == 2.5
    for wrong in ("0", "-1", "ten", "nan", "inf"):
        with pytest.raises(
            SettingsError,
            match=f"AGENTOS_SESSIONS_DATABASE_TIMEOUT must be a positive number of seconds, not '{wrong}'",
        ):
            Settings.from_env({"AGENTOS_SESSIONS_DATABASE_TIMEOUT": wrong})
    with pytest.raises(SettingsError, match="The database timeout must be a positive number of seconds"):
        Settings(database_timeout=0)


def test_prepared_statements_are_off_unless_asked():
    assert Settings.from_env({}).prepared_statements is False
    assert Settings.from_env({"AGENTOS_SESSIONS_PREPARED_STATEMENTS": "true"}).prepared_statements is True


def test_the_readme_shows_the_db_id_the_default_database_gets():
    """The README's /health example: the key is agno's id of sqlite:///agno.db, as served."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    default = Settings.from_env({})
    [db_id] = default.databases
    assert db_id == agno_db_id("sqlite:///agno.db")
    assert f'"databases": {{"{db_id}": {{"status": "ok"' in readme
