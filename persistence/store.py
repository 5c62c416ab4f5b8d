"""Store functions over agno's sessions and runs tables.

Each takes the SQLAlchemy ``Session`` first and the table ``Models`` second, never commits
(the caller's unit of work does) and knows nothing of HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, delete, func, inspect, or_, select, type_coerce
from sqlalchemy.orm import Session

from persistence.models import AGNO_TABLE_VERSION, Models, SchemaVersion, SessionColumns


def now() -> int:
    """Unix time in seconds, agno's timestamp unit."""
    return int(time.time())


def get_session(db: Session, m: Models, session_id: str, *, user_id: str | None = None) -> SessionColumns | None:
    """One session row, or None if it does not exist (or is not ``user_id``'s)."""
    stmt = select(m.Session).where(m.Session.session_id == session_id)
    if user_id is not None:
        stmt = stmt.where(m.Session.user_id == user_id)
    return db.scalars(stmt).one_or_none()


def get_session_with_runs(
    db: Session, m: Models, session_id: str, *, user_id: str | None = None
) -> tuple[SessionColumns | None, list[dict[str, Any]]]:
    """A session row and its runs, or (None, []) if it does not exist (or is not ``user_id``'s)."""
    row = get_session(db, m, session_id, user_id=user_id)
    return (row, get_runs(db, m, session_id)) if row is not None else (None, [])


def session_id_taken(db: Session, m: Models, session_id: str) -> bool:
    return db.scalar(select(m.Session.session_id).where(m.Session.session_id == session_id)) is not None


def get_runs(db: Session, m: Models, session_id: str) -> list[dict[str, Any]]:
    """The stored run dicts of a session, in agno's order."""
    stmt = select(m.Run.run_data).where(m.Run.session_id == session_id).order_by(*_run_order(m))
    return [run for run in db.scalars(stmt) if isinstance(run, dict)]


def get_run(db: Session, m: Models, session_id: str, run_id: str) -> dict[str, Any] | None:
    """One stored run dict of a session, or None."""
    stmt = select(m.Run.run_data).where(m.Run.session_id == session_id, m.Run.run_id == run_id)
    run = db.scalar(stmt)
    return run if isinstance(run, dict) else None


def has_runs(db: Session, m: Models, session_id: str) -> bool:
    return db.scalar(select(m.Run.run_id).where(m.Run.session_id == session_id).limit(1)) is not None


_RUN_ORDER = ("run_index", "created_at", "run_id")


def _run_order(m: Models):
    return [getattr(m.Run, column).asc() for column in _RUN_ORDER]


def first_runs(db: Session, m: Models, session_ids: Sequence[str], *, count: int) -> dict[str, list[dict[str, Any]]]:
    """The first ``count`` runs of each session, in agno's order, in one query."""
    if not session_ids:
        return {}
    position = func.row_number().over(partition_by=m.Run.session_id, order_by=_run_order(m)).label("position")
    ranked = select(m.Run.session_id, m.Run.run_data, position).where(m.Run.session_id.in_(session_ids)).subquery()
    stmt = select(ranked.c.session_id, ranked.c.run_data).where(ranked.c.position <= count)
    runs: dict[str, list[dict[str, Any]]] = {session_id: [] for session_id in session_ids}
    for session_id, run in db.execute(stmt.order_by(ranked.c.session_id, ranked.c.position)):
        if isinstance(run, dict):
            runs[session_id].append(run)
    return runs


def iter_runs(db: Session, m: Models, session_id: str, *, start: int = 0, batch: int = 4) -> Iterable[dict[str, Any]]:
    """A session's runs in order from the ``start``-th, fetched a few at a time, for callers that stop early."""
    offset = start
    while True:
        stmt = select(m.Run.run_data).where(m.Run.session_id == session_id).order_by(*_run_order(m))
        runs = list(db.scalars(stmt.limit(batch).offset(offset)))
        yield from (run for run in runs if isinstance(run, dict))
        if len(runs) < batch:
            return
        offset += batch


def list_sessions(
    db: Session,
    m: Models,
    *,
    session_type: str | None = None,
    component_id: str | None = None,
    user_id: str | None = None,
    session_name: str | None = None,
    limit: int = 20,
    page: int = 1,
    sort_by: str = "created_at",
    sort_order: str = "desc",
) -> tuple[Sequence[SessionColumns], int]:
    """One page of sessions (without their runs) and the total count matching the filters."""
    S = m.Session
    stmt = select(S)
    if user_id is not None:
        stmt = stmt.where(S.user_id == user_id)
    if component_id is not None:
        component_column = {"agent": S.agent_id, "team": S.team_id, "workflow": S.workflow_id}
        if session_type is None:
            stmt = stmt.where(or_(S.agent_id == component_id, S.team_id == component_id, S.workflow_id == component_id))
        else:
            stmt = stmt.where(component_column[session_type] == component_id)
    if session_type is not None:
        stmt = stmt.where(S.session_type == session_type)
    if session_name:
        stmt = stmt.where(_name_contains(db, m, session_name))
    total = db.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = db.scalars(_sorted(db, stmt, m, sort_by, sort_order).limit(limit).offset((page - 1) * limit)).all()
    return rows, total


