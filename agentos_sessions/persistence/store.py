"""Store functions over agno's sessions and runs tables.

Each takes a SQLAlchemy ``Connection`` first (in a transaction, but for reads on PostgreSQL, which
run in autocommit) and the table ``Models``
second, never commits (the caller's unit of work does) and knows nothing of HTTP. They are
written with SQLAlchemy Core: a request's few statements cost a fraction of what the ORM's
identity map and unit of work would. Session rows come back as ``Row`` objects
with the sessions table's column names, ``metadata_`` for the ``metadata`` column.
The tables themselves are made by the migrations (``persistence.schema``).
"""

from __future__ import annotations

import functools
import json
import time
from collections import namedtuple
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    Select,
    String,
    bindparam,
    case,
    cast,
    delete,
    func,
    or_,
    select,
    text,
    type_coerce,
)
from sqlalchemy import update as update_statement
from sqlalchemy.dialects.postgresql import JSON, aggregate_order_by

from agentos_sessions.persistence.media import references
from agentos_sessions.persistence.models import Models
from agentos_sessions.settings import MediaStorageSettings

SessionRow = Row[Any]


def now() -> int:
    """Unix time in seconds, agno's timestamp unit."""
    return int(time.time())


@functools.cache
def _statements(m: Models) -> _Statements:
    return _Statements(m)


class _Statements:
    """The statements every request runs, built once per pair of tables (bound by name)."""

    def __init__(self, m: Models) -> None:
        S, R = m.sessions, m.runs
        self.session_columns = [column.label("metadata_") if column.key == "metadata" else column for column in S.c]
        by_id = select(*self.session_columns).where(S.c.session_id == bindparam("session_id"))
        self.get_session = by_id
        self.get_owned_session = by_id.where(S.c.user_id == bindparam("user_id"))
        # For read-modify-write: PostgreSQL locks the row until the transaction ends (SQLite's
        # BEGIN IMMEDIATE already holds the database's write lock; FOR UPDATE renders as nothing).
        self.lock_session = self.get_session.with_for_update()
        self.lock_owned_session = self.get_owned_session.with_for_update()
        self.session_exists = select(S.c.session_id).where(S.c.session_id == bindparam("session_id"))
        run_order = [R.c[column].asc() for column in _RUN_ORDER]
        self.run_order = run_order
        self.get_runs = select(R.c.run_data).where(R.c.session_id == bindparam("session_id")).order_by(*run_order)
        self.get_run = select(R.c.run_data).where(
            R.c.session_id == bindparam("session_id"), R.c.run_id == bindparam("run_id")
        )
        self.has_runs = select(R.c.run_id).where(R.c.session_id == bindparam("session_id")).limit(1)
        self.runs_from = self.get_runs.limit(bindparam("limit")).offset(bindparam("offset"))
        # PostgreSQL: a session and its runs (a JSON array in agno's order) in one row, and the
        # session's columns as a row of their own (what get_session returns).
        # json_agg, not jsonb_agg: it joins the runs' text instead of building one jsonb value
        # (a quarter less of the server's time for 20 runs, and no 256 MB jsonb limit).
        runs_of_session = (
            select(func.coalesce(func.json_agg(aggregate_order_by(R.c.run_data, *run_order)), text("'[]'::json")))
            .where(R.c.session_id == S.c.session_id)
            .scalar_subquery()
        )
        with_runs = select(*self.session_columns, type_coerce(runs_of_session, JSON).label("runs"))
        self.get_session_and_runs = with_runs.where(S.c.session_id == bindparam("session_id"))
        self.get_owned_session_and_runs = self.get_session_and_runs.where(S.c.user_id == bindparam("user_id"))
        self.session_record = namedtuple("SessionRecord", [column.key for column in self.session_columns])
        position = func.row_number().over(partition_by=R.c.session_id, order_by=run_order).label("position")
        ranked = (
            select(R.c.run_id, R.c.session_id, position)
            .where(R.c.session_id.in_(bindparam("session_ids", expanding=True)))
            .subquery()
        )
        self.first_runs = (
            select(ranked.c.session_id, R.c.run_data)
            .join(R, R.c.run_id == ranked.c.run_id)
            .where(ranked.c.position <= bindparam("count"))
            .order_by(ranked.c.session_id, ranked.c.position)
        )
        # The columns to set are the parameters given at execution besides the_session_id.
        self.update_session = (
            update_statement(S).where(S.c.session_id == bindparam("the_session_id")).returning(*self.session_columns)
        )
        self.delete_session = delete(S).where(S.c.session_id == bindparam("session_id"))
        self.delete_owned_session = self.delete_session.where(S.c.user_id == bindparam("user_id"))
        self.delete_runs = delete(R).where(R.c.session_id == bindparam("session_id"))
        existing = select(S.c.session_id).where(S.c.session_id.in_(bindparam("session_ids", expanding=True)))
        self.existing_sessions = existing
        self.existing_owned_sessions = existing.where(S.c.user_id == bindparam("user_id"))
        self.delete_runs_of_sessions = delete(R).where(R.c.session_id.in_(bindparam("session_ids", expanding=True)))
        self.delete_sessions = delete(S).where(S.c.session_id.in_(bindparam("session_ids", expanding=True)))
        # Media references (persistence.media.references): only the runs that can hold the one
        # sought are read. PostgreSQL tests each run's values with a JSON path. SQLite looks for
        # the key's JSON text (agno writes JSON ASCII-escaped, so the text is json.dumps(value)):
        # its JSON functions before 3.42 (Debian 12 has 3.40) fail on the NaN agno may write.
        any_value_is = text("'strict $.** ? (@ == $value)'::jsonpath")
        value = func.jsonb_build_object("value", cast(bindparam("value"), String))
        holds_value = {
            "postgresql": func.jsonb_path_exists(R.c.run_data, any_value_is, value),
            "sqlite": func.instr(type_coerce(R.c.run_data, String), bindparam("json_value", type_=String)) > 0,
        }
        holds_reference = {
            "postgresql": func.jsonb_path_exists(R.c.run_data, text("'lax $.**.media_reference'::jsonpath")),
            "sqlite": func.instr(type_coerce(R.c.run_data, String), '"media_reference"') > 0,
        }
        self.runs_holding_value = {dialect: self.get_runs.where(where) for dialect, where in holds_value.items()}
        of_sessions = R.c.session_id.in_(bindparam("session_ids", expanding=True))
        with_type = select(R.c.session_id, S.c.session_type, R.c.run_data).join(S, S.c.session_id == R.c.session_id)
        self.runs_with_references = {
            dialect: with_type.where(of_sessions, where).order_by(R.c.session_id, *run_order)
            for dialect, where in holds_reference.items()
        }


