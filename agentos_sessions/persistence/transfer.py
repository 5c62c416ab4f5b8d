"""Copying sessions and their runs from one database to another (``agentos-sessions copy``).

The source is only read. Its matching sessions are walked in session_id order, a batch at a
time: at most ``batch_size`` sessions, fewer where their runs would pass ``RUNS_PER_BATCH`` runs
or ``BYTES_PER_BATCH`` bytes of stored JSON, so that memory holds one batch. A batch is written
to the target in one transaction, except a session whose runs alone pass those bounds: its runs
go a bounded chunk per transaction, the session row with the first.

Rows are compared one at a time by their last change, ``updated_at`` (``created_at`` where a row
was never updated):

* a session or run the target lacks is inserted;
* one the source changed more recently is replaced by the source's, and so is one changed in the
  same second (agno's timestamps are whole seconds) whose content differs;
* any other is left as the target has it (skipped): the target's is the same, or more recent.

The comparison is made again in each upsert, so a row changed in the target meanwhile is never
replaced by an older one. Nothing is deleted from the target. So a copy can be run again at any
time, after a failure, an interruption or more activity on the source, and writes what changed.

A session the source cannot give (a value that is not JSON, text that is not UTF-8) or the target
refuses (a value its engine cannot store, such as NaN or NUL in PostgreSQL's jsonb, or a key too
long for an index) is set aside with the reason, and the others copied; a run whose run_id is
another session's in the target is never moved. Any other failure stops the copy
(:class:`CopyFailed`, naming the side).

:func:`verify` reads both sides again, content included, and says whether every matching session
and run of the source is in the target, the same or more recent.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import (
    Connection,
    LargeBinary,
    Table,
    bindparam,
    cast,
    create_engine,
    exists,
    func,
    inspect,
    literal_column,
    make_url,
    or_,
    select,
    text,
)
from sqlalchemy import String as SQLString
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from agentos_sessions.persistence import schema
from agentos_sessions.persistence.database import (
    Database,
    DatabaseUnavailable,
    psycopg_url,
    table_schema,
)
from agentos_sessions.persistence.models import Models, models_for
from agentos_sessions.settings import DatabaseSettings

T = TypeVar("T")

# Bounds of a batch, unless one session alone passes them: runs, and bytes of their stored JSON
# (text on SQLite; jsonb, maybe compressed, on PostgreSQL).
RUNS_PER_BATCH = 2_000
BYTES_PER_BATCH = 8 * 1024 * 1024
# Ids per IN list: within SQLite's 32,766 parameters per statement.
_CHUNK = 500
# How many ids of each kind of difference the verification keeps, to show.
_EXAMPLES = 5


@dataclass(frozen=True)
class Filters:
    """Which sessions of the source to copy (None: any)."""

    session_type: str | None = None
    user_id: str | None = None
    component_id: str | None = None
    # Unix seconds: sessions last updated (else created) at or after it, or with a run that was.
    updated_since: int | None = None


@dataclass
class Tally:
    """Rows of one kind: inserted, replaced by the source's, left as they were."""

    new: int = 0
    updated: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        return self.new + self.updated + self.skipped

    def add(self, other: Tally) -> None:
        self.new, self.updated, self.skipped = (
            self.new + other.new,
            self.updated + other.updated,
            self.skipped + other.skipped,
        )


@dataclass
class Report:
    """What a copy did."""

    sessions: Tally = field(default_factory=Tally)
    runs: Tally = field(default_factory=Tally)
    # Runs not written because their run_id is another session's in the target: run_id -> that session.
    foreign_runs: dict[str, str] = field(default_factory=dict)
    # Sessions not copied: session_id -> why (the source cannot give it, the target refused it).
    set_aside: dict[str, str] = field(default_factory=dict)


@dataclass
class Verification:
    """The source's matching rows, and those of them the target lacks or holds in another version."""

    sessions: int = 0
    runs: int = 0
    missing_sessions: list[str] = field(default_factory=list)
    stale_sessions: list[str] = field(default_factory=list)
    missing_runs: list[str] = field(default_factory=list)
    stale_runs: list[str] = field(default_factory=list)
    differences: int = 0

    def note(self, kind: list[str], key: str) -> None:
        self.differences += 1
        if len(kind) < _EXAMPLES:
            kind.append(key)

    def add(self, other: Verification) -> None:
        self.sessions += other.sessions
        self.runs += other.runs
        for kind in ("missing_sessions", "stale_sessions", "missing_runs", "stale_runs"):
            mine = getattr(self, kind)
            mine += getattr(other, kind)[: _EXAMPLES - len(mine)]
        self.differences += other.differences


