"""``agentos-sessions copy``: sessions and runs copied between databases, again and again.

Source and target are two fresh databases of the run's engine (two SQLite files, or two schemas on
PostgreSQL, reached through PgBouncer under `tox -e pgbouncer`); the killed copy also goes from a
SQLite file to the run's engine, the way users move to PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import pty
import re
import secrets
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from sqlalchemy import func, insert, make_url, select, update
from sqlalchemy.exc import SQLAlchemyError

from agentos_sessions import checks, cli
from agentos_sessions.persistence import transfer
from agentos_sessions.persistence.database import open_database, table_schema
from agentos_sessions.settings import DatabaseSettings
from tests.api.helpers import add_run
from tests.databases import fresh_database
from tests.direct import DirectDatabase

pytestmark = pytest.mark.pooler

T0 = 1_780_000_000  # 2026-05-28
DAY = 86_400


@pytest.fixture
def source(tmp_path):
    """The database copied from, migrated and empty."""
    return _migrated(fresh_database(tmp_path, "source"))


@pytest.fixture
def target(tmp_path):
    """The database copied to: not made yet (copy migrates it)."""
    return fresh_database(tmp_path, "target")


@pytest.fixture
def copy(source, target, capsys, monkeypatch):
    """Run ``agentos-sessions copy`` from ``source`` to ``target``: (exit code, stdout, stderr)."""
    monkeypatch.delenv("AGENTOS_SESSIONS_DB_SCHEMA", raising=False)

    def run(*options: str) -> tuple[int, str, str]:
        code = cli.main(["copy", *_places(source, target), *options])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def direct(source, target):
    """Straight access to both databases: (source, target)."""
    databases = DirectDatabase(source), DirectDatabase(target)
    yield databases
    for database in databases:
        database.dispose()


@pytest.fixture
def seeded(direct):
    """Five sessions of three kinds and two users, updated on different days, four runs."""
    _seed(direct[0])


@pytest.fixture
def sqlite_source(tmp_path, monkeypatch):
    """A SQLite file seeded as ``seeded`` does, whatever the run's engine (sqlite_source.db)."""
    monkeypatch.delenv("AGENTOS_SESSIONS_DB_SCHEMA", raising=False)
    source = _migrated(DatabaseSettings(f"sqlite:///{tmp_path / 'sqlite_source.db'}"))
    database = DirectDatabase(source)
    try:
        _seed(database)
    finally:
        database.dispose()
    return source


def test_a_copy_into_an_empty_database_migrates_it_and_copies_every_row(copy, seeded, direct, source, target):
    code, out, err = copy()
    assert (code, out, err) == (0, _said(source, target, sessions=(5, 0, 0), runs=(4, 0, 0)), "")
    assert direct[1].snapshot() == direct[0].snapshot()
    # Migrated as `agentos-sessions migrate` would: nothing for `check` to report.
    assert checks.database_mismatches("target", target) == []


def test_copying_again_skips_what_the_target_has(copy, seeded, direct, source, target):
    assert copy()[0] == 0
    code, out, err = copy()
    assert (code, out, err) == (0, _said(source, target, sessions=(0, 0, 5), runs=(0, 0, 4)), "")
    assert direct[1].snapshot() == direct[0].snapshot()


def test_rows_the_source_changed_later_are_updated_and_the_targets_newer_ones_kept(
    copy, seeded, direct, source, target
):
    assert copy()[0] == 0
    mine, theirs = direct
    # The source changes a session and a run, and gains a session; the target changes another
    # session after the source did, and has a session of its own.
    _change_session(mine, "a-1", day=40, session_data={"session_name": "Lyon"})
    _change_run(mine, "a-1-r1", day=40, content="Lyon.")
    _add_session(mine, "new", "agent", day=41)
    _add_run(mine, "new", "new-r0", 0, day=41)
    _change_session(mine, "t-1", day=42, session_data={"session_name": "source's"})
    _change_session(theirs, "t-1", day=43, session_data={"session_name": "target's"})
    _add_session(theirs, "target-only", "agent", day=44)

    code, out, err = copy()
    assert (code, out, err) == (0, _said(source, target, sessions=(1, 1, 4), runs=(1, 1, 3)), "")
    assert _session(theirs, "a-1") == _session(mine, "a-1")
    assert _session(theirs, "a-1").session_data == {"session_name": "Lyon"}
    assert _runs(theirs, "a-1") == _runs(mine, "a-1")
    assert _runs(theirs, "new") == _runs(mine, "new")
    assert _session(theirs, "t-1").session_data == {"session_name": "target's"}
    assert _session(theirs, "target-only") is not None