def get_session(
    db: Connection, m: Models, session_id: str, *, user_id: str | None = None, lock: bool = False
) -> SessionRow | None:
    """One session row, or None if it does not exist (or is not ``user_id``'s).

    ``lock=True`` to change it in this transaction: no other writer changes it meanwhile."""
    q = _statements(m)
    if user_id is None:
        statement = q.lock_session if lock else q.get_session
        return db.execute(statement, {"session_id": session_id}).one_or_none()
    statement = q.lock_owned_session if lock else q.get_owned_session
    return db.execute(statement, {"session_id": session_id, "user_id": user_id}).one_or_none()


def get_session_with_runs(
    db: Connection, m: Models, session_id: str, *, user_id: str | None = None
) -> tuple[SessionRow | None, list[dict[str, Any]]]:
    """A session row and its runs, or (None, []) if it does not exist (or is not ``user_id``'s).

    On PostgreSQL in one statement: reads run outside a transaction there (one statement, one
    round trip, one snapshot); SQLite reads the two in its transaction."""
    if db.dialect.name != "postgresql":
        row = get_session(db, m, session_id, user_id=user_id)
        return (row, get_runs(db, m, session_id)) if row is not None else (None, [])
    q = _statements(m)
    if user_id is None:
        found = db.execute(q.get_session_and_runs, {"session_id": session_id}).one_or_none()
    else:
        found = db.execute(q.get_owned_session_and_runs, {"session_id": session_id, "user_id": user_id}).one_or_none()
    if found is None:
        return None, []
    *columns, runs = found
    return q.session_record(*columns), [run for run in runs if isinstance(run, dict)]


def session_id_taken(db: Connection, m: Models, session_id: str) -> bool:
    return db.execute(_statements(m).session_exists, {"session_id": session_id}).first() is not None


