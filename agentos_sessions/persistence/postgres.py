"""PostgreSQL, served straight through psycopg 3's asyncio interface.

The store functions are the same plain functions as on SQLite: SQLAlchemy Core statements run on a
``Connection``. Here that connection is a thin one of ours (:class:`StatementRunner`): each
statement is compiled once by SQLAlchemy's psycopg dialect, then sent by psycopg, and the store
function runs in a greenlet whose ``execute`` awaits psycopg without blocking the event loop
(as SQLAlchemy's own asyncio engine does, without its engine, pool and result machinery: a point
read costs about half the CPU; the performance docs have the profile).

What a unit of work means is unchanged:

* Reads run in autocommit (one statement, one round trip); a write runs between ``BEGIN`` and
  ``COMMIT``.
* A unit of work has a deadline: a server that stops answering costs a request a 503.
* A pooled connection is not pinged before use. One the server has closed fails its first
  statement; the pool's idle connections are then dropped (they are likely gone too) and the
  unit of work runs once more on a new connection, never after its ``COMMIT`` was sent.
* A server that refuses connections is a 503 at once: a missing connection is opened by the
  request that needs it (see :class:`ConnectionPool`).

Migrations go through SQLAlchemy's asyncio engine and Alembic (:meth:`PostgresDatabase.migrate`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.adapt import AdaptersMap
from psycopg.pq import ExecStatus, TransactionStatus
from psycopg.rows import namedtuple_row
from psycopg.types.json import set_json_dumps, set_json_loads
from sqlalchemy import ClauseElement
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

# SQLAlchemy's bridge between a sync function and asyncio (what its asyncio engine runs on).
from sqlalchemy.util import await_, greenlet_spawn

from agentos_sessions import jsoncodec
from agentos_sessions.persistence import schema
from agentos_sessions.persistence.database import (
    APPLICATION_NAME,
    Database,
    DatabaseUnreachable,
    P,
    T,
    Work,
    logger,
    table_schema,
)
from agentos_sessions.settings import DatabaseSettings

# Every statement sent, at DEBUG (what SQLAlchemy's echo shows on its engines).
sql_logger = logging.getLogger("agentos_sessions.sql")

# agno writes JSON with json.dumps and its defaults; values read are decoded with orjson.
DIALECT = PGDialect_psycopg(json_serializer=json.dumps, json_deserializer=jsoncodec.loads)


def _adapters() -> AdaptersMap:
    """psycopg's adapters for our connections: JSON as agno writes it, jsonb decoded by psycopg."""
    adapters = AdaptersMap(psycopg.adapters)
    set_json_dumps(json.dumps, adapters)
    set_json_loads(jsoncodec.loads, adapters)
    return adapters


# --- statements --------------------------------------------------------------------------------

# `col IN (__[POSTCOMPILE_x])`, SQLAlchemy's list parameter: one SQL text for any length as an array.
_EXPANDING = re.compile(r"IN \(__\[POSTCOMPILE_(\w+)\]\)")


class CompiledStatement:
    """A SQLAlchemy statement as psycopg runs it: its SQL, the values it carries, how values bind."""

    __slots__ = ("defaults", "processors", "sql")

    def __init__(self, statement: ClauseElement, keys: tuple[str, ...]) -> None:
        # column_keys: which columns an INSERT or UPDATE sets, as SQLAlchemy's execute decides.
        compiled = statement.compile(dialect=DIALECT, column_keys=list(keys))
        self.sql = _EXPANDING.sub(r"= ANY(%(\1)s)", compiled.string)
        if "__[POSTCOMPILE_" in self.sql:  # NOT IN, literal_execute: not needed by the store so far
            raise NotImplementedError(f"a parameter rendered at execution time: {self.sql}")
        # Values written into the statement itself (`.limit(1)`, `column == "x"`).
        binds = {name: bind for name, bind in compiled.binds.items() if f"%({name})s" in self.sql}
        self.defaults = {name: bind.effective_value for name, bind in binds.items() if not bind.required}
        # JSON values are wrapped for psycopg (Jsonb), None included: exactly SQLAlchemy's bind processors.
        processors = {}
        for name, bind in binds.items():
            processor = bind.type.dialect_impl(DIALECT).bind_processor(DIALECT)
            if processor is not None:
                processors[name] = processor
        self.processors = tuple(processors.items())

    def parameters(self, given: Mapping[str, Any]) -> dict[str, Any]:
        values = {**self.defaults, **given} if self.defaults else dict(given)
        for name, processor in self.processors:
            if name in values:
                values[name] = processor(values[name])
        return values


