"""The agentos-sessions command: its help, and plain answers when it cannot start."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess

import pytest

from agentos_sessions import cli, server
from agentos_sessions.persistence import schema
from agentos_sessions.persistence.database import SQLiteDatabase
from tests.servers import command


def test_help_documents_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name in ("serve", "migrate", "prune", "copy", "check"):
        assert f"    {name} " in out, out


def test_the_installed_command_says_nothing_but_its_help():
    """Run as people run it: no warning from a library (Starlette's about httpx) before the help."""
    result = subprocess.run([command("agentos-sessions"), "--help"], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("usage: agentos-sessions ")


def test_a_port_in_use_is_said_before_anything_starts(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("AGENTOS_SESSIONS_DATABASES", raising=False)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        database = tmp_path / "never.db"
        assert cli.main(["serve", "--port", str(port), "--database-url", f"sqlite:///{database}"]) == 1
    assert capsys.readouterr().err == (
        f"agentos-sessions: port {port} on 127.0.0.1 is already in use: "
        "stop what listens there or choose another --port\n"
    )
    assert not database.exists()  # nothing was started, not even a migration


def test_workers_say_a_port_taken_after_the_check_and_start_no_worker(capsys):
    # Taken between serve's check and the workers' bind, by a socket without SO_REUSEPORT.
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        options = {"host": "127.0.0.1", "port": port, "loop": "asyncio", "access_log": False, "log_config": None}
        assert server.serve_workers(_never_built, 2, options) == 1
    assert capsys.readouterr().err == (
        f"agentos-sessions: --workers 2 cannot listen on 127.0.0.1:{port} with SO_REUSEPORT: Address already in use\n"
    )


def test_a_worker_that_cannot_listen_exits_so_that_it_is_not_started_again(capsys):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        address = taken.getsockname()
        with pytest.raises(SystemExit) as exit_info:
            server._worker_socket(socket.AF_INET, address)
    assert exit_info.value.code == 3  # uvicorn's STARTUP_FAILURE: its supervisor stops, not retries
    assert capsys.readouterr().err == f"agentos-sessions: a worker cannot listen on {address}: Address already in use\n"


@pytest.mark.parametrize(
    ("taken_on", "family", "host"),
    [
        # An IPv6 address is checked with an IPv6 socket.
        ("::1", socket.AF_INET6, "::1"),
        # "::" is every address, IPv4 ones too, as the server's sockets bind it.
        ("0.0.0.0", socket.AF_INET, "::"),
    ],
)
def test_a_port_in_use_on_an_ipv6_host_is_said(capsys, monkeypatch, taken_on, family, host):
    monkeypatch.delenv("AGENTOS_SESSIONS_DATABASES", raising=False)
    with socket.create_server((taken_on, 0), family=family) as taken:
        port = taken.getsockname()[1]
        assert cli.main(["serve", "--host", host, "--port", str(port)]) == 1
    assert capsys.readouterr().err == (
        f"agentos-sessions: port {port} on {host} is already in use: stop what listens there or choose another --port\n"
    )


def test_an_address_of_another_machine_is_said(capsys, monkeypatch):
    monkeypatch.delenv("AGENTOS_SESSIONS_DATABASES", raising=False)
    assert cli.main(["serve", "--host", "192.0.2.1", "--port", "7777"]) == 1
    assert capsys.readouterr().err == "agentos-sessions: cannot listen on 192.0.2.1: not an address of this machine\n"


def test_a_sqlite_file_locked_by_another_process_is_said(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("AGENTOS_SESSIONS_DATABASES", raising=False)
    monkeypatch.setattr(SQLiteDatabase, "LOCK_WAIT_SECONDS", 0.2)
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        assert cli.main(["migrate", "--database-url", f"sqlite:///{path}"]) == 1
    finally:
        holder.close()
    err = capsys.readouterr().err
    assert err.startswith(
        "agentos-sessions: the database is locked: another process has held its write lock for more than 0.2 s"
    ), err
    assert err.endswith("; try again once it is done\n"), err


def test_a_database_url_of_another_kind_is_said(capsys, monkeypatch):
    monkeypatch.delenv("AGENTOS_SESSIONS_DATABASES", raising=False)
    assert cli.main(["migrate", "--database-url", "mysql://root@127.0.0.1/x"]) == 2
    assert capsys.readouterr().err.startswith("agentos-sessions: Unsupported database 'mysql'")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u@h:port/db", "Not a database URL: 'postgresql://u@h:port/db'"),
        ("postgresql+asyncpg://u@h/db", "Unsupported driver 'postgresql+asyncpg'"),
        ("sqlite+aiosqlite:///x.db", "Unsupported driver 'sqlite+aiosqlite'"),
    ],
)
def test_a_database_url_this_server_cannot_use_is_said(capsys, monkeypatch, url, message):
    monkeypatch.delenv("AGENTOS_SESSIONS_DATABASES", raising=False)
    assert cli.main(["migrate", "--database-url", url]) == 2
    suffix = ": use sqlite:// or postgresql:// (psycopg 3), as agno's URLs do" if "driver" in message else ""
    assert capsys.readouterr() == ("", f"agentos-sessions: {message}{suffix}\n")


def test_a_file_that_is_not_a_sqlite_database_is_said(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("AGENTOS_SESSIONS_DATABASES", raising=False)
    notes = tmp_path / "notes.db"
    notes.write_text("not a database, " * 100)
    assert cli.main(["migrate", "--database-url", f"sqlite:///{notes}"]) == 1
    assert capsys.readouterr() == ("", "agentos-sessions: cannot use the database: file is not a database\n")
    assert notes.read_text() == "not a database, " * 100


def test_migrate_says_which_migrations_ran_and_nothing_else(tmp_path):
    """Alembic's lines about its own set-up (dialect, DDL mode), six per start, are left out."""
    result = subprocess.run(
        [command("agentos-sessions"), "migrate", "--database-url", f"sqlite:///{tmp_path / 'a.db'}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "AGENTOS_SESSIONS_DB_ID": "main"},
    )
    assert result.returncode == 0, result.stderr
    # "<date> <time> INFO <logger>: <message>", the message up to its first comma
    said = [line.split(" ", 3)[3].split(",")[0] for line in result.stderr.splitlines()]
    assert said == [
        "alembic.runtime.migration: Running upgrade  -> 0001",
        "alembic.runtime.migration: Running upgrade 0001 -> 0002",
        "alembic.runtime.migration: Running upgrade 0002 -> 0003",
        f"agentos_sessions: Database 'main': tables migrated from nothing to {schema.head()}",
    ]


def _never_built():
    pytest.fail("no worker may start")


def test_migrate_says_when_a_database_is_already_up_to_date(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("AGENTOS_SESSIONS_DATABASES", raising=False)
    monkeypatch.setenv("AGENTOS_SESSIONS_DB_ID", "main")
    url = f"sqlite:///{tmp_path / 'a.db'}"
    assert cli.main(["migrate", "--database-url", url]) == 0
    assert capsys.readouterr().out == ""  # what ran is logged (the test above)
    assert cli.main(["migrate", "--database-url", url]) == 0
    assert (
        capsys.readouterr().out
        == f"agentos-sessions migrate: database 'main' is up to date (revision {schema.head()})\n"
    )