def test_rows_changed_again_within_the_same_second_are_updated(copy, seeded, direct, source, target):
    """agno's timestamps are whole seconds: a row read by one copy and changed again in that same
    second keeps its updated_at; the next copy compares the values and updates it."""
    assert copy()[0] == 0
    mine, theirs = direct
    _change_session(mine, "a-2", day=5, session_data={"session_state": {"step": "again"}})
    _change_run(mine, "t-1-r0", day=10, content="again")
    assert copy() == (0, _said(source, target, sessions=(0, 1, 4), runs=(0, 1, 3)), "")
    assert theirs.snapshot() == mine.snapshot()


def test_a_copy_verifies_the_values_not_only_the_times(copy, seeded, direct, source, target):
    assert copy()[0] == 0
    _, theirs = direct
    _change_session(theirs, "w-1", day=20, session_data={"changed": "behind its back"})
    _change_run(theirs, "a-1-r1", day=1, content="behind its back")
    # The next copy puts the source's values back; the check after a copy that could not would say so.
    assert copy() == (0, _said(source, target, sessions=(0, 1, 4), runs=(0, 1, 3)), "")


def test_the_source_is_only_read(sqlite_source, target, capsys):
    """A SQLite source is opened read-only: its file, journal mode included, is left as it was."""
    path = Path(make_url(sqlite_source.url).database)
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA journal_mode = DELETE")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    assert cli.main(["copy", *_places(sqlite_source, target)]) == 0
    assert capsys.readouterr().err == ""
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(file.name for file in path.parent.glob("sqlite_source.db*")) == ["sqlite_source.db"]


def test_a_session_the_source_cannot_give_is_named_and_the_others_copied(sqlite_source, target, direct, capsys):
    """SQLite keeps any text in a JSON column."""
    with contextlib.closing(sqlite3.connect(make_url(sqlite_source.url).database)) as connection, connection:
        connection.execute("UPDATE agno_sessions SET metadata = '{oops' WHERE session_id = 'a-2'")
    code = cli.main(["copy", *_places(sqlite_source, target)])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == _planned(sqlite_source, target, 5, 4) + _copied(sessions=(4, 0, 0), runs=(4, 0, 0))
    assert err == (
        "agentos-sessions copy: session 'a-2' not copied: the source cannot give it: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)\n"
        + _not_verified(5, 4, 1, "  sessions missing, such as: a-2\n")
    )
    assert _ids(direct[1])[0] == ["a-1", "empty", "t-1", "w-1"]


def test_a_source_whose_keys_cannot_be_read_stops_the_copy_with_a_line(sqlite_source, target, capsys):
    with contextlib.closing(sqlite3.connect(make_url(sqlite_source.url).database)) as connection, connection:
        connection.execute("UPDATE agno_sessions SET session_id = CAST(X'ff' AS TEXT) WHERE session_id = 'w-1'")
    assert cli.main(["copy", *_places(sqlite_source, target)]) == 1
    out, err = capsys.readouterr()
    assert (
        out == f"agentos-sessions copy: 5 sessions (4 runs) to copy from {_shown(sqlite_source)} to {_shown(target)}\n"
    )
    assert err.startswith(
        "agentos-sessions copy: stopped: the database to copy from: Could not decode to UTF-8 column 'session_id'"
    ), err
    assert err.endswith("; what was copied stays: run the same command again to finish\n"), err
    assert "Traceback" not in err


def test_a_session_larger_than_a_batch_is_copied_a_chunk_at_a_time(copy, direct, source, target, monkeypatch):
    """Its runs go a bounded chunk per transaction (memory holds one chunk), all of them in the end."""
    monkeypatch.setattr(transfer, "BYTES_PER_BATCH", 50_000)
    mine, theirs = direct
    _add_session(mine, "big", "agent", day=1)
    _add_session(mine, "small", "agent", day=1)
    for index in range(40):
        _add_run(mine, "big", f"big-{index:02d}", index, day=1, content="x" * 5_000)
    _add_run(mine, "small", "small-0", 0, day=1)
    assert copy() == (0, _said(source, target, sessions=(2, 0, 0), runs=(41, 0, 0)), "")
    assert theirs.snapshot() == mine.snapshot()


