"""Copying sessions and their runs from one database to another (``agentos-sessions copy``).

The source is only read. Its matching sessions are walked in session_id order, a batch at a
time (at most ``batch_size`` sessions and, unless one session alone has more, ``RUNS_PER_BATCH``
runs), and each batch is written to the target in one transaction. Rows are compared by their
last change, ``updated_at`` (``created_at`` where a row was never updated), one row at a time:

* a session or run the target lacks is inserted;
* one the source changed more recently than the target's copy is replaced by the source's;
* any other is left as the target has it (skipped): the target's is as recent, or more.

Nothing is deleted from the target. So a copy can be run again at any time, after a failure,
an interruption or more activity on the source, and copies only what changed; a run whose
run_id is another session's in the target is never moved (it is reported).

:func:`verify` then reads both databases' keys again and says whether every matching session and
run of the source is in the target, as recent as the source's.

Memory holds one batch: a few thousand runs, or the largest session's runs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, bindparam, create_engine, func, inspect, literal_column, make_url, or_, select
from sqlalchemy.exc import DataError, IntegrityError

from agentos_sessions.persistence import schema
from agentos_sessions.persistence.database import Database, psycopg_url, table_schema
from agentos_sessions.persistence.models import Models, models_for
from agentos_sessions.settings import DatabaseSettings

# Runs per batch, unless one session has more (a session is never split across batches).
RUNS_PER_BATCH = 2_000
# Ids per IN list and rows per INSERT: within SQLite's 32,766 parameters per statement.
_CHUNK = 500
# How many ids of each kind of difference the verification keeps, to show.
_EXAMPLES = 5


@dataclass(frozen=True)
class Filters:
    """Which sessions of the source to copy (None: any)."""

    session_type: str | None = None
    user_id: str | None = None
    component_id: str | None = None
    # Unix seconds: sessions last updated (else created) at or after it.
    updated_since: int | None = None


@dataclass
class Tally:
    """Rows of one kind: inserted, replaced by a more recent source row, left as they were."""

    new: int = 0
    updated: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        return self.new + self.updated + self.skipped


@dataclass
class Report:
    """What a copy did."""

    sessions: Tally = field(default_factory=Tally)
    runs: Tally = field(default_factory=Tally)
    # Runs not written because their run_id is another session's in the target: run_id -> that session.
    foreign_runs: dict[str, str] = field(default_factory=dict)
    # Sessions the target refused (a value it cannot store): session_id -> the database's message.
    refused: dict[str, str] = field(default_factory=dict)


@dataclass
class Verification:
    """The source's matching rows, and those of them the target lacks or holds in an older version."""

    sessions: int = 0
    runs: int = 0
    missing_sessions: list[str] = field(default_factory=list)
    missing_runs: list[str] = field(default_factory=list)
    older_sessions: list[str] = field(default_factory=list)
    older_runs: list[str] = field(default_factory=list)
    differences: int = 0

    def note(self, kind: list[str], key: str) -> None:
        self.differences += 1
        if len(kind) < _EXAMPLES:
            kind.append(key)


Progress = Callable[[int, int], None]


async def copy_sessions(
    source: Database, target: Database, filters: Filters, *, batch_size: int, progress: Progress | None = None
) -> Report:
    """Copy the matching sessions and their runs from ``source`` to ``target`` (migrated), batch by
    batch; ``progress(sessions, runs)`` after each batch, with the batch's counts.

    A batch the target refuses (a value its engine cannot store, such as NaN or a NUL character
    in PostgreSQL's jsonb) is written again one session at a time, and the sessions it still
    refuses are reported, not copied."""
    report = Report()
    refusals = _refusals()
    async for sessions, run_keys in _batches(source, filters, batch_size):
        try:
            await _copy_batch(source, target, sessions, run_keys, report)
        except refusals as error:
            if len(sessions) == 1:
                report.refused[sessions[0]["session_id"]] = _first_line(error)
            else:
                for session in sessions:
                    own = [key for key in run_keys if key[1] == session["session_id"]]
                    try:
                        await _copy_batch(source, target, [session], own, report)
                    except refusals as error:
                        report.refused[session["session_id"]] = _first_line(error)
        if progress is not None:
            progress(len(sessions), len(run_keys))
    return report