def get_runs(db: Connection, m: Models, session_id: str) -> list[dict[str, Any]]:
    """The stored run dicts of a session, in agno's order."""
    runs = db.execute(_statements(m).get_runs, {"session_id": session_id}).scalars()
    return [run for run in runs if isinstance(run, dict)]


def get_run(db: Connection, m: Models, session_id: str, run_id: str) -> dict[str, Any] | None:
    """One stored run dict of a session, or None."""
    run = db.execute(_statements(m).get_run, {"session_id": session_id, "run_id": run_id}).scalar()
    return run if isinstance(run, dict) else None


def runs_holding(db: Connection, m: Models, session_id: str, value: str) -> list[dict[str, Any]]:
    """The runs of a session in which the string ``value`` appears (at least: the caller sifts
    them), in agno's order, read without reading the others."""
    q = _statements(m)
    parameters = {"session_id": session_id, "value": value, "json_value": json.dumps(value)}
    return [
        run for run in db.execute(q.runs_holding_value[db.dialect.name], parameters).scalars() if isinstance(run, dict)
    ]


def runs_with_media(
    db: Connection, m: Models, session_ids: Sequence[str]
) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """The runs of these sessions that may hold media references (at least), with each
    session's type, by session."""
    runs: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    statement = _statements(m).runs_with_references[db.dialect.name]
    for session_id, session_type, run in db.execute(statement, {"session_ids": list(session_ids)}):
        if isinstance(run, dict):
            runs.setdefault(session_id, (session_type, []))[1].append(run)
    return runs


def page_of_runs(
    db: Connection,
    m: Models,
    session_id: str,
    *,
    created_after: int | None = None,
    created_before: int | None = None,
    statuses: Sequence[str] | None = None,
    members_only: bool = False,
    limit: int | None = None,
    offset: int = 0,
    descending: bool = False,
) -> tuple[list[dict[str, Any]], int]:
    """The runs of a session that match, in agno's order (or its reverse), ``limit`` of them
    from ``offset`` (all if no limit), and how many match in all.

    The filters read the runs table's columns, which agno writes from the run: the time bounds
    are inclusive Unix seconds; ``statuses`` upper-case; ``members_only`` keeps the runs that
    name an agent or a team (a team session's). Only the rows of the page are read whole.
    """
    count, page = _runs_statements(
        m,
        created_after is not None,
        created_before is not None,
        bool(statuses),
        members_only,
        limit is not None,
        descending,
    )
    params: dict[str, Any] = {"session_id": session_id, "created_after": created_after}
    params |= {"created_before": created_before, "statuses": list(statuses or ()), "limit": limit, "offset": offset}
    runs = [run for run in db.execute(page, params).scalars() if isinstance(run, dict)]
    if limit is None and offset == 0:
        # Every run that matches is here: no need to count them again.
        return runs, len(runs)
    return runs, db.execute(count, params).scalar()


@functools.cache
def _runs_statements(
    m: Models, after: bool, before: bool, by_status: bool, members_only: bool, limited: bool, descending: bool
) -> tuple[Select, Select]:
    """The count and the page statements of :func:`page_of_runs` for this set of filters."""
    R = m.runs
    where = [R.c.session_id == bindparam("session_id")]
    if after:
        where.append(R.c.created_at >= bindparam("created_after"))
    if before:
        where.append(R.c.created_at <= bindparam("created_before"))
    if by_status:
        where.append(func.upper(R.c.status).in_(bindparam("statuses", expanding=True)))
    if members_only:
        where.append(or_(R.c.agent_id.is_not(None), R.c.team_id.is_not(None)))
    order = [R.c[column].desc() if descending else R.c[column].asc() for column in _RUN_ORDER]
    count = select(func.count()).select_from(R).where(*where)
    if not limited:
        return count, select(R.c.run_data).where(*where).order_by(*order)
    # The page's keys first, from the runs index alone (PostgreSQL scans it index-only, where a
    # plain OFFSET would visit the table for every run it skips), then those runs whole.
    keys = select(R.c.run_id).where(*where).order_by(*order).limit(bindparam("limit")).offset(bindparam("offset"))
    page = select(R.c.run_data).where(R.c.run_id.in_(keys.scalar_subquery())).order_by(*order)
    return count, page