def test_updated_since_counts_a_run_changed_since(copy, seeded, direct, source, target):
    """agno updates a run without its session's updated_at (upsert_run)."""
    _change_run(direct[0], "t-1-r0", day=60, content="later")
    assert copy("--updated-since", "2026-07-01") == (0, _said(source, target, sessions=(1, 0, 0), runs=(2, 0, 0)), "")
    assert _ids(direct[1]) == (["t-1"], ["t-1-m0", "t-1-r0"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--from-schema", "ai"], "--from-schema: --from is a SQLite database, which has no schemas"),
        (["--to", "sqlite://"], "--to: an in-memory SQLite database would be gone when the command ends"),
        (["--to", "postgresql://u@h:abc/db"], "Not a database URL: 'postgresql://u@h:abc/db'"),
        (
            ["--to", "postgresql+asyncpg://u@h/db"],
            "Unsupported driver 'postgresql+asyncpg': use sqlite:// or postgresql:// (psycopg 3), as agno's URLs do",
        ),
    ],
)
def test_settings_copy_cannot_use_are_refused(tmp_path, capsys, monkeypatch, options, message):
    monkeypatch.delenv("AGENTOS_SESSIONS_DB_SCHEMA", raising=False)
    source = _migrated(DatabaseSettings(f"sqlite:///{tmp_path / 'agno.db'}"))
    target = ["--to", f"sqlite:///{tmp_path / 'copy.db'}"] if "--to" not in options else []
    assert cli.main(["copy", "--from", source.url, *target, *options]) == 2
    assert capsys.readouterr() == ("", f"agentos-sessions: {message}\n")


