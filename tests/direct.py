"""Straight access to a test database, for tests to seed rows and check what the server stored.

It uses its own synchronous engine, independent of how the server runs its units of work.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Select, create_engine, make_url, select

from agentos_sessions.persistence.database import psycopg_url, sqlite_engine, table_schema
from agentos_sessions.persistence.models import models_for
from agentos_sessions.settings import DatabaseSettings


class DirectDatabase:
    def __init__(self, settings: DatabaseSettings) -> None:
        url = make_url(settings.url)
        if url.get_backend_name() == "sqlite":
            self.engine = sqlite_engine(url)
        else:
            # Nothing prepared: the database may be behind a pooler in transaction mode.
            connect_args = {"prepare_threshold": None}
            self.engine = create_engine(psycopg_url(url), json_serializer=json.dumps, connect_args=connect_args)
        self.models = models_for(settings.session_table, settings.runs_table, table_schema(settings))

    @contextmanager
    def unit_of_work(self) -> Iterator[Connection]:
        """A transaction, committed when the block ends."""
        with self.engine.begin() as db:
            yield db

    def select_sessions(self) -> Select:
        """The sessions' rows as the store reads them: ``metadata_`` for the metadata column."""
        columns = self.models.sessions.c
        return select(*(column.label("metadata_") if column.key == "metadata" else column for column in columns))

    def snapshot(self) -> list:
        """Every row of the sessions and runs tables, in key order."""
        sessions, runs = self.models.sessions, self.models.runs
        with self.engine.connect() as connection:
            return [
                list(connection.execute(select(sessions).order_by(sessions.c.session_id))),
                list(connection.execute(select(runs).order_by(runs.c.run_id))),
            ]

    def dispose(self) -> None:
        self.engine.dispose()