class CopyFailed(Exception):
    """A database failed in a way that setting sessions aside does not avoid."""

    def __init__(self, side: str, error: BaseException) -> None:
        if isinstance(error, DatabaseUnavailable) and error.__cause__ is not None:
            error = error.__cause__  # the driver's own words
        super().__init__(f"the database to copy {side}: {first_line(error)}")


class _SetAside(Exception):
    """A session cannot be copied (or one of a batch cannot): the reason the report gives."""


Progress = Callable[[int, int], None]


async def copy_sessions(
    source: Database, target: Database, filters: Filters, *, batch_size: int, progress: Progress | None = None
) -> Report:
    """Copy the matching sessions and their runs from ``source`` to ``target`` (migrated), batch
    by batch; ``progress(sessions, runs)`` after each batch, with the batch's counts."""
    report = Report()
    async for batch in _batches(source, filters, batch_size):

        async def copy(session_ids: list[str]) -> None:
            done = await _copy(source, target, session_ids)
            report.sessions.add(done.sessions)
            report.runs.add(done.runs)
            report.foreign_runs.update(done.foreign_runs)

        report.set_aside.update(await _isolating([key.session_id for key in batch], copy))
        if progress is not None:
            progress(len(batch), sum(key.runs for key in batch))
    return report


async def verify(source: Database, target: Database, filters: Filters, *, batch_size: int) -> Verification:
    """Compare the source's matching sessions and runs with the target's: present, and the same
    or more recent."""
    found = Verification()
    async for batch in _batches(source, filters, batch_size):

        async def compare(session_ids: list[str]) -> None:
            found.add(await _compare(source, target, session_ids))

        for session_id in await _isolating([key.session_id for key in batch], compare):
            found.sessions += 1
            found.note(found.missing_sessions, session_id)
    return found


async def count_matching(source: Database, filters: Filters) -> tuple[int, int]:
    """How many sessions of the source match, and how many runs they have."""
    return await _read_all(source, _count_matching, filters)


async def prepare_target(target: Database) -> None:
    """Migrate the target (create the tables where missing)."""
    try:
        await target.migrate()
    except (DatabaseUnavailable, SQLAlchemyError, OSError, *_psycopg_errors()) as error:
        raise CopyFailed("to", error) from error


async def analyze_target(target: Database) -> None:
    """PostgreSQL: refresh the planner's statistics of the tables just filled, as autovacuum would
    later. Until then the planner, guessing, may choose slow plans, and JIT-compile each query
    (a few hundred ms each) for the verification and the servers that follow."""
    if target.dialect == "postgresql":
        await _write(target, _analyze)


def _analyze(db: Connection, m: Models) -> None:
    for table in (m.sessions, m.runs):
        db.execute(text(f"ANALYZE {_quoted(table)}"))


def _quoted(table: Table) -> str:
    return ".".join(f'"{part}"' for part in (table.schema, table.name) if part)


def source_problems(settings: DatabaseSettings) -> list[str]:
    """What keeps a database from being copied from (no file, no tables, missing columns, runs
    still in agno 2's column); reads only."""
    url = make_url(settings.url)
    if url.get_backend_name() == "sqlite":
        if not Path(url.database or "").is_file():
            return [f"no SQLite file {url.database!r}"]
        engine = create_engine(
            url.set(database=Path(url.database).resolve().as_uri(), query={"mode": "ro", "uri": "true"})
        )
    else:
        engine = create_engine(psycopg_url(url), connect_args={"connect_timeout": 5})
    m = models_for(settings.session_table, settings.runs_table, table_schema(settings))
    try:
        with engine.connect() as db:
            existing = set(inspect(db).get_table_names(schema=m.sessions.schema))
            absent = [table.fullname for table in (m.sessions, m.runs) if table.name not in existing]
            if absent:
                return [f"no table {', '.join(absent)}"]
            problems = schema.mismatches(db, m)
            if not problems and (unmoved := _runs_only_in_legacy_column(db, m)):
                problems.append(
                    f"{unmoved} sessions keep their runs only in the sessions table's runs column, as agno 2 did: "
                    f"let agno 3 move them to the {m.runs.name} table first (its v3.0.0 migration)"
                )
            return problems
    finally:
        engine.dispose()


