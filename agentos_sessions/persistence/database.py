"""Databases and their units of work, for a server whose handlers run on an asyncio event loop.

A unit of work is a plain function ``work(db, models, ...)`` over a SQLAlchemy ``Connection``
(the store functions are such functions); :meth:`Database.run` runs it, a write in one
transaction, committed when it returns and rolled back if it raises. How it runs depends on the
engine:

* SQLite is a library call on a local file, microseconds long: the work runs inline on the
  event loop, without a hand-off to a thread, on one of two connections kept open (a reader and
  a writer), a read in a transaction too. Writes are committed in groups (:class:`_Batch`): those
  that reach the database in one turn of the event loop share a transaction, begun with
  ``BEGIN IMMEDIATE`` so that it holds the write lock from its first read, and one COMMIT, so one
  fsync; each is answered once that commit is done. When another process holds the write lock,
  the batch waits for it with ``asyncio.sleep``, never in SQLite's busy handler, which would sleep
  on the event loop.
* PostgreSQL, behind a network, runs the same work function in a greenlet whose statements
  await psycopg, so the event loop is never blocked on the network; each unit of work has a
  deadline, so a server that stops answering costs a request a 503, not an answer that never
  comes (persistence.postgres).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, OperationalError

from agentos_sessions import jsoncodec
from agentos_sessions.persistence import schema
from agentos_sessions.persistence.models import DEFAULT_PG_SCHEMA, Models, models_for
from agentos_sessions.settings import DatabaseSettings, Settings, SettingsError

P = ParamSpec("P")
T = TypeVar("T")
Work = Callable[Concatenate[Connection, Models, P], T]
logger = logging.getLogger("agentos_sessions")


# The name pg_stat_activity shows for the server's PostgreSQL connections, unless the URL names one.
APPLICATION_NAME = "agentos-sessions"


class DatabaseUnavailable(Exception):
    """The unit of work could not run now and changed nothing; it may succeed if tried again."""


class DatabaseBusy(DatabaseUnavailable):
    """The database stayed locked by another process for longer than the unit of work may wait."""


class DatabaseUnreachable(DatabaseUnavailable):
    """The database server could not be reached, dropped the connection, or did not answer within
    the deadline. The transaction is lost, unless the connection went at the moment of its COMMIT:
    like any client of a network database, the server cannot know whether that one was applied."""


class Database:
    """One configured database: where it is, its table models and how units of work run on it."""

    def __init__(self, db_id: str, settings: DatabaseSettings, schema: str | None = None) -> None:
        self.id = db_id
        self.settings = settings
        self.models = models_for(settings.session_table, settings.runs_table, schema)

    @property
    def session_table(self) -> str:
        return self.settings.session_table

    @property
    def dialect(self) -> str:
        raise NotImplementedError

    async def run(self, work: Work[P, T], /, *args: P.args, write: bool = False, **kwargs: P.kwargs) -> T:
        """Run ``work(db, models, *args, **kwargs)`` in one transaction and return its result.

        ``write=True`` for work that changes rows.
        """
        raise NotImplementedError

    async def migrate(self) -> tuple[str | None, str]:
        """Bring the tables to the newest migration (see persistence.schema); (before, after)."""
        return await self.run(schema.upgrade, write=True)

    async def close(self) -> None:
        raise NotImplementedError


class SQLiteDatabase(Database):
    """SQLite, run inline on the event loop (see the module's docstring)."""

    # How long a unit of work waits for another process's write lock before giving up (503).
    LOCK_WAIT_SECONDS = 5.0
    # Pauses between tries, doubling. Short: another process's write holds the lock for about a
    # millisecond, and a long pause loses the race to that process's next writes (with two
    # workers, a 20 ms cap gave creates a p99 of ~300 ms).
    FIRST_PAUSE = 0.0002
    LONGEST_PAUSE = 0.002

    def __init__(self, db_id: str, settings: DatabaseSettings, url: URL, *, read_only: bool = False) -> None:
        super().__init__(db_id, settings)
        memory = url.database in (None, "", ":memory:")
        # Every unit of work runs to its end before the next starts (no await inside one), so a
        # reader and a writer connection are all the event loop uses; both are kept open, with a
        # warm page cache. A private in-memory database keeps SQLAlchemy's default pool, whose
        # one connection both share (and so commits each write alone: nothing to sync there).
        options: dict[str, Any] = {} if memory else {"pool_size": 1, "max_overflow": 4}
        self.engine = sqlite_engine(url, read_only=read_only, **options)
        self._writer = self.engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
        # A reader and a writer connection, kept checked out: a unit of work only begins and ends
        # a transaction on one (a pool checkout, its reset and return cost more than the read).
        self._connections: dict[bool, Connection] = {}
        self._group_commits = not memory
        self._batch: _Batch | None = None

    @property
    def dialect(self) -> str:
        return "sqlite"

    async def run(self, work: Work[P, T], /, *args: P.args, write: bool = False, **kwargs: P.kwargs) -> T:
        if write and self._group_commits:
            return await self._write(work, args, kwargs)
        return await self._alone(work, args, kwargs, write=write)

    async def migrate(self) -> tuple[str | None, str]:
        return await self._alone(schema.upgrade, (), {}, write=True)

    async def _alone(self, work: Work[P, T], args: tuple, kwargs: dict, *, write: bool) -> T:
        """The unit of work in a transaction of its own."""

        def attempt() -> T:
            db = self._connection(write)
            with db.begin():
                return work(db, self.models, *args, **kwargs)

        return await self._when_unlocked(attempt)

    async def _when_unlocked(self, attempt: Callable[[], T]) -> T:
        """``attempt()``, tried again while another process holds the write lock, up to
        LOCK_WAIT_SECONDS (then DatabaseBusy); meanwhile this process serves other requests."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.LOCK_WAIT_SECONDS
        pause = self.FIRST_PAUSE
        while True:
            try:
                return attempt()
            except (OperationalError, sqlite3.OperationalError) as error:
                if not _is_busy(error):
                    raise
                if loop.time() >= deadline:
                    raise DatabaseBusy(f"database {self.id!r} stayed locked by another process") from error
            await asyncio.sleep(pause * random.uniform(0.5, 1.0))
            pause = min(pause * 2, self.LONGEST_PAUSE)

    async def _write(self, work: Work[P, T], args: tuple, kwargs: dict) -> T:
        """The unit of work in the batch of writes committed together (see :class:`_Batch`).

        It runs in a savepoint: if it fails, its own changes are undone and the batch goes on.
        Either way it returns once the batch is committed, since what it saw (a session that
        exists, the version an If-Match compared) may be another unit's write of the batch."""
        batch = self._batch or await self._begin_batch()
        if batch.lost():
            # SQLite rolled this batch back already (after another unit's failure): a savepoint
            # here would begin a transaction of its own, committed at once, whatever the batch says.
            await asyncio.shield(batch.committed)
            raise self._not_committed(batch)
        driver = batch.driver
        try:
            driver.execute("SAVEPOINT unit")
            result = work(batch.db, self.models, *args, **kwargs)
            driver.execute("RELEASE unit")
        except BaseException as error:
            batch.undo_unit(error)
            await asyncio.shield(batch.committed)
            raise
        if await asyncio.shield(batch.committed) is not None:
            raise self._not_committed(batch)
        return result

    def _not_committed(self, batch: _Batch) -> DatabaseUnavailable:
        """The error of a write lost with its batch (the same write may succeed in another)."""
        cause = batch.committed.result()
        error = DatabaseUnavailable(f"database {self.id!r}: the write was not committed: {cause}")
        error.__cause__ = cause
        return error

    async def _begin_batch(self) -> _Batch:
        """Begin a batch of writes (``BEGIN IMMEDIATE``), waiting out another process's write lock;
        it is committed once the event loop has run what is ready now."""
        loop = asyncio.get_running_loop()

        def attempt() -> _Batch:
            if self._batch is None:  # else another unit began one while this one waited
                db = self._connection(True)
                self._batch = _Batch(db, db.begin(), loop.create_future())
                loop.call_soon(self._commit, self._batch)
            return self._batch

        return await self._when_unlocked(attempt)

    def _commit(self, batch: _Batch) -> None:
        if self._batch is batch:
            self._batch = None
        if not batch.committed.done():
            batch.commit()

    def _connection(self, write: bool) -> Connection:
        connection = self._connections.get(write)
        if connection is None or connection.closed or connection.invalidated:
            try:
                connection = self._connections[write] = (self._writer if write else self.engine).connect()
            except OperationalError:
                # SQLite's own message ("unable to open database file") does not say why.
                problem = _sqlite_file_problem(Path(self.engine.url.database or "").absolute())
                if problem is None:
                    raise
                raise DatabaseUnreachable(problem) from None
        return connection

    async def close(self) -> None:
        if self._batch is not None:
            self._commit(self._batch)  # before its connection goes
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()
        self.engine.dispose()


def _sqlite_file_problem(file: Path) -> str | None:
    """Why SQLite cannot open or create ``file``, when its directory says (else None)."""
    directory = file.parent
    if not directory.exists():
        return f"cannot create the SQLite file {file}: its directory {directory} does not exist"
    if not directory.is_dir():
        return f"cannot create the SQLite file {file}: {directory} is not a directory"
    if not file.exists() and not os.access(directory, os.W_OK | os.X_OK):
        return f"cannot create the SQLite file {file}: its directory {directory} is not writable"
    return None


class _Batch:
    """The writes of one turn of the event loop, committed together: one COMMIT, one fsync.

    With ``synchronous=FULL`` the fsync of each COMMIT is most of a write's time, and it blocks
    the event loop. The units of work that reach their write while the loop runs what is ready
    share one transaction (each in its own savepoint), committed when they have all run; each
    answers only after that commit, so a 2xx still means the write is on disk. They run one
    after the other, each seeing the ones before: the outcome is that of running them in turn.
    ``committed`` is resolved with None once the batch is committed, or with the error that lost
    it: a unit that failed by itself raises its own error, the others a DatabaseUnavailable.
    """

    __slots__ = ("committed", "db", "driver", "failure", "transaction")

    def __init__(self, db: Connection, transaction, committed: asyncio.Future) -> None:
        self.db = db
        self.driver = db.connection.driver_connection
        self.transaction = transaction
        self.committed = committed
        self.failure: BaseException | None = None

    def lost(self) -> bool:
        """Whether the batch can no longer be committed (SQLite rolled it back)."""
        return self.failure is not None or not self.driver.in_transaction

    def undo_unit(self, error: BaseException) -> None:
        """Undo a failed unit's changes, keeping the others'."""
        try:
            self.driver.execute("ROLLBACK TO unit")
            self.driver.execute("RELEASE unit")
        except sqlite3.Error:
            # SQLite rolled the whole transaction back (an I/O error, a full disk): every unit's
            # writes are lost, and the commit says so to each.
            self.failure = self.failure or error

    def commit(self) -> None:
        try:
            if self.failure is None and not self.driver.in_transaction:
                self.failure = RuntimeError("SQLite rolled back the transaction")
            if self.failure is not None:
                raise self.failure
            self.transaction.commit()
        except BaseException as error:
            # SQLAlchemy's rollback after a failed COMMIT ends its transaction, not always SQLite's.
            with contextlib.suppress(Exception):
                self.transaction.rollback()
            with contextlib.suppress(sqlite3.Error):
                if self.driver.in_transaction:
                    self.driver.execute("ROLLBACK")
            self.committed.set_result(error)
        else:
            self.committed.set_result(None)


def check_driver(settings: DatabaseSettings) -> None:
    """Refuse, with what to install, a database whose driver is missing (before the server listens)."""
    try:
        url = make_url(settings.url)
        url.port  # noqa: B018 (parsed when read: a port that is not a number raises here)
    except (ArgumentError, ValueError) as error:
        raise SettingsError(f"Not a database URL: {settings.url!r}") from error
    drivers = {"postgresql": ("psycopg", "psycopg2"), "sqlite": ("pysqlite",)}
    if url.get_driver_name() not in drivers.get(url.get_backend_name(), (url.get_driver_name(),)):
        raise SettingsError(
            f"Unsupported driver {url.drivername!r}: use sqlite:// or postgresql:// (psycopg 3), as agno's URLs do"
        )
    if url.get_backend_name() == "postgresql":
        try:
            import psycopg  # noqa: F401
        except ImportError as error:
            raise SettingsError(
                "A PostgreSQL database needs psycopg 3: pip install 'agentos-sessions[postgresql]'"
            ) from error
    elif url.get_backend_name() != "sqlite":
        raise SettingsError(f"Unsupported database {url.get_backend_name()!r}: use sqlite:// or postgresql://")


def table_schema(settings: DatabaseSettings) -> str | None:
    """The schema the tables are in: on PostgreSQL the configured one, else agno's ``ai``."""
    if make_url(settings.url).get_backend_name() != "postgresql":
        return None
    return settings.db_schema or DEFAULT_PG_SCHEMA


def open_database(db_id: str, settings: DatabaseSettings, *, read_only: bool = False, **options: Any) -> Database:
    """The database for one configuration; connects lazily, on its first unit of work.

    ``read_only``: a SQLite file is opened read-only (see sqlite_engine). ``options`` apply to a
    database server: ``pool_size`` and ``max_overflow`` size its connection pool, ``timeout``
    (seconds) bounds each unit of work, ``prepared_statements`` lets psycopg prepare the
    statements a connection runs often."""
    url = make_url(settings.url)
    if url.get_backend_name() == "sqlite":
        return SQLiteDatabase(db_id, settings, url, read_only=read_only)
    # Imported here: psycopg is an optional dependency (check_driver says what to install).
    from agentos_sessions.persistence.postgres import PostgresDatabase

    return PostgresDatabase(db_id, settings, psycopg_url(url), **options)


def open_databases(settings: Settings) -> dict[str, Database]:
    """Every configured database by its db_id, pools and deadline as configured (none connected yet)."""
    options = {
        "pool_size": settings.pool_size,
        "max_overflow": settings.max_overflow,
        "timeout": settings.database_timeout,
        "prepared_statements": settings.prepared_statements,
    }
    return {db_id: open_database(db_id, config, **options) for db_id, config in settings.databases.items()}


async def migrate(databases: Iterable[Database]) -> dict[str, tuple[str | None, str]]:
    """Bring each database's tables to the newest migration, logging what changed; the revisions
    (before, after) by db_id."""
    revisions = {}
    for database in databases:
        before, after = revisions[database.id] = await database.migrate()
        if before != after:
            logger.info("Database %r: tables migrated from %s to %s", database.id, before or "nothing", after)
    return revisions


def psycopg_url(url: URL) -> URL:
    """A PostgreSQL URL for psycopg 3, the driver with an asyncio interface (also in plain,
    synchronous engines): a bare postgresql:// or a psycopg2 URL means it too."""
    if url.get_backend_name() == "postgresql" and url.get_driver_name() in ("psycopg", "psycopg2"):
        return url.set(drivername="postgresql+psycopg")
    return url


def sqlite_engine(url: str | URL, *, read_only: bool = False, **options: Any) -> Engine:
    """A synchronous SQLite engine configured as the server uses it: agno's JSON, the foreign-key
    cascade, WAL, no busy handler, transactions begun by SQLAlchemy (``BEGIN IMMEDIATE`` on
    connections with the ``sqlite_begin`` execution option set to it).

    ``read_only``: the file opened read-only (SQLite's ``mode=ro``), its journal mode left as it
    is: nothing is ever written to it."""
    url = make_url(url)
    if read_only:
        path = Path(url.database or "").resolve()
        url = url.set(database=path.as_uri(), query={**url.query, "mode": "ro", "uri": "true"})
    # json.dumps with its defaults is what agno's engines write, byte for byte.
    engine = create_engine(url, json_serializer=json.dumps, json_deserializer=jsoncodec.loads, **options)
    configure = _configure_read_only_sqlite_connection if read_only else _configure_sqlite_connection
    event.listen(engine, "connect", configure)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _configure_sqlite_connection(dbapi_connection, _record) -> None:
    """Enforce the runs -> sessions cascade as agno does; WAL so that readers never wait for writers."""
    dbapi_connection.create_function("casefold", 1, _casefold, deterministic=True)
    dbapi_connection.create_function("json_contains", 2, _json_contains, deterministic=True)
    # Transactions are begun by _begin_sqlite_transaction, not by the driver.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys = ON")
        # A locked database raises at once; SQLiteDatabase.run waits for it without blocking.
        cursor.execute("PRAGMA busy_timeout = 0")
        cursor.execute("PRAGMA journal_mode = WAL")
        # FULL, not the NORMAL often paired with WAL: NORMAL survives the process being killed
        # but may lose the last commits to a power cut or an OS crash, and a write we answered
        # 2xx must survive those too. The price is an fsync per commit (docs/deployment.md, durability).
        cursor.execute("PRAGMA synchronous = FULL")
    finally:
        cursor.close()


def _configure_read_only_sqlite_connection(dbapi_connection, _record) -> None:
    """As _configure_sqlite_connection, but for the journal mode, which a reader cannot set."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout = 0")
    finally:
        cursor.close()


def _begin_sqlite_transaction(connection: Connection) -> None:
    # Straight to the driver: this runs for every unit of work.
    statement = connection.get_execution_options().get("sqlite_begin", "BEGIN")
    connection.connection.driver_connection.execute(statement)


def _is_busy(error: OperationalError | sqlite3.OperationalError) -> bool:
    # BEGIN goes straight to the driver (_begin_sqlite_transaction): its error comes unwrapped.
    code = getattr(getattr(error, "orig", error), "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


def _casefold(value: object) -> str | None:
    return value.casefold() if isinstance(value, str) else None


def _json_contains(document: str | None, wanted: str) -> bool | None:
    """SQLite's ``json_contains(column, :json)``: PostgreSQL's ``jsonb @> jsonb`` (NULL for NULL)."""
    if document is None:
        return None
    try:
        return json_contains(jsoncodec.loads(document), jsoncodec.loads(wanted))
    except ValueError:
        return False  # not JSON: agno never writes that, but a row that holds it contains nothing


def json_contains(container: Any, contained: Any) -> bool:
    """Whether ``container`` contains ``contained`` as PostgreSQL's ``@>`` defines it for jsonb
    values nested in an object: objects contain each key with a contained value, arrays contain
    each element somewhere in them, other values equal (numbers by value, never a boolean)."""
    if isinstance(contained, dict):
        return isinstance(container, dict) and all(
            key in container and json_contains(container[key], value) for key, value in contained.items()
        )
    if isinstance(contained, list):
        return isinstance(container, list) and all(
            any(json_contains(element, value) for element in container) for value in contained
        )
    if isinstance(contained, bool) or isinstance(container, bool):
        return container is contained
    if isinstance(contained, int | float):
        return isinstance(container, int | float) and container == contained
    return type(container) is type(contained) and container == contained