def run_rows(db: Connection, m: Models, session_id: str) -> list[dict[str, Any]]:
    """A session's run rows, every column, in agno's order (to copy them)."""
    R = m.runs
    statement = select(R).where(R.c.session_id == session_id).order_by(*(R.c[c].asc() for c in _RUN_ORDER))
    return [row._asdict() for row in db.execute(statement)]


def insert_runs(db: Connection, m: Models, rows: Sequence[dict[str, Any]]) -> None:
    """Add run rows (every column given): one statement, run once per row (executemany)."""
    if rows:
        db.execute(m.runs.insert(), list(rows))


def media_keys(db: Connection, m: Models, session_ids: Sequence[str], media: MediaStorageSettings) -> list[str]:
    """The keys of the objects these sessions' runs offloaded to ``media`` (not those a run
    inherited from another session), each once: what deleting them with their media deletes."""
    keys = []
    for session_id, (session_type, runs) in runs_with_media(db, m, session_ids).items():
        keys += references.session_media_keys(runs, session_id, media, workflow=session_type == "workflow")
    return list(dict.fromkeys(keys))


def has_runs(db: Connection, m: Models, session_id: str) -> bool:
    return db.execute(_statements(m).has_runs, {"session_id": session_id}).first() is not None


_RUN_ORDER = ("run_index", "created_at", "run_id")


def first_runs(db: Connection, m: Models, session_ids: Sequence[str], *, count: int) -> dict[str, list[dict[str, Any]]]:
    """The first ``count`` runs of each session, in agno's order, in one query.

    The runs are ranked on their keys (an index of ours covers them) and only the chosen ones
    are read: ranking the payloads themselves would read every run of every session.
    """
    if not session_ids:
        return {}
    rows = db.execute(_statements(m).first_runs, {"session_ids": list(session_ids), "count": count})
    runs: dict[str, list[dict[str, Any]]] = {session_id: [] for session_id in session_ids}
    for session_id, run in rows:
        if isinstance(run, dict):
            runs[session_id].append(run)
    return runs


def iter_runs(
    db: Connection, m: Models, session_id: str, *, start: int = 0, batch: int = 4
) -> Iterable[dict[str, Any]]:
    """A session's runs in order from the ``start``-th, fetched a few at a time, for callers that stop early."""
    stmt = _statements(m).runs_from
    offset = start
    while True:
        runs = db.execute(stmt, {"session_id": session_id, "limit": batch, "offset": offset}).scalars().all()
        yield from (run for run in runs if isinstance(run, dict))
        if len(runs) < batch:
            return
        offset += batch


_PING = select(1)


def ping(db: Connection, _m: Models) -> None:
    """A query that only the database being there answers (for /health)."""
    db.execute(_PING).scalar()


def list_sessions(
    db: Connection,
    m: Models,
    *,
    session_type: str | None = None,
    component_id: str | None = None,
    user_id: str | None = None,
    session_name: str | None = None,
    metadata: dict[str, Any] | None = None,
    created_after: int | None = None,
    created_before: int | None = None,
    updated_after: int | None = None,
    updated_before: int | None = None,
    limit: int = 20,
    page: int = 1,
    sort_by: str = "created_at",
    sort_order: str = "desc",
) -> tuple[Sequence[SessionRow], int]:
    """One page of sessions (without their runs) and the total count matching the filters.

    ``metadata``: sessions whose metadata contains it (PostgreSQL's ``@>``); the time bounds are
    inclusive Unix seconds (a session without updated_at has no update time to match).
    """
    bounds = {
        "created_after": created_after,
        "created_before": created_before,
        "updated_after": updated_after,
        "updated_before": updated_before,
    }
    params: dict[str, Any] = {name: value for name, value in bounds.items() if value is not None}
    count, page_of = _list_statements(
        m,
        db.dialect.name,
        session_type=session_type,
        by_component=component_id is not None,
        by_user=user_id is not None,
        by_name=bool(session_name),
        by_metadata=metadata is not None,
        bounds=frozenset(params),
        sort_by=sort_by,
        sort_order=sort_order,
    )
    if session_type is not None:
        params["session_type"] = session_type
    if component_id is not None:
        params["component_id"] = component_id
    if user_id is not None:
        params["user_id"] = user_id
    if session_name:
        params["needle"] = session_name.lower() if db.dialect.name == "postgresql" else session_name.casefold()
    if metadata is not None:
        params["metadata"] = metadata
    rows = db.execute(page_of, {**params, "limit": limit, "offset": (page - 1) * limit}).all()
    # The count comes with each row of the page (one statement, one snapshot); a page past the
    # end has no row to bring it.
    total = rows[0].total_count if rows else db.execute(count, params).scalar() or 0
    return rows, total


