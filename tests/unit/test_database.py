"""How units of work run on SQLite: inline, writes holding the write lock from their start,
waiting for another process's lock without blocking the event loop."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy import event

from agentos_sessions.persistence import store
from agentos_sessions.persistence.database import DatabaseBusy, DatabaseUnavailable, SQLiteDatabase, open_database
from agentos_sessions.settings import DatabaseSettings


@pytest.fixture
def path(tmp_path):
    return tmp_path / "sessions.db"


@pytest.fixture
def database(path):
    database = open_database("main", DatabaseSettings(f"sqlite:///{path}"))
    assert isinstance(database, SQLiteDatabase)
    asyncio.run(database.migrate())
    yield database
    asyncio.run(database.close())


def _add(db, m, session_id):
    return store.insert_new_session(db, m, session_id=session_id, session_type="agent", created_at=1, updated_at=1)


def _count(path) -> int:
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT count(*) FROM agno_sessions").fetchone()[0]


def test_a_write_begins_immediate_and_a_read_deferred(database):
    def mode(db, _m):
        # A transaction begun IMMEDIATE holds the write lock: a second writer is refused at once.
        other = sqlite3.connect(database.engine.url.database, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.rollback()
            return "deferred"
        except sqlite3.OperationalError:
            return "immediate"
        finally:
            other.close()

    assert asyncio.run(database.run(mode, write=True)) == "immediate"
    assert asyncio.run(database.run(mode)) == "deferred"


def test_commits_go_to_the_wal_and_are_synced_to_disk(database):
    """synchronous=FULL (2): an acknowledged write survives a power cut, not only the process dying."""

    def pragmas(db, _m):
        return [db.exec_driver_sql(f"PRAGMA {name}").scalar() for name in ("journal_mode", "synchronous")]

    assert asyncio.run(database.run(pragmas)) == ["wal", 2]


def test_work_is_committed_or_rolled_back_as_a_whole(database, path):
    def add_then_fail(db, m):
        _add(db, m, "lost")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        asyncio.run(database.run(add_then_fail, write=True))
    assert _count(path) == 0
    asyncio.run(database.run(_add, "kept", write=True))
    assert _count(path) == 1


def test_a_writer_waits_for_another_process_without_blocking_the_loop(database, path):
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")

    async def scenario():
        ticks = 0

        async def other_process():
            # Lets go of the lock only after the event loop has run it five times while the
            # writer waits: a writer that blocked the loop would never see the lock released.
            nonlocal ticks
            while ticks < 5:
                await asyncio.sleep(0.001)
                ticks += 1
            holder.rollback()

        releasing = asyncio.create_task(other_process())
        await database.run(_add, "waited", write=True)
        await releasing
        return ticks

    assert asyncio.run(scenario()) == 5
    holder.close()
    assert _count(path) == 1


def test_a_writer_gives_up_with_database_busy(database, path, monkeypatch):
    monkeypatch.setattr(SQLiteDatabase, "LOCK_WAIT_SECONDS", 0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DatabaseBusy):
            asyncio.run(database.run(_add, "never", write=True))
    finally:
        holder.rollback()
        holder.close()
    assert _count(path) == 0


def test_readers_are_not_blocked_by_a_writer(database, path):
    asyncio.run(database.run(_add, "s", write=True))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("DELETE FROM agno_sessions")
    try:
        row = asyncio.run(database.run(store.get_session, "s"))
    finally:
        holder.rollback()
        holder.close()
    assert row.session_id == "s"


def _committed(path) -> set[str]:
    """The session ids another connection sees: what has been committed."""
    with sqlite3.connect(path) as connection:
        return {session_id for (session_id,) in connection.execute("SELECT session_id FROM agno_sessions")}


def _between_two_writes(database, unit) -> list:
    """Run ``unit`` as a write in one batch with a session added before it ("before") and after
    it ("after"); the three outcomes, each a result or the exception raised."""

    async def scenario():
        return await asyncio.gather(
            database.run(_add, "before", write=True),
            database.run(unit, write=True),
            database.run(_add, "after", write=True),
            return_exceptions=True,
        )

    return asyncio.run(scenario())


@pytest.fixture
def commits(database):
    """The COMMITs of the database's engine, counted."""
    count = [0]

    def counted(_connection):
        count[0] += 1

    event.listen(database.engine, "commit", counted)
    yield count
    event.remove(database.engine, "commit", counted)