_compiled: dict[tuple[ClauseElement, tuple[str, ...]], CompiledStatement] = {}
# The store builds its statements once; a statement built per call must not grow this for ever.
_COMPILED_LIMIT = 1024


def compiled(statement: ClauseElement, keys: tuple[str, ...]) -> CompiledStatement:
    """The statement compiled for these parameter names (a statement is hashed by identity)."""
    key = (statement, keys)
    found = _compiled.get(key)
    if found is None:
        if len(_compiled) >= _COMPILED_LIMIT:
            _compiled.clear()
        found = _compiled[key] = CompiledStatement(statement, keys)
    return found


class Result:
    """What a store function reads of a statement's result (the part of SQLAlchemy's Result it uses)."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: list[tuple], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[tuple]:
        return iter(self.rows)

    def all(self) -> list[tuple]:
        return self.rows

    def first(self) -> tuple | None:
        return self.rows[0] if self.rows else None

    def one_or_none(self) -> tuple | None:
        if len(self.rows) > 1:
            raise ValueError(f"one row at most was expected, {len(self.rows)} came")
        return self.first()

    def one(self) -> tuple:
        if len(self.rows) != 1:
            raise ValueError(f"one row was expected, {len(self.rows)} came")
        return self.rows[0]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def scalars(self) -> Scalars:
        return Scalars(row[0] for row in self.rows)


class Scalars(list):
    def all(self) -> list:
        return self


async def _execute(connection: AsyncConnection, statement: ClauseElement, parameters: Mapping[str, Any]) -> Result:
    statement_ = compiled(statement, tuple(parameters))
    if sql_logger.isEnabledFor(logging.DEBUG):
        sql_logger.debug("%s", statement_.sql)
    cursor = connection.cursor()
    await cursor.execute(statement_.sql, statement_.parameters(parameters))
    # Whether it returned rows, read from the result's status (cursor.description builds an
    # object per column, on every statement).
    result = cursor.pgresult
    rows = await cursor.fetchall() if result is not None and result.status == ExecStatus.TUPLES_OK else []
    return Result(rows, cursor.rowcount)


async def _execute_many(
    connection: AsyncConnection, statement: ClauseElement, parameter_sets: Sequence[Mapping[str, Any]]
) -> Result:
    if not parameter_sets:
        return Result([], 0)
    statement_ = compiled(statement, tuple(parameter_sets[0]))
    if sql_logger.isEnabledFor(logging.DEBUG):
        sql_logger.debug("%s (%d parameter sets)", statement_.sql, len(parameter_sets))
    cursor = connection.cursor()
    await cursor.executemany(statement_.sql, [statement_.parameters(given) for given in parameter_sets])
    return Result([], cursor.rowcount)


class StatementRunner:
    """The connection a store function gets on PostgreSQL: ``execute`` runs a SQLAlchemy Core
    statement with psycopg, blocking the store function's greenlet, not the event loop."""

    __slots__ = ("connection",)
    dialect = DIALECT

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    def execute(
        self, statement: ClauseElement, parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None
    ) -> Result:
        """Run the statement; with a list of parameter sets, once per set, as SQLAlchemy's
        executemany (psycopg sends them in one pipeline)."""
        if isinstance(parameters, Sequence):
            return await_(_execute_many(self.connection, statement, parameters))
        return await_(_execute(self.connection, statement, parameters or {}))


# --- connections -------------------------------------------------------------------------------