def first_runs_of_unnamed(db: Connection, m: Models, rows: Sequence[SessionRow]) -> dict[str, list[dict[str, Any]]]:
    """The first run (in agno's order) of each session of a page of :func:`list_sessions` that has
    no stored name, by session_id: [] for one without runs.

    PostgreSQL's page brings them (its ``first_run`` column); SQLite's are read in one query."""
    unnamed = [row for row in rows if not has_stored_name(row.session_data)]
    if db.dialect.name == "postgresql":
        return {row.session_id: [row.first_run] if isinstance(row.first_run, dict) else [] for row in unnamed}
    return first_runs(db, m, [row.session_id for row in unnamed], count=1)


def has_stored_name(session_data: Any) -> bool:
    """Whether a session's data holds its name (as PostgreSQL's ``session_data->>'session_name' IS NOT NULL``)."""
    return isinstance(session_data, dict) and session_data.get("session_name") is not None


@functools.lru_cache(maxsize=512)
def _list_statements(
    m: Models,
    dialect: str,
    *,
    session_type: str | None,
    by_component: bool,
    by_user: bool,
    by_name: bool,
    by_metadata: bool,
    bounds: frozenset[str],
    sort_by: str,
    sort_order: str,
) -> tuple[Select, Select]:
    """The count and page statements for one shape of listing (the values are bound at execution)."""
    S = m.sessions.c
    conditions = []
    if by_user:
        conditions.append(S.user_id == bindparam("user_id"))
    if by_component:
        component = bindparam("component_id")
        columns = {"agent": S.agent_id, "team": S.team_id, "workflow": S.workflow_id}
        if session_type is None:
            conditions.append(or_(*(column == component for column in columns.values())))
        else:
            conditions.append(columns[session_type] == component)
    if session_type is not None:
        conditions.append(S.session_type == bindparam("session_type"))
    if by_name:
        conditions.append(_name_contains(dialect, m, bindparam("needle")))
    if by_metadata:
        conditions.append(_metadata_contains(dialect, m, bindparam("metadata", type_=m.sessions.c.metadata.type)))
    times = {"created": S.created_at, "updated": S.updated_at}
    for bound in bounds:
        time, side = bound.split("_")
        conditions.append(times[time] >= bindparam(bound) if side == "after" else times[time] <= bindparam(bound))
    count = select(func.count()).select_from(m.sessions).where(*conditions)
    total_count = count.scalar_subquery().label("total_count")
    session_columns = _statements(m).session_columns
    key = _sort_key(dialect, m, sort_by)
    if dialect != "postgresql":
        page_of = select(*session_columns, total_count).where(*conditions)
        page_of = _sorted(page_of, key, m.sessions.c.session_id, sort_order)
        return count, page_of.limit(bindparam("limit")).offset(bindparam("offset"))
    # PostgreSQL: the page, then its count and the first run of each session without a stored
    # name, all in one statement (one round trip). The page is a subquery so that the first runs
    # are read for its rows only, not for the rows its OFFSET skips.
    page = _sorted(
        select(*session_columns, key.label("sort_key")).where(*conditions), key, m.sessions.c.session_id, sort_order
    )
    page = page.limit(bindparam("limit")).offset(bindparam("offset")).subquery("page")
    R = m.runs.c
    first_run = (
        select(R.run_data)
        .where(R.session_id == page.c.session_id)
        .order_by(*_statements(m).run_order)
        .limit(1)
        .scalar_subquery()
    )
    unnamed = page.c.session_data.op("->>")("session_name").is_(None)
    page_of = select(
        *(page.c[column.key] for column in session_columns),
        total_count,
        case((unnamed, first_run)).label("first_run"),
    )
    return count, _sorted(page_of, page.c.sort_key, page.c.session_id, sort_order)


def _stored_name(dialect: str, m: Models):
    """SQL expression for session_data.session_name as text."""
    session_data = m.sessions.c.session_data
    if dialect == "postgresql":
        return session_data.op("->>")("session_name")
    return type_coerce(func.json_extract(session_data, "$.session_name"), String)