def test_writes_that_arrive_together_share_one_commit_and_answer_after_it(database, path, commits):
    seen_when_answered: dict[str, set[str]] = {}

    async def write(session_id):
        await database.run(_add, session_id, write=True)
        seen_when_answered[session_id] = _committed(path)

    async def scenario():
        await asyncio.gather(*(write(f"s{n}") for n in range(5)))

    asyncio.run(scenario())
    assert commits[0] == 1
    everything = {f"s{n}" for n in range(5)}
    assert seen_when_answered == dict.fromkeys(everything, everything)


def test_a_unit_that_fails_in_a_batch_loses_only_its_own_writes(database, path, commits):
    def add_then_fail(db, m):
        _add(db, m, "lost")
        raise RuntimeError("boom")

    first, failed, last = _between_two_writes(database, add_then_fail)
    assert (first.session_id, last.session_id) == ("before", "after")
    assert isinstance(failed, RuntimeError) and str(failed) == "boom"
    assert commits[0] == 1
    assert _committed(path) == {"before", "after"}


def test_a_unit_sees_the_writes_before_it_in_its_batch(database, path):
    async def scenario():
        return await asyncio.gather(*(database.run(_add, "same", write=True) for _ in range(3)))

    first, *others = asyncio.run(scenario())
    assert first.session_id == "same"
    assert others == [None, None]  # the id was taken by then
    assert _committed(path) == {"same"}


def test_a_commit_that_fails_fails_every_write_of_its_batch(database, path):
    # A foreign key checked only at COMMIT: a row that breaks it makes the whole commit fail.
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE notes (session_id TEXT REFERENCES agno_sessions(session_id) DEFERRABLE INITIALLY DEFERRED)"
        )

    def add_dangling_note(db, _m):
        db.exec_driver_sql("INSERT INTO notes VALUES ('nowhere')")

    outcomes = _between_two_writes(database, add_dangling_note)
    # Each write was lost with the batch's COMMIT: a 503 (try again), the cause kept.
    assert [type(outcome) for outcome in outcomes] == [DatabaseUnavailable] * 3
    assert all("FOREIGN KEY constraint failed" in str(outcome.__cause__) for outcome in outcomes)
    assert _committed(path) == set()
    # The next write begins a batch of its own and is committed.
    asyncio.run(database.run(_add, "later", write=True))
    assert _committed(path) == {"later"}


def test_a_batch_sqlite_rolled_back_commits_none_of_its_writes_nor_those_that_follow(database, path):
    # ON CONFLICT ROLLBACK: a duplicate makes SQLite roll back the whole transaction, not just
    # the statement, as an I/O error or a full disk can.
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE tags (name TEXT UNIQUE ON CONFLICT ROLLBACK)")
        connection.execute("INSERT INTO tags VALUES ('taken')")

    def add_taken_tag(db, _m):
        db.exec_driver_sql("INSERT INTO tags VALUES ('taken')")

    before, failed, after = _between_two_writes(database, add_taken_tag)
    assert type(failed).__name__ == "IntegrityError" and "UNIQUE constraint failed" in str(failed)
    assert (type(before), type(after)) == (DatabaseUnavailable, DatabaseUnavailable)
    assert _committed(path) == set()
    asyncio.run(database.run(_add, "later", write=True))
    assert _committed(path) == {"later"}


def test_closing_commits_the_open_batch_first(database, path):
    async def scenario():
        write = asyncio.ensure_future(database.run(_add, "last", write=True))
        await asyncio.sleep(0)  # the write has run; its batch's commit is not yet due
        await database.close()
        return await write

    assert asyncio.run(scenario()).session_id == "last"
    assert _committed(path) == {"last"}