def _runs_only_in_legacy_column(db: Connection, m: Models) -> int:
    """How many sessions hold runs in agno 2's ``runs`` column and none in the runs table: what
    copy, which copies the runs table, would leave behind. (agno 3's migration keeps the column
    filled, as a backup, once the runs are in the table.)"""
    S, R = m.sessions, m.runs
    columns = {column["name"] for column in inspect(db).get_columns(S.name, schema=S.schema)}
    if "runs" not in columns:
        return 0
    legacy = cast(literal_column("runs"), SQLString)
    unmoved = (
        select(func.count())
        .select_from(S)
        .where(legacy.is_not(None), legacy.not_in(["null", "[]"]), ~exists().where(R.c.session_id == S.c.session_id))
    )
    return db.execute(unmoved).scalar()


# --- batches -----------------------------------------------------------------------------------


class SessionKey(NamedTuple):
    session_id: str
    runs: int
    bytes: int


class RunKey(NamedTuple):
    run_id: str
    session_id: str
    stamp: int
    bytes: int


async def _batches(source: Database, filters: Filters, batch_size: int) -> AsyncIterator[list[SessionKey]]:
    """The source's matching sessions in session_id order, a batch at a time (their keys)."""
    after = None
    while True:
        keys = await _read_all(source, _next_keys, filters, after, batch_size)
        if not keys:
            return
        keys = _bounded(keys, lambda key: (key.runs, key.bytes))[0]
        after = keys[-1].session_id
        yield keys


async def _isolating(session_ids: list[str], work: Callable[[list[str]], Awaitable[None]]) -> dict[str, str]:
    """``work`` on the sessions together or, if one of them must be set aside, on each alone:
    those set aside, with why."""
    try:
        await work(session_ids)
        return {}
    except _SetAside as error:
        if len(session_ids) == 1:
            return {session_ids[0]: str(error)}
    set_aside = {}
    for session_id in session_ids:
        try:
            await work([session_id])
        except _SetAside as error:
            set_aside[session_id] = str(error)
    return set_aside


async def _copy(source: Database, target: Database, session_ids: list[str]) -> Report:
    """Copy these sessions; what was done."""
    done = Report()
    sessions = await _read(source, _sessions_by_id, session_ids)
    run_keys = await _read(source, _run_keys, session_ids)
    theirs = await _look(target, _session_stamps, session_ids)
    their_runs = await _look(target, _run_stamps, [key.run_id for key in run_keys])
    # Sessions: written if new or more recent; if as recent, only if their content differs.
    tied = [session for session in sessions if theirs.get(session["session_id"]) == _stamp(session)]
    their_tied = await _look(target, _sessions_by_id, [session["session_id"] for session in tied]) if tied else []
    unchanged = {session["session_id"] for session in _same_rows(tied, their_tied, "session_id")}
    sessions_to_write = []
    for session in sessions:
        their = theirs.get(session["session_id"])
        if their is None:
            done.sessions.new += 1
        elif their > _stamp(session) or session["session_id"] in unchanged:
            done.sessions.skipped += 1
            continue
        else:
            done.sessions.updated += 1
        sessions_to_write.append(session)
    # Runs: those the target lacks, has older, or has from the same second, read a chunk at a time.
    candidates = []
    for key in run_keys:
        their = their_runs.get(key.run_id)
        if their is not None and their[0] != key.session_id:
            done.foreign_runs[key.run_id] = their[0]
        elif their is not None and their[1] > key.stamp:
            done.runs.skipped += 1
        else:
            candidates.append(key)
    for number, chunk in enumerate(_chunks_by_size(candidates) or [[]]):
        runs = await _read(source, _runs_by_id, [key.run_id for key in chunk]) if chunk else []
        tied_ids = {key.run_id for key in chunk if key.run_id in their_runs and their_runs[key.run_id][1] == key.stamp}
        their_tied = await _look(target, _runs_by_id, list(tied_ids)) if tied_ids else []
        tied = [run for run in runs if run["run_id"] in tied_ids]
        unchanged = {run["run_id"] for run in _same_rows(tied, their_tied, "run_id")}
        runs_to_write = []
        for run in runs:
            if run["run_id"] in unchanged:
                done.runs.skipped += 1
                continue
            if run["run_id"] in their_runs:
                done.runs.updated += 1
            else:
                done.runs.new += 1
            runs_to_write.append(run)
        rows = (sessions_to_write if number == 0 else [], runs_to_write)
        if any(rows):
            await _write(target, _upsert_rows, *rows)
    return done