def source_problems(settings: DatabaseSettings) -> list[str]:
    """What keeps a database from being copied from (no file, no tables, missing columns); reads only."""
    url = make_url(settings.url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        return [f"no SQLite file {url.database!r}"]
    m = models_for(settings.session_table, settings.runs_table, table_schema(settings))
    engine = create_engine(psycopg_url(url))
    try:
        with engine.connect() as db:
            existing = set(inspect(db).get_table_names(schema=m.sessions.schema))
            absent = [table.fullname for table in (m.sessions, m.runs) if table.name not in existing]
            if absent:
                return [f"no table {', '.join(absent)}"]
            problems = schema.mismatches(db, m)
            if _legacy_runs(db, m):
                problems.append(
                    "sessions hold runs in their runs column, as agno 2 kept them: let agno 3 move them to the "
                    f"{m.runs.name} table first (agno's v3.0.0 migration), or they would not be copied"
                )
            return problems
    finally:
        engine.dispose()


def _legacy_runs(db: Connection, m: Models) -> bool:
    """Whether a session keeps runs in the sessions table's ``runs`` column (agno 2), not copied."""
    columns = {column["name"] for column in inspect(db).get_columns(m.sessions.name, schema=m.sessions.schema)}
    if "runs" not in columns:
        return False
    legacy = select(literal_column("runs")).select_from(m.sessions).where(literal_column("runs").is_not(None))
    return db.execute(legacy.limit(1)).first() is not None


async def count_matching(source: Database, filters: Filters) -> tuple[int, int]:
    """How many sessions of the source match, and how many runs they have."""
    return await source.run(_count_matching, filters)


async def verify(source: Database, target: Database, filters: Filters, *, batch_size: int) -> Verification:
    """Compare the source's matching sessions and runs with the target's, by key and last change."""
    found = Verification()
    async for sessions, run_keys in _batches(source, filters, batch_size, whole=False):
        session_ids = [session["session_id"] for session in sessions]
        theirs, their_runs = await target.run(_stamps, session_ids, [key[0] for key in run_keys])
        found.sessions += len(sessions)
        found.runs += len(run_keys)
        for session in sessions:
            stamp = theirs.get(session["session_id"])
            if stamp is None:
                found.note(found.missing_sessions, session["session_id"])
            elif stamp < session["stamp"]:
                found.note(found.older_sessions, session["session_id"])
        for run_id, session_id, stamp in run_keys:
            their = their_runs.get(run_id)
            if their is None or their[0] != session_id:
                found.note(found.missing_runs, run_id)
            elif their[1] < stamp:
                found.note(found.older_runs, run_id)
    return found


# --- batches -----------------------------------------------------------------------------------


async def _batches(source: Database, filters: Filters, batch_size: int, *, whole: bool = True):
    """The source's matching sessions in session_id order, a batch at a time: (sessions, run keys),
    each session a dict of its columns (``whole``) or of session_id and stamp, each run key
    (run_id, session_id, stamp)."""
    after = None
    while True:
        sessions = await source.run(_next_sessions, filters, after, batch_size, whole)
        if not sessions:
            return
        # A session is never split; the batch ends where the runs would pass RUNS_PER_BATCH.
        runs = 0
        for end, session in enumerate(sessions):
            runs += session.pop("run_count")
            if runs > RUNS_PER_BATCH and end > 0:
                sessions = sessions[:end]
                break
        after = sessions[-1]["session_id"]
        run_keys = await source.run(_run_keys, [session["session_id"] for session in sessions])
        yield sessions, run_keys


async def _copy_batch(
    source: Database, target: Database, sessions: list[dict], run_keys: list[tuple], report: Report
) -> None:
    """Write one batch to the target (one transaction), counting what was done."""
    session_ids = [session["session_id"] for session in sessions]
    theirs, their_runs = await target.run(_stamps, session_ids, [key[0] for key in run_keys])
    sessions_tally, runs_tally = Tally(), Tally()
    to_write = []
    for session in sessions:
        stamp = theirs.get(session["session_id"])
        if stamp is None or stamp < _stamp(session):
            to_write.append(session)
        _count(sessions_tally, stamp, _stamp(session))
    runs_to_read, foreign = [], {}
    for run_id, session_id, stamp in run_keys:
        their = their_runs.get(run_id)
        if their is not None and their[0] != session_id:
            foreign[run_id] = their[0]
            continue
        if their is None or their[1] < stamp:
            runs_to_read.append(run_id)
        _count(runs_tally, None if their is None else their[1], stamp)
    runs = await source.run(_runs_by_id, runs_to_read) if runs_to_read else []
    if to_write or runs:
        await target.run(_write, to_write, runs, write=True)
    # Counted once the batch is written: a refused batch counts nothing.
    for total, batch in ((report.sessions, sessions_tally), (report.runs, runs_tally)):
        total.new, total.updated, total.skipped = (
            total.new + batch.new,
            total.updated + batch.updated,
            total.skipped + batch.skipped,
        )
    report.foreign_runs.update(foreign)


def _count(tally: Tally, theirs: int | None, ours: int) -> None:
    if theirs is None:
        tally.new += 1
    elif theirs < ours:
        tally.updated += 1
    else:
        tally.skipped += 1


def _stamp(row: dict[str, Any]) -> int:
    return row["updated_at"] if row["updated_at"] is not None else row["created_at"]


def _refusals() -> tuple[type[Exception], ...]:
    """The errors of a database that refuses a value (not of one that cannot be reached)."""
    refusals: tuple[type[Exception], ...] = (DataError, IntegrityError)
    try:
        import psycopg
    except ImportError:  # psycopg is the optional driver of PostgreSQL
        return refusals
    return (*refusals, psycopg.DataError, psycopg.IntegrityError)


def _first_line(error: Exception) -> str:
    message = str(getattr(error, "orig", None) or error)
    return message.strip().splitlines()[0] if message.strip() else type(error).__name__


def _chunks(values: Sequence, size: int = _CHUNK) -> Iterator[Sequence]:
    for first in range(0, len(values), size):
        yield values[first : first + size]


# --- units of work -----------------------------------------------------------------------------


@functools.cache
def _statements(m: Models) -> _Statements:
    return _Statements(m)


class _Statements:
    def __init__(self, m: Models) -> None:
        S, R = m.sessions, m.runs
        self.session_stamp = func.coalesce(S.c.updated_at, S.c.created_at)
        self.run_stamp = func.coalesce(R.c.updated_at, R.c.created_at)
        self.run_count = select(func.count()).select_from(R).where(R.c.session_id == S.c.session_id).scalar_subquery()
        ids = bindparam("ids", expanding=True)
        self.run_keys = (
            select(R.c.run_id, R.c.session_id, self.run_stamp)
            .where(R.c.session_id.in_(ids))
            .order_by(R.c.session_id, R.c.run_index, R.c.created_at, R.c.run_id)
        )
        self.session_stamps = select(S.c.session_id, self.session_stamp).where(S.c.session_id.in_(ids))
        self.run_stamps = select(R.c.run_id, R.c.session_id, self.run_stamp).where(R.c.run_id.in_(ids))
        self.runs_by_id = select(R).where(R.c.run_id.in_(ids))


def _matching(m: Models, filters: Filters) -> list:
    S = m.sessions
    where = []
    if filters.session_type is not None:
        where.append(S.c.session_type == filters.session_type)
    if filters.user_id is not None:
        where.append(S.c.user_id == filters.user_id)
    if filters.component_id is not None:
        where.append(or_(*(S.c[f"{kind}_id"] == filters.component_id for kind in ("agent", "team", "workflow"))))
    if filters.updated_since is not None:
        where.append(_statements(m).session_stamp >= filters.updated_since)
    return where


def _count_matching(db: Connection, m: Models, filters: Filters) -> tuple[int, int]:
    S, R = m.sessions, m.runs
    matching = select(S.c.session_id).where(*_matching(m, filters))
    sessions = db.execute(select(func.count()).select_from(matching.subquery())).scalar()
    runs = db.execute(select(func.count()).select_from(R).where(R.c.session_id.in_(matching))).scalar()
    return sessions, runs


def _next_sessions(
    db: Connection, m: Models, filters: Filters, after: str | None, limit: int, whole: bool
) -> list[dict[str, Any]]:
    """Up to ``limit`` matching sessions after ``after`` in session_id order, each with its run count."""
    S, q = m.sessions, _statements(m)
    columns = [*S.c] if whole else [S.c.session_id, q.session_stamp.label("stamp")]
    statement = select(*columns, q.run_count.label("run_count")).where(*_matching(m, filters))
    if after is not None:
        statement = statement.where(S.c.session_id > after)
    statement = statement.order_by(S.c.session_id).limit(limit)
    return [row._asdict() for row in db.execute(statement)]


def _run_keys(db: Connection, m: Models, session_ids: Sequence[str]) -> list[tuple[str, str, int]]:
    q = _statements(m)
    return [tuple(row) for ids in _chunks(session_ids) for row in db.execute(q.run_keys, {"ids": list(ids)})]


def _stamps(
    db: Connection, m: Models, session_ids: Sequence[str], run_ids: Sequence[str]
) -> tuple[dict[str, int], dict[str, tuple[str, int]]]:
    """The last change of each of these sessions and runs the database has (runs with their session)."""
    q = _statements(m)
    sessions = {
        session_id: stamp
        for ids in _chunks(session_ids)
        for session_id, stamp in db.execute(q.session_stamps, {"ids": list(ids)})
    }
    runs = {
        run_id: (session_id, stamp)
        for ids in _chunks(run_ids)
        for run_id, session_id, stamp in db.execute(q.run_stamps, {"ids": list(ids)})
    }
    return sessions, runs


def _runs_by_id(db: Connection, m: Models, run_ids: Sequence[str]) -> list[dict[str, Any]]:
    q = _statements(m)
    return [row._asdict() for ids in _chunks(run_ids) for row in db.execute(q.runs_by_id, {"ids": list(ids)})]


def _write(db: Connection, m: Models, sessions: Sequence[dict], runs: Sequence[dict]) -> None:
    """Insert the rows, or replace the database's where the given row changed more recently (and,
    for a run, belongs to the same session): the comparison is made again here, in the write's
    transaction, so a row changed since it was read is never replaced by an older one."""
    for table, rows in ((m.sessions, sessions), (m.runs, runs)):
        if rows:
            db.execute(_upsert(table, db.dialect.name), list(rows))


@functools.cache
def _upsert(table: Table, dialect: str):
    """INSERT ... ON CONFLICT DO UPDATE where the new row is more recent (a run: of the same session)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(table)
    new, current = statement.excluded, table.c
    condition = func.coalesce(new.updated_at, new.created_at) > func.coalesce(current.updated_at, current.created_at)
    if "parent_run_id" in current:  # the runs table
        condition = condition & (current.session_id == new.session_id)
    return statement.on_conflict_do_update(
        index_elements=list(table.primary_key.columns),
        set_={column.name: new[column.name] for column in table.columns if not column.primary_key},
        where=condition,
    )