def test_a_file_that_is_not_sqlite_is_said_so_on_either_side(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("AGENTOS_SESSIONS_DB_SCHEMA", raising=False)
    text = tmp_path / "notes.db"
    text.write_text("not a database, " * 100)
    fine = _migrated(DatabaseSettings(f"sqlite:///{tmp_path / 'agno.db'}")).url
    assert cli.main(["copy", "--from", f"sqlite:///{text}", "--to", fine]) == 1
    assert capsys.readouterr() == (
        "",
        "agentos-sessions: cannot use the database to copy from: file is not a database\n",
    )
    assert cli.main(["copy", "--from", fine, "--to", f"sqlite:///{text}"]) == 1
    assert capsys.readouterr() == (
        "",
        "agentos-sessions copy: stopped: the database to copy to: file is not a database; what was copied stays: "
        "run the same command again to finish\n",
    )


@pytest.mark.parametrize(
    ("options", "sessions", "runs"),
    [
        (["--type", "team"], ["t-1"], ["t-1-m0", "t-1-r0"]),
        (["--user-id", "alice"], ["a-1", "t-1", "w-1"], ["a-1-r0", "a-1-r1", "t-1-m0", "t-1-r0"]),
        (["--component-id", "research"], ["a-1", "a-2"], ["a-1-r0", "a-1-r1"]),
        (["--updated-since", "2026-06-07"], ["t-1", "w-1", "empty"], ["t-1-m0", "t-1-r0"]),
        (["--updated-since", "2026-06-07T00:00:00+02:00", "--type", "agent"], ["empty"], []),
    ],
)
def test_filters_choose_the_sessions_copied_with_their_runs(
    copy, seeded, direct, source, target, options, sessions, runs
):
    code, out, err = copy(*options)
    assert (code, out, err) == (0, _said(source, target, sessions=(len(sessions), 0, 0), runs=(len(runs), 0, 0)), "")
    _, theirs = direct
    assert _ids(theirs) == (sorted(sessions), sorted(runs))


def test_updated_since_takes_an_age(copy, seeded, direct, source, target):
    _change_session(direct[0], "a-2", day=0, updated_at=int(time.time()) - 3600)
    assert copy("--updated-since", "2h")[:2] == (0, _said(source, target, sessions=(1, 0, 0), runs=(0, 0, 0)))
    assert _ids(direct[1]) == (["a-2"], [])


def test_a_run_whose_id_is_another_sessions_in_the_target_is_reported_and_left_alone(
    copy, seeded, direct, source, target
):
    target_side = DirectDatabase(_migrated(target))
    try:
        _add_session(target_side, "other", "agent", day=2)
        _add_run(target_side, "other", "a-1-r0", 0, day=99, content="the target's")
        code, out, err = copy()
        assert code == 1
        assert out == _planned(source, target, 5, 4) + _copied(sessions=(5, 0, 0), runs=(3, 0, 0))
        assert err == (
            "agentos-sessions copy: run 'a-1-r0' not copied: its run_id is session 'other''s in the target\n"
            + _not_verified(5, 4, 1, "  runs missing, such as: a-1-r0\n")
        )
        assert [(run.session_id, run.run_data["content"]) for run in _runs(target_side, "other")] == [
            ("other", "the target's")
        ]
        assert [run.run_id for run in _runs(target_side, "a-1")] == ["a-1-r1"]
    finally:
        target_side.dispose()


def test_a_copy_killed_midway_finishes_when_run_again(tmp_path, target, direct):
    """From a SQLite file to the run's engine, 3,000 sessions ten at a time: killed (SIGKILL) once
    the target holds some, then run again to the end."""
    source = _migrated(DatabaseSettings(f"sqlite:///{tmp_path / 'killed-source.db'}"))
    mine, theirs = DirectDatabase(source), direct[1]
    try:
        _add_many(mine, 3_000)
        command = [sys.executable, "-m", "agentos_sessions.cli", "copy", *_places(source, target), "--batch-size", "10"]
        env = {**os.environ, "AGENTOS_SESSIONS_DB_SCHEMA": ""}
        copying = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            while _count(theirs) == 0:
                assert copying.poll() is None, copying.communicate()
                time.sleep(0.005)
        finally:
            copying.send_signal(signal.SIGKILL)
            copying.communicate()
        sessions, runs = _settled_counts(theirs)
        assert 0 < sessions < 3_000
        # Whole batches: every session there has its run.
        assert runs == sessions

        finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert (finished.returncode, finished.stderr.count("Traceback")) == (0, 0), finished.stderr
        assert finished.stdout == _said(
            source, target, sessions=(3_000 - sessions, 0, sessions), runs=(3_000 - runs, 0, runs)
        )
        assert theirs.snapshot() == mine.snapshot()
    finally:
        mine.dispose()


def test_a_terminal_is_shown_a_progress_bar(seeded, source, target):
    controller, terminal = pty.openpty()
    # A terminal of 30 rows of 120 columns (a new pseudo-terminal has none).
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    env = {**os.environ, "AGENTOS_SESSIONS_DB_SCHEMA": ""}
    command = [sys.executable, "-m", "agentos_sessions.cli", "copy", *_places(source, target), "--batch-size", "2"]
    try:
        finished = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=terminal, timeout=60)
        os.close(terminal)
        shown = _read_all(controller)
    finally:
        os.close(controller)
    assert finished.returncode == 0
    assert finished.stdout.decode() == _said(source, target, sessions=(5, 0, 0), runs=(4, 0, 0))
    # tqdm's last state of the bar: every session, and the runs beside them.
    assert re.search(r"100%\|█+\| 5/5 \[\d\d:\d\d<00:00, +[\d.]+ sessions/s, 4 runs\]", shown), shown


def test_no_progress_bar_is_written_where_no_terminal_reads(copy, seeded):
    code, _out, err = copy()
    assert (code, err) == (0, "")


def test_the_same_tables_on_both_sides_are_refused(source, capsys, monkeypatch):
    monkeypatch.delenv("AGENTOS_SESSIONS_DB_SCHEMA", raising=False)
    assert cli.main(["copy", *_places(source, source)]) == 2
    assert capsys.readouterr() == ("", "agentos-sessions: --from and --to name the same tables\n")


@pytest.mark.parametrize("kind", ["no file", "no tables"])
def test_a_source_without_the_tables_is_refused_and_left_as_it_was(tmp_path, target, capsys, kind):
    missing = tmp_path / "nothing.db"
    if kind == "no tables":
        missing.touch()  # an empty SQLite database
    assert cli.main(["copy", "--from", f"sqlite:///{missing}", *_places(None, target)]) == 2
    problem = f"no SQLite file {str(missing)!r}" if kind == "no file" else "no table agno_sessions, agno_runs"
    assert capsys.readouterr() == ("", f"agentos-sessions: cannot copy from sqlite:///{missing}: {problem}\n")
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith("nothing")] == (
        [] if kind == "no file" else ["nothing.db"]
    )
    assert kind == "no file" or missing.stat().st_size == 0