async def _compare(source: Database, target: Database, session_ids: list[str]) -> Verification:
    found = Verification()
    sessions = await _read(source, _sessions_by_id, session_ids)
    run_keys = await _read(source, _run_keys, session_ids)
    theirs = {row["session_id"]: row for row in await _look(target, _sessions_by_id, session_ids)}
    found.sessions, found.runs = len(sessions), len(run_keys)
    for session in sessions:
        their = theirs.get(session["session_id"])
        if their is None:
            found.note(found.missing_sessions, session["session_id"])
        elif _older(their, session):
            found.note(found.stale_sessions, session["session_id"])
    for chunk in _chunks_by_size(run_keys):
        ids = [key.run_id for key in chunk]
        ours = await _read(source, _runs_by_id, ids)
        their_runs = {row["run_id"]: row for row in await _look(target, _runs_by_id, ids)}
        for run in ours:
            their = their_runs.get(run["run_id"])
            if their is None or their["session_id"] != run["session_id"]:
                found.note(found.missing_runs, run["run_id"])
            elif _older(their, run):
                found.note(found.stale_runs, run["run_id"])
    return found


def _older(theirs: dict, ours: dict) -> bool:
    """Whether the target's row is behind the source's: older, or as recent with other values."""
    return _stamp(theirs) < _stamp(ours) or (_stamp(theirs) == _stamp(ours) and _canonical(theirs) != _canonical(ours))


def _same_rows(ours: Sequence[dict], theirs: Sequence[dict], key: str) -> list[dict]:
    """Those of ``ours`` whose row in ``theirs`` (by ``key``) holds the same values."""
    their = {row[key]: _canonical(row) for row in theirs}
    return [row for row in ours if their.get(row[key]) == _canonical(row)]


def _canonical(row: dict) -> str:
    """A row's values in one spelling, whichever engine read them (JSON key order, NaN included)."""
    return json.dumps(row, sort_keys=True, default=str)


def _chunks_by_size(keys: Sequence[RunKey]) -> list[list[RunKey]]:
    """The runs in chunks within RUNS_PER_BATCH and BYTES_PER_BATCH (one run at least each)."""
    return _bounded(keys, lambda key: (1, key.bytes))


def _bounded(items: Sequence[T], weight: Callable[[T], tuple[int, int]]) -> list[list[T]]:
    """The items in consecutive chunks, each within RUNS_PER_BATCH runs and BYTES_PER_BATCH bytes
    by ``weight`` (runs, bytes), but for an item that alone passes them."""
    chunks: list[list[T]] = []
    runs = size = 0
    for item in items:
        item_runs, item_bytes = weight(item)
        if not chunks or runs + item_runs > RUNS_PER_BATCH or size + item_bytes > BYTES_PER_BATCH:
            chunks.append([])
            runs = size = 0
        chunks[-1].append(item)
        runs, size = runs + item_runs, size + item_bytes
    return chunks


def _stamp(row: dict[str, Any]) -> int:
    return row["updated_at"] if row["updated_at"] is not None else row["created_at"]


def first_line(error: BaseException) -> str:
    message = str(getattr(error, "orig", None) or error).strip()
    return message.splitlines()[0] if message else type(error).__name__


def _chunks(values: Sequence, size: int = _CHUNK) -> Iterator[Sequence]:
    for first in range(0, len(values), size):
        yield values[first : first + size]


# --- the two sides -----------------------------------------------------------------------------