class ConnectionPool:
    """Open autocommit connections for reuse, at most ``size + overflow`` at once.

    Like SQLAlchemy's QueuePool, and unlike psycopg_pool's (which opens connections in the
    background and has a request wait for them), a request that finds no idle connection opens
    one itself: a server that refuses connections is an error at once, not at a timeout.
    """

    def __init__(
        self, connect: Callable[[], Awaitable[AsyncConnection]], *, size: int, overflow: int, wait: float
    ) -> None:
        self._connect = connect
        self.size = size
        self.capacity = size + overflow
        # How long a unit of work waits for a connection when all are in use (without a deadline).
        self.wait = wait
        self._idle: collections.deque[AsyncConnection] = collections.deque()
        self._count = 0  # idle, in use, or being opened
        # Requests waiting for a connection, first first; each is handed one, or None to open one.
        self._waiters: collections.deque[asyncio.Future] = collections.deque()
        self._closing: set[asyncio.Task] = set()
        self._closed = False

    async def get(self) -> AsyncConnection:
        while True:
            if self._idle:
                return self._idle.pop()  # the most recently used: warm, and the others may time out
            if self._count < self.capacity:
                self._count += 1
                try:
                    return await self._connect()
                except BaseException:
                    self._count -= 1
                    self._wake()
                    raise
            # Wait in line: a connection coming back goes to the first in line, never to a request
            # that arrives meanwhile (which, when it barged in, left a few waiting for half a second).
            waiter: asyncio.Future[AsyncConnection | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout(self.wait):
                    connection = await waiter
            except BaseException:
                if not waiter.done() or waiter.cancelled():
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)
                elif (handed := waiter.result()) is not None:
                    self.put(handed)  # handed over as this request gave up: to the next in line
                else:
                    self._wake()
                raise
            if connection is not None:
                return connection
            # None: a place was freed (a connection closed); open one.

    def put(self, connection: AsyncConnection) -> None:
        """Take a connection back: to the first request waiting, else kept if it is usable and
        idle and the pool not full, else closed."""
        unusable = connection.closed or connection.broken
        if self._closed or unusable or connection.info.transaction_status != TransactionStatus.IDLE:
            self._discard(connection)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        if len(self._idle) >= self.size:
            self._discard(connection)  # an overflow connection: closed, as SQLAlchemy's pool does
        else:
            self._idle.append(connection)

    def drop_idle(self) -> None:
        """Close the idle connections (the server dropped one: it has likely dropped them all)."""
        while self._idle:
            self._discard(self._idle.pop())

    def _discard(self, connection: AsyncConnection) -> None:
        self._count -= 1
        closing = asyncio.ensure_future(connection.close())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
        self._wake()

    def _wake(self) -> None:
        """Tell the first request waiting that a place is free: it opens a connection."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        self._closed = True  # connections still in use are closed when they come back
        self.capacity = 0
        self.drop_idle()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


# --- the database ------------------------------------------------------------------------------


class PostgresDatabase(Database):
    """PostgreSQL through psycopg (see the module's docstring)."""

    # Seconds to wait for a connection to the server before answering 503.
    CONNECT_TIMEOUT = 5
    # Seconds to wait for a pooled connection when every one is in use and no deadline is set.
    POOL_WAIT = 30.0

    def __init__(
        self,
        db_id: str,
        settings: DatabaseSettings,
        url: URL,
        *,
        pool_size: int = 5,
        max_overflow: int = 0,
        timeout: float | None = None,
        prepared_statements: bool = False,
    ) -> None:
        super().__init__(db_id, settings, table_schema(settings))
        self.url = url
        # Seconds a unit of work may take, from waiting for a pooled connection to the commit.
        self.timeout = timeout
        self._abandoned: set[asyncio.Task] = set()
        _, parameters = DIALECT.create_connect_args(url)
        self._connect_parameters = {
            **parameters,
            "connect_timeout": self.CONNECT_TIMEOUT,
            # The name pg_stat_activity shows for our connections, unless the URL names one.
            "application_name": parameters.get("application_name", APPLICATION_NAME),
            # None: psycopg prepares nothing. Its names (_pg3_0, _pg3_1, ...) are per client
            # connection, so behind a pooler in transaction mode a statement prepared by another
            # client under the same name, even a DELETE, could run in its place. Otherwise
            # psycopg's default: a statement run 5 times on a connection.
            "prepare_threshold": 5 if prepared_statements else None,
        }
        self._adapters = _adapters()
        self.pool = ConnectionPool(self._connect, size=pool_size, overflow=max_overflow, wait=self.POOL_WAIT)

    @property
    def dialect(self) -> str:
        return "postgresql"

    async def _connect(self) -> AsyncConnection:
        return await AsyncConnection.connect(
            **self._connect_parameters, autocommit=True, row_factory=namedtuple_row, context=self._adapters
        )

    async def run(self, work: Work[P, T], /, *args: P.args, write: bool = False, **kwargs: P.kwargs) -> T:
        if self.timeout is None:
            return await self._unit_of_work(work, args, kwargs, write=write)
        # A server that stops answering (frozen, or a network that drops packets) leaves a
        # statement waiting for as long as the socket stays open; the request would never be
        # answered. So the unit of work has a deadline.
        # The work runs in a task of its own, so that at the deadline the request is answered at
        # once, without waiting for the work's cancellation (see _abandon).
        loop = asyncio.get_running_loop()
        unit = loop.create_task(self._unit_of_work(work, args, kwargs, write=write))
        over = loop.create_future()

        def end(_=None) -> None:
            if not over.done():
                over.set_result(None)

        unit.add_done_callback(end)
        deadline = loop.call_later(self.timeout, end)
        try:
            await over
        except asyncio.CancelledError:
            self._abandon(unit)
            raise
        finally:
            deadline.cancel()
        if not unit.done():
            self._abandon(unit)
            raise DatabaseUnreachable(f"database {self.id!r} did not answer within {self.timeout:g} s")
        return unit.result()

    async def _unit_of_work(self, work: Work[P, T], args: tuple, kwargs: dict, *, write: bool) -> T:
        """Run the work once, and once more if it failed in a way that changed nothing and that a
        new connection cures: a pooled connection the server had closed."""
        try:
            return await self._attempt(work, args, kwargs, write=write)
        except _Retry as retry:
            logger.info("Database %r: %s; running the unit of work again", self.id, retry)
        try:
            return await self._attempt(work, args, kwargs, write=write)
        except _Retry as retry:
            raise DatabaseUnreachable(f"database {self.id!r}: {retry.__cause__}") from retry.__cause__

    async def _attempt(self, work: Work[P, T], args: tuple, kwargs: dict, *, write: bool) -> T:
        try:
            connection = await self.pool.get()
        except (psycopg.OperationalError, OSError) as error:
            # Refused, unreachable, or no answer within CONNECT_TIMEOUT.
            raise DatabaseUnreachable(f"database {self.id!r}: {error}") from error
        except TimeoutError as error:
            raise DatabaseUnreachable(f"database {self.id!r}: every connection stayed in use") from error
        # Where the attempt failed: in the work (rolled back: a connection lost mid-transaction
        # is rolled back by the server), or in the COMMIT, whose outcome a lost connection leaves
        # unknown, so it is never run again.
        stage = "work"
        try:
            runner = StatementRunner(connection)
            if not write:
                return await greenlet_spawn(work, runner, self.models, *args, **kwargs)
            async with connection.transaction():
                result = await greenlet_spawn(work, runner, self.models, *args, **kwargs)
                stage = "commit"
            return result
        except psycopg.errors.ProgramLimitExceeded:
            # An OperationalError by its class, but of the values given (an index row too large),
            # not of the connection.
            raise
        except (psycopg.OperationalError, psycopg.InterfaceError) as error:
            if stage == "work" and connection.broken:
                self.pool.drop_idle()
                raise _Retry("the server had closed a pooled connection") from error
            # Connection lost, server shutting down, a statement cancelled by the server: the same
            # request may succeed a moment later.
            raise DatabaseUnreachable(f"database {self.id!r}: {error}") from error
        finally:
            self.pool.put(connection)

    def _abandon(self, unit: asyncio.Task) -> None:
        """Cancel a unit of work without waiting for it: psycopg first asks the server to cancel
        the statement and, if that goes unanswered too, closes the connection, which takes longer
        than the deadline. The task is kept until it ends, and its outcome read, so that neither
        the garbage collector nor asyncio's "exception was never retrieved" see it."""
        unit.cancel()
        self._abandoned.add(unit)
        unit.add_done_callback(self._forget)

    def _forget(self, unit: asyncio.Task) -> None:
        self._abandoned.discard(unit)
        if not unit.cancelled():
            unit.exception()

    async def migrate(self) -> tuple[str | None, str]:
        """Alembic's migrations on a connection of SQLAlchemy's asyncio engine, opened for them.

        No deadline: a migration may build an index over a large table."""
        engine = create_async_engine(
            self.url,
            poolclass=NullPool,
            json_serializer=json.dumps,
            json_deserializer=jsoncodec.loads,
            connect_args={
                "connect_timeout": self.CONNECT_TIMEOUT,
                "application_name": self._connect_parameters["application_name"],
                "prepare_threshold": None,
            },
        )
        try:
            async with engine.begin() as db:
                return await db.run_sync(schema.upgrade, self.models)
        except DBAPIError as error:
            if isinstance(error.orig, psycopg.OperationalError | psycopg.InterfaceError):
                raise DatabaseUnreachable(f"database {self.id!r}: {error.orig}") from error
            raise
        finally:
            await engine.dispose()

    async def close(self) -> None:
        await self.pool.close()


class _Retry(Exception):
    """An attempt at a unit of work failed without effect, in a way the next attempt avoids."""