def test_runs_kept_only_in_agno_2s_runs_column_are_refused_and_those_moved_copied(
    tmp_path, target, direct, capsys, monkeypatch
):
    """agno 3's migration copies each session's runs from the sessions table's runs column to the
    runs table and leaves the column filled: such a session is copied (its runs from the runs
    table); one whose runs are still only in the column is not, and the copy says what to do."""
    monkeypatch.delenv("AGENTOS_SESSIONS_DB_SCHEMA", raising=False)
    source = _migrated(DatabaseSettings(f"sqlite:///{tmp_path / 'agno2.db'}"))
    mine = DirectDatabase(source)
    try:
        _add_session(mine, "moved", "agent", day=1)
        _add_run(mine, "moved", "moved-r0", 0, day=1)
        _add_session(mine, "unmoved", "agent", day=1)
        with mine.unit_of_work() as db:
            db.exec_driver_sql("ALTER TABLE agno_sessions ADD COLUMN runs JSON")
            db.exec_driver_sql(
                """UPDATE agno_sessions SET runs = '[{"run_id": "moved-r0"}]' WHERE session_id = 'moved'"""
            )
            db.exec_driver_sql("UPDATE agno_sessions SET runs = '[]' WHERE session_id = 'unmoved'")
        assert cli.main(["copy", *_places(source, target)]) == 0
        assert _ids(direct[1]) == (["moved", "unmoved"], ["moved-r0"])
        capsys.readouterr()
        with mine.unit_of_work() as db:
            db.exec_driver_sql("""UPDATE agno_sessions SET runs = '[{"run_id": "r"}]' WHERE session_id = 'unmoved'""")
        assert cli.main(["copy", *_places(source, target)]) == 2
    finally:
        mine.dispose()
    assert capsys.readouterr() == (
        "",
        f"agentos-sessions: cannot copy from {_shown(source)}: 1 sessions keep their runs only in the sessions "
        "table's runs column, as agno 2 did: let agno 3 move them to the agno_runs table first (its v3.0.0 "
        "migration)\n",
    )


@pytest.mark.pg  # psycopg, the PostgreSQL driver, is installed by `tox -e pg`
def test_a_target_that_cannot_be_reached_is_said_so(seeded, source, capsys):
    unreachable = "postgresql://postgres@127.0.0.1:1/none"
    assert cli.main(["copy", *_places(source, None), "--to", unreachable]) == 1
    assert capsys.readouterr() == (
        "",
        "agentos-sessions copy: stopped: the database to copy to: connection failed: connection to server at "
        '"127.0.0.1", port 1 failed: Connection refused; what was copied stays: run the same command again to '
        "finish\n",
    )


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("yesterday", "must be a date or time (2026-11-01, 2026-11-01T08:00:00Z) or an age (7d), not 'yesterday'"),
        ("2026-13-01", "must be a date or time (2026-11-01, 2026-11-01T08:00:00Z) or an age (7d), not '2026-13-01'"),
        ("7y", "must be a date or time (2026-11-01, 2026-11-01T08:00:00Z) or an age (7d), not '7y'"),
        ("0d", "must be a number and a unit (s, m, h, d, w), as 30d, not '0d'"),
        ("99999999999999999d", "must be at most 50 years, not '99999999999999999d'"),
    ],
)
def test_a_time_that_is_not_one_is_a_usage_error(copy, when, message, capsys):
    with pytest.raises(SystemExit) as exited:
        copy("--updated-since", when)
    assert exited.value.code == 2
    assert capsys.readouterr().err.endswith(f"argument --updated-since: {message}\n")


