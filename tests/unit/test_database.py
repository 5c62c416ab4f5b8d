"""How units of work run on SQLite: inline, writes holding the write lock from their start,
waiting for another process's lock without blocking the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import time

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
    asyncio.run(database.create_missing_tables())
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

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, holder.rollback)
        started = time.monotonic()
        await database.run(_add, "waited", write=True)
        waited = time.monotonic() - started
        ticking.cancel()
        return waited, ticks

    waited, ticks = asyncio.run(scenario())
    holder.close()
    assert waited >= 0.3
    # The loop kept running while the writer waited (a blocking wait would starve the ticker).
    assert ticks >= 20
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