def _name_contains(dialect: str, m: Models, needle):
    """Case-insensitive, Unicode-aware substring match on the stored session name only; the
    needle is bound lower-cased (PostgreSQL) or case-folded (SQLite) by the caller."""
    name = _stored_name(dialect, m)
    if dialect == "postgresql":
        return func.strpos(func.lower(name), needle) > 0
    # casefold() is registered on every SQLite connection (persistence.database).
    return func.instr(func.casefold(name), needle) > 0


def _metadata_contains(dialect: str, m: Models, wanted):
    """The session's metadata contains ``wanted`` (a JSON object), as PostgreSQL's ``@>`` says."""
    metadata = m.sessions.c.metadata
    if dialect == "postgresql":
        return metadata.op("@>")(wanted)
    # json_contains() is registered on every SQLite connection (persistence.database).
    return func.json_contains(metadata, wanted) == 1


def _sort_key(dialect: str, m: Models, sort_by: str):
    S = m.sessions.c
    if sort_by == "session_name":
        return func.coalesce(_stored_name(dialect, m), "")
    if sort_by == "updated_at":
        return func.coalesce(S.updated_at, S.created_at)
    return S[sort_by]


def _sorted(stmt: Select, key, session_id, sort_order: str) -> Select:
    direction = (lambda c: c.asc()) if sort_order == "asc" else (lambda c: c.desc())
    # session_id breaks ties so that pages neither repeat nor skip rows.
    return stmt.order_by(direction(key), direction(session_id))


def insert_new_session(db: Connection, m: Models, **columns: Any) -> SessionRow | None:
    """Add a new session row (``metadata_`` for the metadata column) and return it as stored,
    or return None (and add nothing) if its session_id is taken."""
    values = {("metadata" if key == "metadata_" else key): value for key, value in columns.items()}
    return db.execute(_insert_if_new(m, db.dialect.name), values).one_or_none()