@pytest.mark.pg
def test_sessions_postgresql_cannot_store_are_named_and_the_rest_copied(tmp_path, target, direct, capsys, monkeypatch):
    """agno's SQLite store keeps what json.dumps writes: NaN in a float, NUL in a string, which
    PostgreSQL's jsonb refuses; and strings of any length, which a btree index does not take.
    Those sessions are named and left out; the others are copied."""
    monkeypatch.delenv("AGENTOS_SESSIONS_DB_SCHEMA", raising=False)
    source = _migrated(DatabaseSettings(f"sqlite:///{tmp_path / 'agno.db'}"))
    mine = DirectDatabase(source)
    try:
        for session_id in ("fine", "long", "nan", "nul"):
            _add_session(mine, session_id, "agent", day=1)
            _add_run(mine, session_id, f"{session_id}-r0", 0, day=1)
        with mine.unit_of_work() as db:
            db.exec_driver_sql("UPDATE agno_sessions SET session_data = '{\"score\": NaN}' WHERE session_id = 'nan'")
            db.exec_driver_sql("UPDATE agno_runs SET run_data = '{\"content\": \"a\\u0000b\"}' WHERE run_id = 'nul-r0'")
        _change_session(mine, "long", day=1, user_id=secrets.token_hex(2_500))
        code = cli.main(["copy", *_places(source, target), "--batch-size", "4"])
        out, err = capsys.readouterr()
        assert code == 1
        assert out == _planned(source, target, 4, 4) + _copied(sessions=(1, 0, 0), runs=(1, 0, 0))
        assert err == (
            "agentos-sessions copy: session 'long' not copied: the target refused it: index row size 5040 exceeds "
            'btree version 4 maximum 2704 for index "idx_agno_sessions_user_id_session_type_created_at_session_id"\n'
            "agentos-sessions copy: session 'nan' not copied: the target refused it: "
            "invalid input syntax for type json\n"
            "agentos-sessions copy: session 'nul' not copied: the target refused it: "
            "unsupported Unicode escape sequence\n"
            + _not_verified(
                4,
                4,
                6,
                "  sessions missing, such as: long, nan, nul\n  runs missing, such as: long-r0, nan-r0, nul-r0\n",
            )
        )
        assert _ids(direct[1]) == (["fine"], ["fine-r0"])
    finally:
        mine.dispose()


# --- helpers -----------------------------------------------------------------------------------


def _seed(source) -> None:
    _add_session(source, "a-1", "agent", user_id="alice", agent_id="research", day=1, data={"session_name": "Paris ✓"})
    _add_session(source, "a-2", "agent", user_id="bob", agent_id="research", day=5)
    _add_session(source, "t-1", "team", user_id="alice", team_id="crew", day=10, metadata={"plan": {"tier": 3}})
    _add_session(source, "w-1", "workflow", user_id="alice", workflow_id="flow", day=20)
    _add_session(source, "empty", "agent", day=30, never_updated=True)
    _add_run(source, "a-1", "a-1-r0", 0, day=1, content="Paris. " * 200)
    _add_run(source, "a-1", "a-1-r1", 1, day=1, content={"nested": [1, 2.5, None, "\u00e9"]})
    _add_run(source, "t-1", "t-1-r0", 0, day=10, run_type="team")
    _add_run(source, "t-1", "t-1-m0", 1, day=10, parent_run_id="t-1-r0")


def _migrated(settings):
    async def migrate():
        database = open_database("test", settings)
        try:
            await database.migrate()
        finally:
            await database.close()

    asyncio.run(migrate())
    return settings


def _places(source, target) -> list[str]:
    """--from/--to (with their schemas on PostgreSQL) for the sides given."""
    options = []
    for side, settings in (("from", source), ("to", target)):
        if settings is not None:
            options += [f"--{side}", settings.url]
            if table_schema(settings):
                options += [f"--{side}-schema", table_schema(settings)]
    return options


def _said(source, target, *, sessions, runs) -> str:
    """What copy prints when it is done and verified."""
    return (
        _planned(source, target, sum(sessions), sum(runs))
        + _copied(sessions=sessions, runs=runs)
        + (
            f"agentos-sessions copy: verified: the target holds the {sum(sessions):,} sessions and {sum(runs):,} runs "
            "that match in the source, the same or more recent\n"
        )
    )


def _planned(source, target, sessions: int, runs: int) -> str:
    return (
        f"agentos-sessions copy: {sessions:,} sessions ({runs:,} runs) to copy from {_shown(source)} "
        f"to {_shown(target)}\n"
    )


def _copied(*, sessions, runs) -> str:
    def tally(kind, counts):
        new, updated, skipped = counts
        return (
            f"{new + updated + skipped:,} {kind} ({new:,} new, {updated:,} updated, {skipped:,} skipped: "
            "the same or more recent in the target)"
        )

    return f"agentos-sessions copy: copied {tally('sessions', sessions)} and {tally('runs', runs)}\n"