def _stored_name(db: Session, m: Models):
    """SQL expression for session_data.session_name as text."""
    if db.get_bind().dialect.name == "postgresql":
        return m.Session.session_data.op("->>")("session_name")
    return type_coerce(func.json_extract(m.Session.session_data, "$.session_name"), String)


def _name_contains(db: Session, m: Models, needle: str):
    """Case-insensitive, Unicode-aware substring match on the stored session name only."""
    name = _stored_name(db, m)
    if db.get_bind().dialect.name == "postgresql":
        return func.strpos(func.lower(name), func.lower(needle)) > 0
    # casefold() is registered on every SQLite connection (persistence.database).
    return func.instr(func.casefold(name), needle.casefold()) > 0


def _sorted(db: Session, stmt: Select, m: Models, sort_by: str, sort_order: str) -> Select:
    S = m.Session
    if sort_by == "session_name":
        key = func.coalesce(_stored_name(db, m), "")
    elif sort_by == "updated_at":
        key = func.coalesce(S.updated_at, S.created_at)
    else:
        key = getattr(S, sort_by)
    direction = (lambda c: c.asc()) if sort_order == "asc" else (lambda c: c.desc())
    # session_id breaks ties so that pages neither repeat nor skip rows.
    return stmt.order_by(direction(key), direction(S.session_id))


def insert_session(db: Session, m: Models, **columns: Any) -> SessionColumns:
    """Add a new session row; the caller has checked that its id is free."""
    row = m.Session(**columns)
    db.add(row)
    db.flush()
    return row


def insert_new_session(db: Session, m: Models, **columns: Any) -> SessionColumns | None:
    """Add a new session row, or return None (and add nothing) if its session_id is taken."""
    if session_id_taken(db, m, columns["session_id"]):
        return None
    return insert_session(db, m, **columns)


def touch(row: SessionColumns) -> None:
    row.updated_at = now()


_UNSET: Any = object()


def update_session(
    db: Session,
    m: Models,
    row: SessionColumns,
    *,
    session_name: str | None = None,
    session_state: dict | None = None,
    metadata: Any = _UNSET,
    summary: dict | None = None,
) -> SessionColumns:
    """Replace the fields given (AgentOS's PATCH): name and state inside session_data, metadata, summary."""
    if session_name is not None or session_state is not None:
        data = dict(row.session_data or {})
        if session_name is not None:
            data["session_name"] = session_name
        if session_state is not None:
            data["session_state"] = session_state
        row.session_data = data
    if metadata is not _UNSET:
        row.metadata_ = metadata
    if summary is not None:
        row.summary = summary
    touch(row)
    db.flush()
    return row


def delete_sessions(db: Session, m: Models, session_ids: Sequence[str], *, user_id: str | None = None) -> int:
    """Delete sessions and their runs; ids that do not exist (or are not ``user_id``'s) are skipped."""
    owned = select(m.Session.session_id).where(m.Session.session_id.in_(session_ids))
    if user_id is not None:
        owned = owned.where(m.Session.user_id == user_id)
    ids = list(db.scalars(owned))
    if not ids:
        return 0
    # Explicit, so that tables created without the foreign key (older agno) lose their runs too.
    db.execute(delete(m.Run).where(m.Run.session_id.in_(ids)))
    db.execute(delete(m.Session).where(m.Session.session_id.in_(ids)))
    return len(ids)


def delete_owned_session(db: Session, m: Models, session_id: str, *, user_id: str | None = None) -> bool:
    """Delete a session and its runs unless it belongs to another user than ``user_id``.

    True when the session is gone (deleted, or never there); False when it is another user's.
    """
    if delete_sessions(db, m, [session_id], user_id=user_id):
        return True
    return user_id is None or not session_id_taken(db, m, session_id)


def create_missing_tables(db: Session, m: Models) -> list[str]:
    """Create the sessions and runs tables where missing, recording them as agno would."""
    connection = db.connection()
    existing = set(inspect(connection).get_table_names())
    created = [t.name for t in m.base.metadata.sorted_tables if t.name not in existing]
    if not created:
        return []
    m.base.metadata.create_all(connection, checkfirst=True)
    SchemaVersion.metadata.create_all(connection, checkfirst=True)
    stamp = datetime.now().isoformat()
    for name in created:
        if db.get(SchemaVersion, name) is None:
            db.add(SchemaVersion(table_name=name, version=AGNO_TABLE_VERSION, created_at=stamp, updated_at=stamp))
    db.flush()
    return created