def _psycopg_errors() -> tuple[type[Exception], ...]:
    try:
        import psycopg
    except ImportError:  # psycopg is the optional driver of PostgreSQL
        return ()
    return (psycopg.Error,)


def _refusals() -> tuple[type[Exception], ...]:
    """The errors of a database that refuses a value (not of one that cannot be reached)."""
    refusals: tuple[type[Exception], ...] = (DataError, IntegrityError)
    try:
        import psycopg
    except ImportError:
        return refusals
    return (*refusals, psycopg.DataError, psycopg.IntegrityError, psycopg.errors.ProgramLimitExceeded)


async def _read(source: Database, work, *args):
    """A unit of work on the source: a failure of its rows sets them aside; of the database, stops."""
    try:
        return await source.run(work, *args)
    except DatabaseUnavailable as error:
        raise CopyFailed("from", error) from error
    except (SQLAlchemyError, ValueError, *_psycopg_errors()) as error:
        raise _SetAside(f"the source cannot give it: {first_line(error)}") from error


async def _read_all(source: Database, work, *args):
    """A unit of work on the source that no session can be set aside from (keys, counts): any
    failure stops the copy."""
    try:
        return await _read(source, work, *args)
    except _SetAside as error:
        raise CopyFailed("from", error.__cause__ or error) from error


async def _look(target: Database, work, *args):
    """A read on the target."""
    try:
        return await target.run(work, *args)
    except ValueError as error:  # a value the target holds that is not JSON
        raise _SetAside(f"the target's copy cannot be read: {first_line(error)}") from error
    except (DatabaseUnavailable, SQLAlchemyError, *_psycopg_errors()) as error:
        raise CopyFailed("to", error) from error


async def _write(target: Database, work, *args) -> None:
    """A write on the target, in one transaction: a value it refuses sets the rows aside."""
    try:
        await target.run(work, *args, write=True)
    except _refusals() as error:
        raise _SetAside(f"the target refused it: {first_line(error)}") from error
    except (DatabaseUnavailable, SQLAlchemyError, *_psycopg_errors()) as error:
        raise CopyFailed("to", error) from error


# --- units of work -----------------------------------------------------------------------------


@functools.cache
def _statements(m: Models, dialect: str) -> _Statements:
    return _Statements(m, dialect)


class _Statements:
    def __init__(self, m: Models, dialect: str) -> None:
        S, R = m.sessions, m.runs
        self.session_stamp = func.coalesce(S.c.updated_at, S.c.created_at)
        self.run_stamp = func.coalesce(R.c.updated_at, R.c.created_at)
        # What a run's JSON takes in the database, without decoding it.
        if dialect == "postgresql":
            self.run_bytes = func.pg_column_size(R.c.run_data)
        else:
            self.run_bytes = func.length(cast(R.c.run_data, LargeBinary))
        of_session = R.c.session_id == S.c.session_id
        self.run_count = select(func.count()).select_from(R).where(of_session).scalar_subquery()
        self.runs_bytes = select(func.coalesce(func.sum(self.run_bytes), 0)).where(of_session).scalar_subquery()
        ids = bindparam("ids", expanding=True)
        self.sessions_by_id = select(S).where(S.c.session_id.in_(ids))
        self.run_keys = (
            select(R.c.run_id, R.c.session_id, self.run_stamp, self.run_bytes)
            .where(R.c.session_id.in_(ids))
            .order_by(R.c.session_id, R.c.run_index, R.c.created_at, R.c.run_id)
        )
        self.session_stamps = select(S.c.session_id, self.session_stamp).where(S.c.session_id.in_(ids))
        self.run_stamps = select(R.c.run_id, R.c.session_id, self.run_stamp).where(R.c.run_id.in_(ids))
        self.runs_by_id = select(R).where(R.c.run_id.in_(ids))


def _matching(m: Models, dialect: str, filters: Filters) -> list:
    S, R, q = m.sessions, m.runs, _statements(m, dialect)
    where = []
    if filters.session_type is not None:
        where.append(S.c.session_type == filters.session_type)
    if filters.user_id is not None:
        where.append(S.c.user_id == filters.user_id)
    if filters.component_id is not None:
        where.append(or_(*(S.c[f"{kind}_id"] == filters.component_id for kind in ("agent", "team", "workflow"))))
    if filters.updated_since is not None:
        # agno updates a run without its session (upsert_run): a run changed since counts too.
        changed_run = exists().where(R.c.session_id == S.c.session_id, q.run_stamp >= filters.updated_since)
        where.append(or_(q.session_stamp >= filters.updated_since, changed_run))
    return where


