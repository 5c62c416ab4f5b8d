"""Engines and units of work, one per configured database."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from persistence import store
from persistence.models import Models, models_for
from settings import DatabaseSettings


@dataclass
class Database:
    """One configured database: its engine, its session factory and its table models."""

    id: str
    settings: DatabaseSettings
    engine: Engine
    sessions: sessionmaker[Session]
    models: Models
    # SQLite takes one writer at a time; writers of this process queue here instead of in
    # SQLite's busy handler, whose growing sleeps (up to 100 ms a try) make the tail latency.
    writer: threading.Lock | None = field(default=None, repr=False)

    @property
    def session_table(self) -> str:
        return self.settings.session_table

    @contextmanager
    def unit_of_work(self, *, write: bool = False) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back if it raises.

        ``write=True`` for a transaction that changes rows: on SQLite it waits its turn first.
        """
        turn = self.writer if write and self.writer is not None else nullcontext()
        with turn, self.sessions.begin() as session:
            yield session

    def create_missing_tables(self) -> list[str]:
        """Create the sessions and runs tables (with agno's DDL) where they do not exist yet."""
        with self.unit_of_work(write=True) as db:
            return store.create_missing_tables(db, self.models)

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(db_id: str, settings: DatabaseSettings) -> Database:
    """Build the engine for one configured database; connects lazily."""
    engine = _create_engine(settings.url)
    return Database(
        id=db_id,
        settings=settings,
        engine=engine,
        sessions=sessionmaker(engine, expire_on_commit=False),
        models=models_for(settings.session_table, settings.runs_table),
        writer=threading.Lock() if engine.dialect.name == "sqlite" else None,
    )


def _create_engine(url: str) -> Engine:
    # json.dumps with its defaults is what agno's engines write, byte for byte.
    options = {"json_serializer": json.dumps}
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        # Keep a connection per server thread: a new SQLite connection starts with a cold page
        # cache and runs the PRAGMAs below, which under load cost more than the query.
        options.update(pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_SIZE)
    engine = create_engine(url, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _configure_sqlite_connection)
    return engine


SQLITE_POOL_SIZE = 40


def _configure_sqlite_connection(dbapi_connection, _record) -> None:
    """Enforce the runs -> sessions cascade, as agno does, and wait on locks instead of failing."""
    dbapi_connection.create_function("casefold", 1, _casefold, deterministic=True)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 5000")
        cursor.execute("PRAGMA journal_mode = WAL")
    finally:
        cursor.close()


def _casefold(value: object) -> str | None:
    return value.casefold() if isinstance(value, str) else None
