"""How units of work run on SQLite: inline, writes holding the write lock from their start,
waiting for another process's lock without blocking the event loop."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from persistence import store
from persistence.database import DatabaseBusy, SQLiteDatabase, open_database
from settings import DatabaseSettings


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