def _count_matching(db: Connection, m: Models, filters: Filters) -> tuple[int, int]:
    S, R = m.sessions, m.runs
    matching = select(S.c.session_id).where(*_matching(m, db.dialect.name, filters))
    sessions = db.execute(select(func.count()).select_from(matching.subquery())).scalar()
    runs = db.execute(select(func.count()).select_from(R).where(R.c.session_id.in_(matching))).scalar()
    return sessions, runs


def _next_keys(db: Connection, m: Models, filters: Filters, after: str | None, limit: int) -> list[SessionKey]:
    """Up to ``limit`` matching sessions after ``after`` in session_id order, with their runs' count and size."""
    S, q = m.sessions, _statements(m, db.dialect.name)
    statement = select(S.c.session_id, q.run_count, q.runs_bytes).where(*_matching(m, db.dialect.name, filters))
    if after is not None:
        statement = statement.where(S.c.session_id > after)
    statement = statement.order_by(S.c.session_id).limit(limit)
    return [SessionKey(session_id, runs, int(size)) for session_id, runs, size in db.execute(statement)]


def _sessions_by_id(db: Connection, m: Models, session_ids: Sequence[str]) -> list[dict[str, Any]]:
    q = _statements(m, db.dialect.name)
    return [row._asdict() for ids in _chunks(session_ids) for row in db.execute(q.sessions_by_id, {"ids": list(ids)})]


def _run_keys(db: Connection, m: Models, session_ids: Sequence[str]) -> list[RunKey]:
    q = _statements(m, db.dialect.name)
    return [
        RunKey(run_id, session_id, stamp, int(size or 0))
        for ids in _chunks(session_ids)
        for run_id, session_id, stamp, size in db.execute(q.run_keys, {"ids": list(ids)})
    ]


def _session_stamps(db: Connection, m: Models, session_ids: Sequence[str]) -> dict[str, int]:
    q = _statements(m, db.dialect.name)
    return {
        session_id: stamp
        for ids in _chunks(session_ids)
        for session_id, stamp in db.execute(q.session_stamps, {"ids": list(ids)})
    }


def _run_stamps(db: Connection, m: Models, run_ids: Sequence[str]) -> dict[str, tuple[str, int]]:
    """Each of these runs the database has: (its session, its last change)."""
    q = _statements(m, db.dialect.name)
    return {
        run_id: (session_id, stamp)
        for ids in _chunks(run_ids)
        for run_id, session_id, stamp in db.execute(q.run_stamps, {"ids": list(ids)})
    }


def _runs_by_id(db: Connection, m: Models, run_ids: Sequence[str]) -> list[dict[str, Any]]:
    q = _statements(m, db.dialect.name)
    return [row._asdict() for ids in _chunks(run_ids) for row in db.execute(q.runs_by_id, {"ids": list(ids)})]


def _upsert_rows(db: Connection, m: Models, sessions: Sequence[dict], runs: Sequence[dict]) -> None:
    """Insert the rows, or replace the database's where the given row is as recent or more (and,
    for a run, belongs to the same session): the comparison is made again here, in the write's
    transaction, so a row changed since it was read is never replaced by an older one."""
    for table, rows in ((m.sessions, sessions), (m.runs, runs)):
        if rows:
            db.execute(_upsert(table, db.dialect.name), list(rows))


@functools.cache
def _upsert(table: Table, dialect: str):
    """INSERT ... ON CONFLICT DO UPDATE unless the database's row is more recent (a run: or another
    session's)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(table)
    new, current = statement.excluded, table.c
    condition = func.coalesce(new.updated_at, new.created_at) >= func.coalesce(current.updated_at, current.created_at)
    if "parent_run_id" in current:  # the runs table
        condition = condition & (current.session_id == new.session_id)
    return statement.on_conflict_do_update(
        index_elements=list(table.primary_key.columns),
        set_={column.name: new[column.name] for column in table.columns if not column.primary_key},
        where=condition,
    )