@functools.cache
def _insert_if_new(m: Models, dialect: str):
    """INSERT ... ON CONFLICT (session_id) DO NOTHING RETURNING the row: one statement, no race."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    stmt = dialect_insert(m.sessions).on_conflict_do_nothing(index_elements=[m.sessions.c.session_id])
    return stmt.returning(*_statements(m).session_columns)


_UNSET: Any = object()


def update_session(
    db: Connection,
    m: Models,
    row: SessionRow,
    *,
    session_name: str | None = None,
    session_state: dict | None = None,
    metadata: Any = _UNSET,
    summary: dict | None = None,
) -> SessionRow:
    """Replace the fields given (AgentOS's PATCH): name and state inside session_data, metadata, summary.

    ``row`` is the session as read in this transaction; the session as stored after is returned.
    """
    values: dict[str, Any] = {"updated_at": now()}
    if session_name is not None or session_state is not None:
        data = dict(row.session_data or {})
        if session_name is not None:
            data["session_name"] = session_name
        if session_state is not None:
            data["session_state"] = session_state
        values["session_data"] = data
    if metadata is not _UNSET:
        values["metadata"] = metadata
    if summary is not None:
        values["summary"] = summary
    return db.execute(_statements(m).update_session, {"the_session_id": row.session_id, **values}).one()


def merge_into_session(db: Connection, m: Models, row: SessionRow, patch: dict[str, Any]) -> SessionRow:
    """Apply a JSON merge patch (RFC 7396) of the session's name, state, metadata and summary.

    ``row`` is the session as read (and locked) in this transaction, so that the merge is made
    with what is stored now; the session as stored after is returned.
    """
    values: dict[str, Any] = {"updated_at": now()}
    if "session_name" in patch or "session_state" in patch:
        data = merge_patch(row.session_data, _some(patch, "session_name", "session_state"))
        values["session_data"] = data if data or row.session_data is not None else None
    if "metadata" in patch:
        values["metadata"] = merge_patch(row.metadata_, patch["metadata"])
    if "summary" in patch:
        values["summary"] = merge_patch(row.summary, patch["summary"])
    return db.execute(_statements(m).update_session, {"the_session_id": row.session_id, **values}).one()


def _some(patch: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: patch[key] for key in keys if key in patch}


def merge_patch(target: Any, patch: Any) -> Any:
    """``target`` with the JSON merge patch ``patch`` applied (RFC 7396, section 2); neither changes.

    An object patch is merged key by key, a null member removing its key; anything else replaces.
    """
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def delete_sessions(db: Connection, m: Models, session_ids: Sequence[str], *, user_id: str | None = None) -> int:
    """Delete sessions and their runs; ids that do not exist (or are not ``user_id``'s) are skipped."""
    return delete_sessions_by_id(db, m, existing_sessions(db, m, session_ids, user_id=user_id))


def existing_sessions(
    db: Connection, m: Models, session_ids: Sequence[str], *, user_id: str | None = None
) -> list[str]:
    """Those of the ids that name a session (one of ``user_id``'s, if given)."""
    q = _statements(m)
    if user_id is None:
        return list(db.execute(q.existing_sessions, {"session_ids": list(session_ids)}).scalars())
    owned = {"session_ids": list(session_ids), "user_id": user_id}
    return list(db.execute(q.existing_owned_sessions, owned).scalars())


def delete_sessions_by_id(db: Connection, m: Models, session_ids: Sequence[str]) -> int:
    """Delete these sessions and their runs."""
    if not session_ids:
        return 0
    q = _statements(m)
    # Explicit, so that tables created without the foreign key (older agno) lose their runs too.
    db.execute(q.delete_runs_of_sessions, {"session_ids": list(session_ids)})
    db.execute(q.delete_sessions, {"session_ids": list(session_ids)})
    return len(session_ids)


def stale_sessions(
    db: Connection,
    m: Models,
    cutoff: int,
    *,
    session_type: str | None = None,
    user_id: str | None = None,
    component_id: str | None = None,
    limit: int | None = None,
) -> list[str]:
    """The ids of sessions last updated (else created) before ``cutoff`` (Unix seconds) that
    match the filters, oldest first, at most ``limit`` of them."""
    S = m.sessions
    statement = select(S.c.session_id).where(*_stale(m, cutoff, session_type, user_id, component_id))
    statement = statement.order_by(S.c.updated_at, S.c.session_id)
    if limit is not None:
        statement = statement.limit(limit)
    return list(db.execute(statement).scalars())


def count_stale(db: Connection, m: Models, cutoff: int, **filters: Any) -> tuple[int, int]:
    """How many sessions :func:`stale_sessions` would give, and how many runs they have."""
    S, R = m.sessions, m.runs
    stale = select(S.c.session_id).where(*_stale(m, cutoff, **filters))
    sessions = db.execute(select(func.count()).select_from(stale.subquery())).scalar()
    runs = db.execute(select(func.count()).select_from(R).where(R.c.session_id.in_(stale))).scalar()
    return sessions, runs


def _stale(m: Models, cutoff: int, session_type=None, user_id=None, component_id=None) -> list:
    S = m.sessions
    where = [or_(S.c.updated_at < cutoff, (S.c.updated_at.is_(None)) & (S.c.created_at < cutoff))]
    if session_type is not None:
        where.append(S.c.session_type == session_type)
    if user_id is not None:
        where.append(S.c.user_id == user_id)
    if component_id is not None:
        where.append(or_(*(S.c[f"{kind}_id"] == component_id for kind in ("agent", "team", "workflow"))))
    return where


def count_runs(db: Connection, m: Models, session_ids: Sequence[str]) -> int:
    R = m.runs
    statement = select(func.count()).select_from(R).where(R.c.session_id.in_(list(session_ids)))
    return db.execute(statement).scalar() if session_ids else 0


def delete_owned_session(db: Connection, m: Models, session_id: str, *, user_id: str | None = None) -> bool:
    """Delete a session and its runs unless it belongs to another user than ``user_id``.

    True when the session is gone (deleted, or never there); False when it is another user's.
    """
    q = _statements(m)
    if user_id is None:
        deleted = db.execute(q.delete_session, {"session_id": session_id}).rowcount
    else:
        deleted = db.execute(q.delete_owned_session, {"session_id": session_id, "user_id": user_id}).rowcount
    if deleted:
        # Explicit, so that tables created without the foreign key (older agno) lose their runs too.
        db.execute(q.delete_runs, {"session_id": session_id})
        return True
    return user_id is None or not session_id_taken(db, m, session_id)