def _not_verified(sessions: int, runs: int, differences: int, examples: str) -> str:
    return (
        f"agentos-sessions copy: not verified: of the {sessions} sessions and {runs} runs that match in the source, "
        f"{differences} are missing from the target or out of date there\n{examples}"
        "  (rows not copied are named above; rows changed in the source during the copy are copied by running it "
        "again)\n"
    )


def _shown(settings) -> str:
    from sqlalchemy import make_url

    return make_url(settings.url).render_as_string(hide_password=True)


def _add_session(database, session_id, session_type, *, day, never_updated=False, data=None, **columns):
    stamp = T0 + day * DAY
    with database.unit_of_work() as db:
        db.execute(
            insert(database.models.sessions).values(
                session_id=session_id,
                session_type=session_type,
                session_data=data or {"session_state": {"step": day}},
                created_at=stamp - 60,
                updated_at=None if never_updated else stamp,
                **columns,
            )
        )


def _add_run(database, session_id, run_id, index, *, day, **run_data):
    add_run(database, session_id, run_id, index, created_at=T0 + day * DAY, **run_data)


def _add_many(database, count: int) -> None:
    """``count`` sessions of one run each, in one transaction."""
    sessions = [
        {"session_id": f"s-{n:05d}", "session_type": "agent", "session_data": {"n": n}, "created_at": T0 + n}
        for n in range(count)
    ]
    runs = [
        {
            "run_id": f"r-{n:05d}",
            "session_id": f"s-{n:05d}",
            "run_type": "agent",
            "run_index": 0,
            "run_data": {"run_id": f"r-{n:05d}", "content": "x" * 2_000},
            "created_at": T0 + n,
        }
        for n in range(count)
    ]
    with database.unit_of_work() as db:
        db.execute(insert(database.models.sessions), sessions)
        db.execute(insert(database.models.runs), runs)


def _change_session(database, session_id, *, day, **values):
    sessions = database.models.sessions
    values.setdefault("updated_at", T0 + day * DAY)
    with database.unit_of_work() as db:
        db.execute(update(sessions).where(sessions.c.session_id == session_id).values(**values))


def _change_run(database, run_id, *, day, content):
    runs = database.models.runs
    with database.unit_of_work() as db:
        data = db.execute(select(runs.c.run_data).where(runs.c.run_id == run_id)).scalar_one()
        values = {"run_data": {**data, "content": content}, "updated_at": T0 + day * DAY}
        db.execute(update(runs).where(runs.c.run_id == run_id).values(**values))


def _session(database, session_id):
    sessions = database.models.sessions
    with database.unit_of_work() as db:
        return db.execute(select(sessions).where(sessions.c.session_id == session_id)).one_or_none()


def _runs(database, session_id) -> list:
    runs = database.models.runs
    with database.unit_of_work() as db:
        return list(db.execute(select(runs).where(runs.c.session_id == session_id).order_by(runs.c.run_id)))


def _ids(database) -> tuple[list[str], list[str]]:
    sessions, runs = database.models.sessions, database.models.runs
    with database.unit_of_work() as db:
        return (
            sorted(db.execute(select(sessions.c.session_id)).scalars()),
            sorted(db.execute(select(runs.c.run_id)).scalars()),
        )


def _settled_counts(database) -> tuple[int, int]:
    """The sessions and runs once they stop changing: through a pooler, a COMMIT the killed copy
    sent may reach the server after the copy is gone."""
    sessions, runs = database.models.sessions, database.models.runs
    both = select(
        select(func.count()).select_from(sessions).scalar_subquery(),
        select(func.count()).select_from(runs).scalar_subquery(),
    )
    counts = None
    while True:
        with database.unit_of_work() as db:
            now = tuple(db.execute(both).one())
        if now == counts:
            return now
        counts = now
        time.sleep(0.3)


def _count(database) -> int:
    table = database.models.sessions
    try:
        with database.unit_of_work() as db:
            return db.execute(select(func.count()).select_from(table)).scalar_one()
    except SQLAlchemyError:  # the tables are not made yet
        return 0


def _read_all(descriptor: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(descriptor, 65536)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")
